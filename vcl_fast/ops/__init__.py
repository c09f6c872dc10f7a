"""Public ops. Each dispatches on the input kind (numpy / torch CPU -> C++ CPU kernel; torch CUDA / CuPy ->
CUDA kernel) and falls back to its plain reference, with one warning, when the compiled core is missing.
"""
from vcl_fast.ops.alignment_paths import (
    dtw_path,
    dtw_path_reference,
    mpdp_paths,
    mpdp_paths_reference,
    tn_paths,
    tn_paths_reference,
)
from vcl_fast.ops.lazy_similarity import LazySimilarityMap
from vcl_fast.ops.nms import segment_nms, segment_nms_reference
from vcl_fast.ops.similarity import (
    dual_softmax,
    int16_error_bound,
    quantize_int16,
    similarity_map,
    similarity_map_int16_reference,
    similarity_map_reference,
    similarity_map_torch_reference,
    similarity_maps,
)

__all__ = [
    "LazySimilarityMap",
    "dual_softmax",
    "dtw_path",
    "dtw_path_reference",
    "int16_error_bound",
    "mpdp_paths",
    "mpdp_paths_reference",
    "quantize_int16",
    "segment_nms",
    "segment_nms_reference",
    "similarity_map",
    "similarity_map_int16_reference",
    "similarity_map_reference",
    "similarity_map_torch_reference",
    "similarity_maps",
    "tn_paths",
    "tn_paths_reference",
]
