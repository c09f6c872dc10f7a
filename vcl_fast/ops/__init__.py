"""Public ops. Each dispatches on the input kind (numpy / torch CPU -> C++ CPU kernel; torch CUDA / CuPy ->
CUDA kernel) and falls back to its plain reference, with one warning, when the compiled core is missing.
"""
from vcl_fast.ops.similarity import (
    dual_softmax,
    similarity_map,
    similarity_map_reference,
    similarity_map_torch_reference,
    similarity_maps,
)

__all__ = ["dual_softmax", "similarity_map", "similarity_map_reference", "similarity_map_torch_reference", "similarity_maps"]
