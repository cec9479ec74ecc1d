"""ONNX interchange: `export` a convlens model to ONNX, `load` an ONNX CNN as a convlens module.

    import convlens.onnx
    convlens.onnx.export(model, x, "model.onnx")          # opset 17, dynamic batch, onnx.checker-clean
    net = convlens.onnx.load("model.onnx")                # a GraphModule with convlens layers
    net, info = convlens.onnx.load_with_info("model.onnx")  # plus input_shape, classes, ... (metadata)

Needs the optional dependencies ``pip install convlens[onnx]`` (onnx; onnxruntime to run the exported
file elsewhere). See docs/onnx.md for the supported operators and what differs.
"""

from convlens.onnx.errors import ONNXError, ONNXExportError, ONNXImportError, UnsupportedOpError
from convlens.onnx.export import OPSET, export
from convlens.onnx.importer import SUPPORTED_OPS, load, load_with_info

__all__ = ["export", "load", "load_with_info", "OPSET", "SUPPORTED_OPS", "ONNXError", "ONNXExportError",
           "ONNXImportError", "UnsupportedOpError"]
