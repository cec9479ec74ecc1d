"""``python -m convlens``: the command line."""

from convlens.cli import main

raise SystemExit(main())
