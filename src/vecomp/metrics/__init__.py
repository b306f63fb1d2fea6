"""Official task metrics."""
