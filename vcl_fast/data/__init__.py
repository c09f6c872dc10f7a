"""Data: dataset formats, typed feature records and stores, image sources, copy-edit augmentations, pseudo-videos and generated copy pairs."""
