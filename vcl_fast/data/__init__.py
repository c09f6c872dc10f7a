"""Datasets, augmentations and training-pair generation."""
