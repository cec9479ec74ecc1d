"""The Starlette application: `create_app(checkpoint=None, data=None, ...)`.

Pages (static HTML, CSS and JavaScript shipped in ``convlens/web/static``, no build step, no CDN):
``/`` (home), ``/train``, ``/explain``, ``/draw``, ``/playground``. The JSON API is under ``/api`` (see
`convlens.web.api` and `convlens.web.api_train`; docs/web.md lists it).

Safety: requests must name an allowed Host (DNS-rebinding protection: a web page elsewhere cannot reach
the app through a name that resolves to 127.0.0.1), state-changing requests from another origin are
refused, uploads are capped (`convlens.web.images`), no file-system path is ever taken from a request
(data sets are registered here and picked by name; checkpoints are saved under ``runs_dir``), and every
error is answered as JSON ``{"error": "..."}`` with a 4xx status instead of reaching the server loop.
"""

from __future__ import annotations

import contextlib
import functools
import html
import json
import logging
from pathlib import Path
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from convlens.web import api, api_models, api_train, search
from convlens.web import dense as dense_api
from convlens.web.http import JSONResponse
from convlens.web.images import HTTPError, Limits
from convlens.web.jobs import JobManager
from convlens.web.state import (
    DEFAULT_DATA_ROOTS,
    DataRegistry,
    ModelHandle,
    default_checkpoint,
    discover_datasets,
    shipped_checkpoints,
)

__all__ = ["create_app", "WebState", "STATIC", "PAGES"]

STATIC = Path(__file__).parent / "static"
# THE PAGE REGISTRY: path → (page name, title, page script[, nav label]). Each page is its <main>
# content in static/NAME.main.html, set into the one shared layout.html (head, navigation bar) when
# first served. The navigation bar is built from this table, in this order (every page but "/"; the
# nav label defaults to the title). To add a page: append one line here and add NAME.main.html (and
# its script) to static/.
PAGES = {
    "/": ("index", "Home", None),
    "/train": ("train", "Train", "train.js"),
    "/explain": ("explain", "Explain", "explain.js"),
    "/draw": ("draw", "Draw", "draw.js"),
    "/playground": ("playground", "Convolution playground", "playground.js", "Playground"),
    "/shift": ("shift", "Shift: equivariance and invariance", "shift.js", "Shift"),
}
PAGES["/search"] = ("search", "Search", "search.js")  # retrieval by CNN features (convlens.web.search)
PAGES["/detect"] = ("dense", "Detect & Segment", "dense.js")  # boxes and masks (convlens.web.dense)
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
_CSP = ("default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; script-src 'self'; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
log = logging.getLogger("convlens.web")


class WebState:
    """Everything the handlers share (``app.state.web``)."""

    def __init__(self, checkpoint, data, runs_dir, limits: Limits, snapshot_interval: float, data_roots=None,
                 assets=None):
        found = discover_datasets(DEFAULT_DATA_ROOTS if data_roots is None else data_roots)
        data = {**{k: v for k, v in found.items() if k not in (data or {})}, **(data or {})}
        self.registry = DataRegistry(data)
        self.runs_dir = Path(runs_dir if runs_dir is not None else Path("runs") / "web")
        self.jobs = JobManager(self.registry, self.runs_dir, snapshot_interval)
        self.limits = limits
        self.inputs = api.InputCache()
        self.closing = False
        self.shipped = shipped_checkpoints(assets)  # name → .safetensors
        if checkpoint is None:
            checkpoint = self.shipped.get("lenet5-mnist-mini", default_checkpoint())
        self.checkpoint = checkpoint
        self._checkpoint_handle = ModelHandle.from_checkpoint(self.checkpoint)
        self.handle = self._checkpoint_handle
        self.source = "checkpoint"  # checkpoint | shipped | training | upload
        self._samples: tuple | None = None

    def use_model(self, model, info: dict, label: str, source: str = "training") -> None:
        self.handle = ModelHandle(model, info, label)
        self.source = source
        self._samples = None

    def use_handle(self, handle, source: str) -> None:
        self.handle, self.source, self._samples = handle, source, None

    def reset_model(self) -> None:
        self.handle = self._checkpoint_handle
        self.source = "checkpoint"
        self._samples = None

    def _sample_source(self) -> tuple:
        """``(handle, data set name, Dataset or None, which part, message)`` for this model's inputs: the
        test part of the data set it was trained on (or, failing that, any data set of its input shape)."""
        if self._samples is None or self._samples[0] is not self.handle:
            h = self.handle
            name = h.info.get("dataset")
            names = self.registry.names()
            candidates = [name] if isinstance(name, str) and name in names else []
            if h.is_digit_model and "mnist-mini" not in candidates:
                candidates.append("mnist-mini")
            ds, part, message, chosen = None, None, None, None
            for cand in candidates:
                try:
                    train, test = self.registry.get(cand, wait=False)
                except HTTPError as e:
                    if e.status == 409:  # still loading: tell the page, do not cache the answer
                        return (h, cand, None, None, e.message)
                    continue
                if tuple(test.shape) == h.input_shape:
                    has_test = self.registry.has_test(cand)
                    chosen, ds, part = cand, test, "test" if has_test else "training"
                    break
            if ds is None:
                shape = "×".join(map(str, h.input_shape))
                message = (f"no {name or 'matching'} images on this server for a {shape} model: upload an image instead"
                           + (" (start the server with --data cifar10=DIR, or put the data set under ./data)"
                              if h.input_shape == (3, 32, 32) else ""))
            self._samples = (h, chosen, ds, part, message)
        return self._samples

    def sample_set(self):
        """The images the Explain page offers for this model (None when there are none)."""
        return self._sample_source()[2]

    def samples_name(self) -> str | None:
        return self._sample_source()[1]

    def samples_part(self) -> str | None:
        return self._sample_source()[3]

    def samples_message(self) -> str | None:
        return self._sample_source()[4]

    def display_path(self, path) -> str:
        p = Path(path)
        with contextlib.suppress(ValueError):
            return str(p.resolve().relative_to(Path.cwd().resolve()))
        return str(p)


class _Guard:
    """ASGI middleware: Host allow-list, same-origin check for state-changing requests, security headers."""

    def __init__(self, app, allowed_hosts):
        self.app = app
        self.allowed = None if allowed_hosts is None or "*" in allowed_hosts else {h.lower() for h in allowed_hosts}

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        host = headers.get("host", "")
        hostname = (urlsplit(f"//{host}").hostname or "").lower()
        if self.allowed is not None and hostname not in self.allowed:
            return await _reply(send, 400, f"Host {host!r} is not served here (allowed: {', '.join(sorted(self.allowed))})")
        origin = headers.get("origin")
        if scope["method"] not in ("GET", "HEAD", "OPTIONS") and origin is not None:
            # "null" is what sandboxed frames, file:// pages and data: URLs send: never this app's pages
            if origin.strip().lower() == "null":
                return await _reply(send, 403, "request from an opaque origin (Origin: null) refused")
            if urlsplit(origin).netloc.lower() != host.lower():
                return await _reply(send, 403, "cross-origin request refused")
        if headers.get("sec-fetch-site") == "cross-site" and scope["method"] not in ("GET", "HEAD"):
            return await _reply(send, 403, "cross-site request refused")

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                extra = [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer"),
                         (b"x-frame-options", b"DENY"), (b"content-security-policy", _CSP.encode())]
                message = dict(message, headers=list(message.get("headers", [])) + extra)
            await send(message)

        await self.app(scope, receive, send_with_headers)


async def _reply(send, status: int, message: str) -> None:
    body = json.dumps({"error": message}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def _nav() -> str:
    links = []
    for path, page in PAGES.items():
        if path != "/":
            label = page[3] if len(page) > 3 else page[1]
            links.append(f'    <a href="{html.escape(path)}">{html.escape(label)}</a>')
    return "\n".join(links)


@functools.cache
def render_page(name: str, title: str, script: str | None, *_nav_label) -> str:
    layout = (STATIC / "layout.html").read_text(encoding="utf-8")
    tag = f'<script src="/static/{script}" defer></script>\n' if script else ""
    main = (STATIC / f"{name}.main.html").read_text(encoding="utf-8") if name else \
        '<h1>Page not found</h1><p class="lead">There is no page at this address. The pages are listed above.</p>\n'
    return layout.format(title=title, script=tag, nav=_nav(), main=main)


def _page(*page):
    async def handler(request: Request):
        return HTMLResponse(render_page(*page))

    return handler


async def _http_error(request: Request, exc: HTTPError):
    return JSONResponse({"error": exc.message}, status_code=exc.status)


async def _starlette_error(request: Request, exc: HTTPException):
    message = exc.detail if isinstance(exc.detail, str) else "error"
    if exc.status_code == 404:
        message = f"not found: {request.url.path}"
        wants_html = "text/html" in request.headers.get("accept", "")
        if wants_html and request.method in ("GET", "HEAD") and not request.url.path.startswith(("/api/", "/static/")):
            return HTMLResponse(render_page("", "Not found", None), status_code=404)
    elif exc.status_code == 405:
        message = f"{request.method} is not allowed on {request.url.path}"
    return JSONResponse({"error": message}, status_code=exc.status_code, headers=getattr(exc, "headers", None))


async def _unexpected(request: Request, exc: Exception):
    log.exception("convlens web: internal error on %s %s", request.method, request.url.path)
    return JSONResponse({"error": f"internal error ({type(exc).__name__}: {exc})"}, status_code=500)


def create_app(checkpoint=None, data: dict | None = None, runs_dir=None, *, max_upload_bytes: int = 5 * 1024 * 1024,
               max_image_side: int = 4096, allowed_hosts=None, snapshot_interval: float = 0.75, data_roots=None,
               assets=None, dense=None) -> Starlette:
    """The web app.

    Args:
        checkpoint: the model the Explain and Draw pages start with (a run directory or .safetensors);
            default: the LeNet-5 trained on mnist-mini shipped in ``convlens/assets/lenet5-mnist-mini``.
        data: extra data sets for the Train page, by name: a folder (``NAME=DIR`` on the command line;
            an image folder, or the files of mnist / fashion-mnist / cifar10 when NAME is one of those),
            a `convlens.data.Dataset`, or a ``(train, test)`` pair of them. ``mnist-mini`` is always there.
        runs_dir: where "save checkpoint" writes (default ``./runs/web``); never taken from a request.
        max_upload_bytes / max_image_side: upload limits (413 beyond them).
        allowed_hosts: Host header names served (default 127.0.0.1, localhost, ::1); ``["*"]`` allows any.
        snapshot_interval: seconds between the training job's layer snapshots.
        data_roots: folders searched for mnist, fashion-mnist and cifar10 (the binary version or the
            JPEG copy ``cifar10-jpeg.tar.gz``), offered when found and loaded (in the background, with
            progress on the Train page) when first picked; default ``./data`` and ``../shared/data``;
            ``[]`` searches nothing.
        assets: the folder of shipped checkpoints (default ``convlens/assets``: ``lenet5-mnist-mini``,
            and ``convnetjs-cifar10`` when present), offered on every page's model menu.
        dense: segmentation / detection checkpoints for the Detect & Segment page (a list of run
            directories or files, or a dict name → checkpoint).
    """
    web = WebState(checkpoint, data, runs_dir, Limits(int(max_upload_bytes), int(max_image_side)), snapshot_interval,
                   data_roots, assets)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        web.closing = True
        web.jobs.shutdown()

    routes = [Route(path, _page(*page), methods=["GET"]) for path, page in PAGES.items()]
    routes += api.routes + api_models.routes + api_train.routes
    routes += search.routes
    routes += dense_api.routes
    routes.append(Mount("/static", StaticFiles(directory=STATIC), name="static"))
    hosts = list(LOCAL_HOSTS) if allowed_hosts is None else list(allowed_hosts)
    app = Starlette(routes=routes, lifespan=lifespan, middleware=[Middleware(_Guard, allowed_hosts=hosts)],
                    exception_handlers={HTTPError: _http_error, HTTPException: _starlette_error,
                                        Exception: _unexpected})
    web.dense = dense_api.DenseModels(dense)
    app.state.web = web
    return app
