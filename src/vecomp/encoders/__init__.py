"""Vision encoders of the real model families (region, grid, patch, precomputed features).

``factory.create_encoder({"type": ..., **options})`` builds any registered encoder; every encoder
maps a batch of images to tokens, their boxes and a mask (see :mod:`vecomp.encoders.base`). This
file imports nothing, so importing one encoder module does not load the others.
"""
