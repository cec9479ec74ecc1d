"""Run a PyTorch program on torch or, with only its import lines rewritten, on convlens.

convlens: ``import torch`` → ``import convlens as torch``, ``import torch.nn as nn`` → ``import
convlens.nn as nn``, ``from torch.x import y`` → ``from convlens.x import y``, and ``torchvision`` →
``convlens.vision`` likewise; no other line changes. torch: the program runs as written, with
``torchvision_for_torch`` standing in for torchvision.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import sys
from pathlib import Path

_TARGET = {"torch": "convlens", "torchvision": "convlens.vision"}
_IMPORT = re.compile(r"^(?P<indent>\s*)import\s+(?P<top>torchvision|torch)(?P<sub>(?:\.\w+)*)(?:\s+as\s+(?P<alias>\w+))?\s*$")
_FROM = re.compile(r"^(?P<indent>\s*)from\s+(?P<top>torchvision|torch)(?P<sub>(?:\.\w+)*)\s+import\s+(?P<rest>.+)$")


def to_convlens(source: str) -> tuple[str, int]:
    """The program with its torch / torchvision imports pointed at convlens, and how many lines changed."""
    out, changed = [], 0
    for line in source.splitlines():
        m = _IMPORT.match(line)
        if m:
            target = _TARGET[m["top"]] + m["sub"]
            if m["alias"]:
                line = f"{m['indent']}import {target} as {m['alias']}"
            elif m["sub"]:  # `import torch.nn` binds the name torch
                line = f"{m['indent']}import {target}; import {_TARGET[m['top']]} as {m['top']}"
            else:
                line = f"{m['indent']}import {target} as {m['top']}"
            changed += 1
        elif (m := _FROM.match(line)):
            line = f"{m['indent']}from {_TARGET[m['top']]}{m['sub']} import {m['rest']}"
            changed += 1
        elif re.match(r"^\s*(import|from)\s+.*\btorch", line):
            raise ValueError(f"unsupported import line: {line!r}")
        out.append(line)
    return "\n".join(out) + "\n", changed


@contextlib.contextmanager
def _torchvision_stand_in():
    import torchvision_for_torch as tv  # noqa: F401 - found through sys.path set by the test

    names = {"torchvision": tv, "torchvision.datasets": tv.datasets, "torchvision.transforms": tv.transforms,
             "torchvision.utils": tv.utils}
    saved = {k: sys.modules.get(k) for k in names}
    sys.modules.update(names)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v


def run(path: Path, framework: str, cwd: Path, argv: list[str] | None = None) -> str:
    """Execute the program as ``__main__`` in ``cwd`` with ``argv``; returns what it printed."""
    source = Path(path).read_text()
    if framework == "convlens":
        source, changed = to_convlens(source)
        assert changed > 0, f"{path}: no torch imports to rewrite"
        context = contextlib.nullcontext()
    else:
        context = _torchvision_stand_in()
    code = compile(source, str(path), "exec")
    out = io.StringIO()
    old_cwd, old_argv = os.getcwd(), sys.argv
    os.chdir(cwd)
    sys.argv = [str(path)] + list(argv or [])
    try:
        with context, contextlib.redirect_stdout(out):
            exec(code, {"__name__": "__main__", "__file__": str(path)})
    finally:
        os.chdir(old_cwd)
        sys.argv = old_argv
    return out.getvalue()
