"""The local web app (``convlens serve``): live training, layer-by-layer explanations, a drawing pad and
a convolution playground, served by Starlette + uvicorn from static files shipped in the package.

    from convlens.web import create_app
    app = create_app()                      # the shipped LeNet-5 checkpoint; mnist-mini for training

Needs the ``web`` extra: ``pip install "convlens[web]"``.
"""

from __future__ import annotations

__all__ = ["create_app", "main"]


def create_app(*args, **kwargs):
    """See `convlens.web.app.create_app` (imported lazily so that ``import convlens.web`` is cheap)."""
    from convlens.web.app import create_app as _create

    return _create(*args, **kwargs)


def main(argv: list[str] | None = None) -> int:
    """``convlens serve`` (the command line's contract with this package)."""
    from convlens.cli.serve import run_raw

    return run_raw(list(argv or []))
