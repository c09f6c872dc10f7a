"""Models: the RTR feature extractor (and, from other areas, the detector).

Import submodules directly (``from vcl_fast.models.rtr import build_extractor``); this package imports no
torch by itself so the torch-free inference path can live beside it.
"""
