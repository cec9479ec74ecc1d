"""Errors of the ONNX import and export: one line naming the file, the node and what was expected."""

from __future__ import annotations

__all__ = ["ONNXError", "ONNXImportError", "ONNXExportError", "UnsupportedOpError"]


class ONNXError(ValueError):
    """An ONNX model that cannot be read, imported or written (a ValueError, so the CLI prints one line)."""


class ONNXImportError(ONNXError):
    """A model that cannot become a convlens module; the message names the node (index, name, op)."""


class UnsupportedOpError(ONNXImportError):
    """The first node whose operator (or attribute value) convlens has no layer for."""


class ONNXExportError(ONNXError):
    """A convlens layer without an ONNX form; the message names the layer."""


def node_label(index: int, node) -> str:
    """``node 3 '/layer1/conv1/Conv' (Conv)``: how errors name a node."""
    name = f" {node.name!r}" if node.name else ""
    return f"node {index}{name} ({node.op_type})"
