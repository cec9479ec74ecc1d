"""Layers (`convlens.nn`), operations (`convlens.nn.functional`) and initialisers (`convlens.nn.init`)."""

from convlens.nn.shape import conv_output_size

__all__ = ["conv_output_size"]
