"""Training (PyTorch): the RTR feature extractor and the YOLOX detector, their losses and the `vcl-fast train` commands."""
