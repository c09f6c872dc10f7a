"""Public ops. Each dispatches on the input kind (numpy / torch CPU -> C++ CPU kernel; torch CUDA / CuPy ->
CUDA kernel) and falls back to its plain reference, with one warning, when the compiled core is missing.
"""
from vcl_fast.ops.nms import segment_nms, segment_nms_reference

__all__ = ["segment_nms", "segment_nms_reference"]
