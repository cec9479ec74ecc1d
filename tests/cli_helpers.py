"""What the command-line tests share (tests/test_cli.py, tests/test_runs_hardened.py): a tiny spec, MNIST
files in the IDX format, running `main([...])` in-process, and the one error line a failure must print."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from convlens.cli import main
from convlens.data.idx import write_idx

SPEC = {"layers": [
    {"type": "conv", "name": "conv1", "filters": 4, "size": 3, "pad": 1, "activation": "relu"},
    {"type": "pool", "name": "pool1", "size": 2},
    {"type": "fc", "name": "fc", "units": 3},
]}
CLASSES = ["hbar", "square", "vbar"]


def make_mnist(root: Path, n_train=40, n_test=20, seed=0) -> Path:
    """MNIST's four IDX gzip files with random pixels and labels 0..9 in turn."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        write_idx(root / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28), dtype=np.uint8))
        write_idx(root / f"{prefix}-labels-idx1-ubyte.gz", (np.arange(n) % 10).astype(np.uint8))
    return root


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(err: str) -> str:
    lines = [line for line in err.strip().splitlines() if line.startswith("convlens: error:")]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]
