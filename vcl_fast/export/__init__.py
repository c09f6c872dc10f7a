"""Model export: ONNX files plus a manifest (:mod:`vcl_fast.export.onnx`) that the runtime backends load."""

OPSET = 17  # default ONNX opset of exported models (LayerNormalization needs >= 17)
