"""``convlens plot``: loss and accuracy curves of a run as a PNG."""

from __future__ import annotations

import json
from pathlib import Path

from convlens.cli import CLIError


def register(sub, parent) -> None:
    p = sub.add_parser("plot", parents=[parent], help="plot a run's loss and accuracy curves",
                       description="Plot training and validation loss and accuracy per epoch from RUN_DIR/history.json.")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--out", metavar="FILE", help="output PNG (default RUN_DIR/curves.png)")
    p.set_defaults(func=run)


def run(args) -> int:
    from convlens.visualize import plot_history

    run_dir = Path(args.run_dir)
    path = run_dir / "history.json" if run_dir.is_dir() else run_dir
    if not path.is_file():
        raise CLIError(f"{path}: no such file (expected a run directory holding history.json)")
    try:
        history = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise CLIError(f"{path}: not a readable history ({type(e).__name__}: {e})") from None
    if not isinstance(history, list) or not all(isinstance(h, dict) and "epoch" in h for h in history):
        raise CLIError(f"{path}: expected a list of per-epoch records with an 'epoch' entry")
    if not history:
        raise CLIError(f"{path}: no completed epoch to plot yet")
    out = Path(args.out) if args.out else (run_dir if run_dir.is_dir() else run_dir.parent) / "curves.png"
    plot_history(history, out, title=run_dir.name)
    print(f"wrote {out}")
    return 0
