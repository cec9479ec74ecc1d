"""Which model the Explain, Draw and Shift pages run: the shipped checkpoints (``convlens/assets/*``),
a checkpoint uploaded from the page (its .safetensors + .json pair), and back to the start model."""

from __future__ import annotations

import secrets

import numpy as np
from starlette.requests import Request
from starlette.routing import Route

from convlens.web import explain as X
from convlens.web.http import JSONResponse, read_json, threaded
from convlens.web.images import HTTPError

__all__ = ["routes"]


def _web(request: Request):
    return request.app.state.web


async def model_reset(request: Request):
    """Back to the model the server started with (the shipped LeNet-5 unless --checkpoint said otherwise)."""
    web = _web(request)
    await threaded(web.reset_model)
    return JSONResponse({"model": web.handle.label, "source": web.source})


def _describe_checkpoint(path) -> dict:
    import json

    meta = {}
    js = path.with_suffix(".json")
    try:
        meta = json.loads(js.read_text())
    except (OSError, ValueError):
        pass
    return {k: meta.get(k) for k in ("model_name", "dataset", "input_shape", "classes", "test_accuracy", "val_accuracy",
                                     "test_set")}


async def checkpoints(request: Request):
    """The shipped checkpoints (``convlens/assets/*/best.*``): what each is and which one is in use."""
    web = _web(request)
    items = [{"name": n, **_describe_checkpoint(p), "active": web.handle.label.startswith(n + "/")}
             for n, p in web.shipped.items()]
    return JSONResponse({"checkpoints": items, "current": web.handle.label, "source": web.source})


def _use_shipped(web, name) -> dict:
    from convlens.web.state import ModelHandle

    if not isinstance(name, str) or name not in web.shipped:
        raise HTTPError(422, f"unknown checkpoint {name!r}: expected one of {', '.join(web.shipped) or '(none shipped)'}")
    handle = ModelHandle.from_checkpoint(web.shipped[name])
    web.use_handle(handle, "shipped")
    return {"model": handle.label, "source": "shipped"}


async def model_use(request: Request):
    """``{"checkpoint": NAME}``: run a shipped checkpoint on the Explain, Draw and Shift pages."""
    body = await read_json(request)
    return JSONResponse(await threaded(_use_shipped, _web(request), body.get("checkpoint")))


UPLOAD_LIMIT = 64 * 1024 * 1024
MAX_UPLOAD_PARAMS = 20_000_000


def _load_upload(web, weights: bytes, meta: bytes, name: str) -> dict:
    import shutil

    from convlens.checkpoint import CheckpointError, load_checkpoint
    from convlens.web.state import ModelHandle

    folder = web.runs_dir / "uploads" / secrets.token_hex(6)
    folder.mkdir(parents=True, exist_ok=True)
    try:
        (folder / "best.safetensors").write_bytes(weights)
        (folder / "best.json").write_bytes(meta)
        try:
            model, info = load_checkpoint(folder / "best.safetensors")
        except (CheckpointError, ValueError, KeyError, TypeError) as e:
            raise HTTPError(422, "not a usable convlens checkpoint: " + str(e).replace(str(folder), name)) from None
        n = sum(int(np.prod(p.shape)) for p in model.parameters())
        if n > MAX_UPLOAD_PARAMS:
            raise HTTPError(422, f"the model has {n:,} parameters; the web app runs at most {MAX_UPLOAD_PARAMS:,}")
        info.pop("optimizer_state", None)
        info.pop("scheduler_state", None)
        handle = ModelHandle(model, info, f"uploaded: {name}")
        try:
            with handle.lock:
                X.trace(model, np.zeros((1, *handle.input_shape), np.float32), handle.input_shape)
        except (ValueError, TypeError) as e:
            raise HTTPError(422, f"the checkpoint's model does not run on its input_shape "
                                 f"{list(handle.input_shape)}: {e}") from None
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    web.use_handle(handle, "upload")
    return {"model": handle.label, "source": "upload", "input_shape": list(handle.input_shape), "classes": handle.classes}


async def model_upload(request: Request):
    """A multipart form with the two files of a checkpoint: ``weights`` (NAME.safetensors) and ``meta``
    (NAME.json), as `convlens train` and the Train page's "Save checkpoint" write them."""
    from convlens.web.http import read_body

    web = _web(request)
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "multipart/form-data":
        raise HTTPError(415, "send a multipart form with the files 'weights' (.safetensors) and 'meta' (.json)")
    await read_body(request, UPLOAD_LIMIT + 1024 * 1024)
    try:
        form = await request.form(max_files=2, max_fields=8, max_part_size=UPLOAD_LIMIT)
    except Exception as e:  # MultiPartException: a malformed form
        raise HTTPError(400, f"malformed multipart form: {e}") from None
    try:
        files = {k: v for k, v in form.multi_items() if hasattr(v, "read")}
        missing = [k for k in ("weights", "meta") if k not in files]
        if missing:
            raise HTTPError(422, f"missing file(s) {', '.join(missing)}: send NAME.safetensors as 'weights' and "
                                 "NAME.json as 'meta'")
        weights, meta = await files["weights"].read(), await files["meta"].read()
        name = str(files["weights"].filename or "checkpoint.safetensors")[:80]
    finally:
        await form.close()
    if len(weights) < 8:
        raise HTTPError(422, "weights: not a safetensors file (too short)")
    return JSONResponse(await threaded(_load_upload, web, weights, meta, name))


routes = [
    Route("/api/model/reset", model_reset, methods=["POST"]),
    Route("/api/model/use", model_use, methods=["POST"]),
    Route("/api/model/upload", model_upload, methods=["POST"]),
    Route("/api/checkpoints", checkpoints, methods=["GET"]),
]
