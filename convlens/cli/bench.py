"""``convlens bench``: forwarded to ``convlens.bench.main(argv)`` (imported only when the command runs).

Contract for the benchmark module: ``convlens.bench.main(argv: list[str]) -> int`` parses its own options
(with ``prog="convlens bench"``) and returns an exit code. Until that module exists this command says so
and exits with code 2.
"""

from __future__ import annotations

import argparse

from convlens.cli import CLIError

_MODULE, _NAME = "convlens.bench", "bench"
_HELP = "training speed of convlens next to PyTorch"
RAW_ARGS = True  # `convlens bench ARGS...` calls run_raw(ARGS) unparsed


def register(sub, parent) -> None:
    # listed in `convlens --help`; the arguments themselves reach run_raw() unparsed
    p = sub.add_parser(_NAME, add_help=False, help=_HELP, description=_HELP)
    p.add_argument("argv", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    p.set_defaults(func=lambda args: run_raw(args.argv))


def forward(module_name: str, command: str, argv: list[str], help_text: str) -> int:
    """Import ``module_name`` and call its ``main(argv)``; a stub message (exit 2) while it is missing."""
    import importlib
    import importlib.util

    main, why = None, f"{module_name} is not installed"
    try:
        if importlib.util.find_spec(module_name) is not None:
            main = getattr(importlib.import_module(module_name), "main", None)
            why = f"{module_name} has no main(argv)"
    except ImportError as e:
        why = f"{module_name} could not be imported: {e}"
    if main is None:
        if any(a in ("-h", "--help") for a in argv):
            print(f"usage: convlens {command} [ARGS ...]\n\n{help_text}\n\n(not yet available: {why})")
            return 0
        raise CLIError(f"convlens {command} is not yet available ({why})", code=2)
    try:
        return int(main(list(argv)) or 0)
    except SystemExit as e:  # its argparse: --help (0) or a usage error (2), already printed
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 2)


def run_raw(argv: list[str]) -> int:
    return forward(_MODULE, _NAME, argv, _HELP)
