"""The ``convlens`` command line (also ``python -m convlens``).

Each command lives in its own module under ``convlens.cli`` and exposes ``register(subparsers, parent)``,
which adds its parser (with ``parents=[parent]`` for the common options) and calls
``parser.set_defaults(func=run)``; ``run(args)`` returns an exit code (or None for 0). To add a command,
write such a module and append its name to `COMMANDS`. Command modules import heavy dependencies inside
``run`` so that ``convlens --help`` stays fast.

A module that sets ``RAW_ARGS = True`` gets its arguments unparsed: ``run_raw(argv)`` is called with
everything after the command name (``bench`` and ``serve`` forward them to their own parsers).

Errors are one line on stderr (``convlens: error: ...``) with a non-zero exit code; ``--debug`` shows the
full traceback instead.
"""

from __future__ import annotations

import argparse
import importlib
import sys

__all__ = ["main", "build_parser", "COMMANDS", "CLIError"]

# The command modules, in the order `convlens --help` lists them.
COMMANDS = ["train", "eval", "predict", "summary", "filter", "inspect", "plot", "data", "bench", "serve"]
COMMANDS += ["index", "search"]  # retrieval by CNN features (convlens.retrieval)
COMMANDS += ["export", "convert"]  # issue 17: ONNX and PyTorch weights


class CLIError(Exception):
    """A user error: printed as ``convlens: error: <message>``, exit code ``code``."""

    def __init__(self, message: str, code: int = 1):
        super().__init__(message)
        self.code = code


def _version() -> str:
    from convlens import __version__

    return f"convlens {__version__}"


def common_options() -> argparse.ArgumentParser:
    """Options every command accepts (after the command name too): ``--debug``."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show the full traceback on errors")
    return parent


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="convlens",
        description="Convolutional neural networks you can use and see through: train, evaluate and "
                    "inspect CNNs from the command line.",
        epilog="Run 'convlens COMMAND --help' for a command's options.",
    )
    parser.add_argument("--version", action="version", version=_version())
    parser.add_argument("--debug", action="store_true", help="show the full traceback on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    parent = common_options()
    for name in COMMANDS:
        _module(name).register(sub, parent)
    return parser


def _module(name: str):
    return importlib.import_module(f"convlens.cli.{name}")


def _raw_command(argv: list[str]):
    """``(module, rest, debug)`` when the command takes raw arguments, else None."""
    i = 0
    while i < len(argv) and argv[i] == "--debug":
        i += 1
    if i < len(argv) and argv[i] in COMMANDS:
        module = _module(argv[i])
        if getattr(module, "RAW_ARGS", False):
            rest = argv[i + 1 :]
            # --debug is convlens's own option, also after the command name: not forwarded
            return module, [a for a in rest if a != "--debug"], i > 0 or "--debug" in rest
    return None


def _one_line(e: BaseException) -> str:
    lines = [line.strip() for line in str(e).strip().splitlines() if line.strip()]
    return "; ".join(lines) or type(e).__name__


def main(argv: list[str] | None = None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    raw = _raw_command(argv)
    if raw is not None:
        module, rest, debug = raw
        return _guarded(lambda: module.run_raw(rest), debug)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help, --version and usage errors (argparse prints them)
        return int(e.code or 0) if not isinstance(e.code, str) else 2
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    return _guarded(lambda: args.func(args), bool(getattr(args, "debug", False)))


def _ignore_sigint() -> None:
    """After an interruption has been handled, a further Ctrl-C must not raise on the way out (it
    printed a traceback from the interpreter's exit and ended with -SIGINT instead of 130)."""
    import signal
    import threading

    from convlens._cli_start import _started_as_cli

    # only in the convlens process itself: a program (or pytest) calling main() keeps its Ctrl-C
    if threading.current_thread() is threading.main_thread() and _started_as_cli():
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def _guarded(call, debug: bool) -> int:
    """Run a command; turn exceptions into one-line errors and exit codes (tracebacks with --debug)."""
    import signal
    import threading

    if threading.current_thread() is threading.main_thread():
        # the quiet handler convlens/__init__.py installs for Ctrl-C during imports ends here
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        code = int(call() or 0)
        _ignore_sigint()  # the command is done: a Ctrl-C now must not turn its exit into -SIGINT
        return code
    except KeyboardInterrupt:
        _ignore_sigint()
        if debug:
            raise
        print("convlens: interrupted", file=sys.stderr)
        return 130
    except CLIError as e:
        if debug:
            raise
        print(f"convlens: error: {_one_line(e)}", file=sys.stderr)
        return e.code
    except (ValueError, OSError, ImportError, RuntimeError) as e:
        # DataError, CheckpointError, SpecError and layer shape errors are ValueErrors with full messages
        if debug:
            raise
        prefix = "" if isinstance(e, ValueError | RuntimeError) else f"{type(e).__name__}: "
        print(f"convlens: error: {prefix}{_one_line(e)}", file=sys.stderr)
        return 1
    except Exception as e:  # a bug: still one line, with the way to see more
        if debug:
            raise
        print(f"convlens: error: internal error ({type(e).__name__}: {_one_line(e)}); "
              "run with --debug for the traceback", file=sys.stderr)
        return 1
