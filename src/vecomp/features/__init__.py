"""Cached vision-encoder features: one sharded, memory-mapped store per (encoder, image pool)."""
