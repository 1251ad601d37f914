"""Interoperable image import: what glimpse-worker runs."""
