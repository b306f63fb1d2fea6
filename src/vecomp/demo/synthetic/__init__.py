"""The synthetic scene suite: the embedded default's six datasets, drawn from scene graphs."""
