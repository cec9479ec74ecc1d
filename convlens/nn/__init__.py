"""Layers (`convlens.nn`), operations (`convlens.nn.functional`) and initialisers (`convlens.nn.init`)."""

from convlens.nn import functional, init, utils
from convlens.nn.modules import *  # noqa: F403 - the layers are this package's public API
from convlens.nn.modules import __all__ as _modules_all
from convlens.nn.shape import conv_output_size

__all__ = ["conv_output_size", "functional", "init", "utils", *_modules_all]
