"""Imported first by ``convlens/__init__.py``: when the process is the ``convlens`` command (``convlens ...``
or ``python -m convlens ...``), a Ctrl-C while the package imports (a second or so of NumPy, numba...) exits
quietly with code 130 instead of printing a traceback. `convlens.cli` puts Python's own handler back as
soon as a command runs. Imported as a library, this does nothing."""

import sys as _sys


def _started_as_cli() -> bool:
    argv = list(getattr(_sys, "orig_argv", []) or [])
    return argv[1:3] == ["-m", "convlens"] or (len(argv) > 1 and argv[1].replace("\\", "/").rsplit("/", 1)[-1]
                                                  in ("convlens", "convlens.exe"))


if _started_as_cli():
    import signal as _signal

    def _quiet_interrupt(signum, frame):  # replaced by convlens.cli once a command runs
        import os

        _sys.stderr.write("convlens: interrupted\n")
        _sys.stderr.flush()
        os._exit(130)

    _signal.signal(_signal.SIGINT, _quiet_interrupt)
