"""Copy localization with the YOLOX detector, torch-free: map rendering, chunking, decoding and NMS.

The model runs behind a callable ``run(images float32 (B, 3, S, S)) -> raw (B, A, 5 + C)`` (a torch module
through ``vcl_fast.detect.torch_runner``, or an exported engine), so the same code serves every backend.
"""
