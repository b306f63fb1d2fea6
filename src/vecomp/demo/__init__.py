"""The embedded default's stand-ins for the study's data and models, and its planted checks.

- ``synthetic/``: the scene suite, written in the real datasets' file formats (``vecomp generate``);
- ``pretrain/``: the mini grid, patch and region encoders' pretraining (``vecomp pretrain``);
- ``detector.py``: the tiny Faster R-CNN the region encoder is built on;
- ``probe.py``: attribute probes, encoders that see one planted attribute (the validation).

Nothing here is needed to run the study on real data with published encoders; ``encoders/``
holds the real model families. The registries load the probe and the tiny detector by name.
"""
