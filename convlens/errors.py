"""Errors that the tensor engine and the layers raise, catchable the PyTorch way and the NumPy way."""


class ShapeError(RuntimeError, ValueError):
    """Shapes that do not fit together (broadcasting, matrix products, a layer's expected input).

    PyTorch raises RuntimeError for these; convlens's layers raised ValueError before, so the class
    is both: ``except RuntimeError`` (PyTorch code) and ``except ValueError`` (older convlens code)
    catch it.
    """
