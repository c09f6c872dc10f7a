"""Training (PyTorch): the YOLOX detector on similarity maps."""
