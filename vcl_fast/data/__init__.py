"""Data: image lists and loading, copy-edit augmentations, dataset layouts."""
