"""Training: the RTR feature extractor (``extractor``), its losses and the ``vcl-fast train`` commands."""
