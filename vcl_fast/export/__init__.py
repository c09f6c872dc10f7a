"""Model export: ONNX files plus a manifest (:mod:`vcl_fast.export.onnx`) that the runtime backends load."""
