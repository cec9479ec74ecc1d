"""``convlens serve``: the local web app (Starlette + uvicorn): train live, explain every layer, draw a
digit, play with convolutions. Binds to 127.0.0.1 unless ``--host`` says otherwise."""

from __future__ import annotations

import argparse
from pathlib import Path

from convlens.cli import CLIError

_NAME = "serve"
_HELP = "start the local web app: train live, explain every layer, draw a digit, try kernels"
RAW_ARGS = True  # `convlens serve ARGS...` calls run_raw(ARGS) unparsed: the options are parsed below


def register(sub, parent) -> None:
    p = sub.add_parser(_NAME, add_help=False, help=_HELP, description=_HELP)
    p.add_argument("argv", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    p.set_defaults(func=lambda args: run_raw(args.argv))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="convlens serve", description=_HELP,
        epilog="Pages: /train, /explain, /draw, /playground. Needs the web extra: pip install 'convlens[web]'.")
    p.add_argument("--checkpoint", metavar="CKPT",
                   help="run directory or .safetensors for the Explain and Draw pages (default: the LeNet-5 "
                        "trained on mnist-mini that ships with convlens)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 picks a free one)")
    p.add_argument("--data", action="append", default=[], metavar="NAME=DIR",
                   help="offer a local data set for training under NAME (repeatable): an image folder (class "
                        "sub-folders, optionally train/ and test/), or mnist/fashion-mnist/cifar10 files when "
                        "NAME is one of those")
    p.add_argument("--data-root", action="append", default=None, metavar="DIR",
                   help="a folder searched for mnist/, fashion-mnist/ and CIFAR-10 (cifar-10-batches-bin/ or the JPEG "
                        "copy cifar10-jpeg.tar.gz), offered on the Train page when found (repeatable; default: "
                        "./data and ../shared/data; --data-root none searches nothing)")
    p.add_argument("--runs-dir", default=str(Path("runs") / "web"), metavar="DIR",
                   help="where 'save checkpoint' writes (default ./runs/web)")
    p.add_argument("--dense", action="append", default=[], metavar="RUN_DIR",
                   help="a segmentation or detection checkpoint for the Detect & Segment page (repeatable)")
    p.add_argument("--debug", action="store_true", help=argparse.SUPPRESS)
    return p


def parse_data(items: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        name, sep, folder = item.partition("=")
        name = name.strip()
        if not sep or not name or not folder:
            raise CLIError(f"--data {item!r}: expected NAME=DIR, e.g. --data shapes=./data/shapes")
        if name in out or name == "mnist-mini":
            raise CLIError(f"--data {item!r}: the name {name!r} is already taken")
        path = Path(folder).expanduser()
        if not path.exists():
            raise CLIError(f"--data {item!r}: {path} does not exist")
        out[name] = str(path)
    return out


def run_raw(argv: list[str]) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as e:  # --help (0) or a usage error (2), already printed by argparse
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 2)
    try:
        import uvicorn

        from convlens.web.app import create_app
    except ImportError as e:
        raise CLIError(f"the web app needs Starlette and uvicorn ({e}); install them with: "
                       "pip install 'convlens[web]'") from None
    if not 0 <= args.port <= 65535:
        raise CLIError(f"--port must be in 0..65535, got {args.port}")
    data = parse_data(args.data)
    wildcard = args.host in ("0.0.0.0", "::", "")
    hosts = ["*"] if wildcard else ["127.0.0.1", "localhost", "::1", args.host]
    roots = None if args.data_root is None else [r for r in args.data_root if r.lower() != "none"]
    app = create_app(checkpoint=args.checkpoint, data=data, runs_dir=args.runs_dir, allowed_hosts=hosts,
                     data_roots=roots, dense=args.dense or None)
    config = uvicorn.Config(app, host=args.host, port=args.port, log_level="warning", timeout_graceful_shutdown=2)
    server = uvicorn.Server(config)
    shown = "127.0.0.1" if wildcard else args.host
    shown = f"[{shown}]" if ":" in shown else shown

    def announce():
        port = args.port
        for s in getattr(server, "servers", []) or []:
            for sock in s.sockets:
                port = sock.getsockname()[1]
        print(f"convlens serve: open http://{shown}:{port}/  (model: {app.state.web.handle.label}; "
              f"data sets: {', '.join(app.state.web.registry.names())}; Ctrl-C to stop)", flush=True)
        if wildcard:
            print("convlens serve: warning: listening on all interfaces; anyone on the network can use the app",
                  flush=True)

    original = server.startup

    async def startup(sockets=None):
        await original(sockets=sockets)
        announce()

    server.startup = startup
    server.run()
    return 0
