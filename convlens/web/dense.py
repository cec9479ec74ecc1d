"""The "Detect & Segment" page's API: dense models (segmentation / detection checkpoints given to
`create_app(dense=...)` or ``convlens serve --dense RUN``), test scenes of mnist-scenes-mini, and one
image at a time through a model: the coloured mask or the boxes with scores, and the backbone's feature
maps (the encoder blocks' outputs).

    GET  /api/dense/models                 → {"models": [{name, task, classes, input_channels}]}
    GET  /api/dense/scenes?count=&offset=  → {"total", "scenes": [{index, image (PNG data URL)}]}
    POST /api/dense/run  {model, scene} or {model, image: data URL} or multipart (file + model)
         → {task, size, image, overlay, detections | pixels, features: [{name, shape, maps: [data URL]}]}
"""

from __future__ import annotations

import threading

import numpy as np
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from convlens.web.http import read_image_request, threaded
from convlens.web.images import HTTPError, png_data_url

__all__ = ["routes", "DenseModels"]

MAX_SIDE = 512  # the dense nets run at the image's own size: keep uploads to what answers quickly
FEATURE_MAPS = 8  # channels shown per encoder block


class DenseModels:
    """Dense checkpoints by name, loaded once; each has a lock (a model is not re-entrant)."""

    def __init__(self, sources=None):
        from convlens.checkpoint import load_checkpoint

        self.models: dict[str, tuple] = {}
        items = sources.items() if isinstance(sources, dict) else ((None, s) for s in (sources or []))
        for name, src in items:
            model, info = load_checkpoint(src)
            if getattr(model, "task", "classify") == "classify":
                raise ValueError(f"{src}: a classifier; the Detect & Segment page takes segmentation or "
                                 "detection checkpoints (unet-small, centernet-small)")
            label = name or f"{info.get('model_name', 'model')} ({src})"
            self.models[label] = (model, info, threading.Lock())
        self._scenes = None

    def get(self, name):
        if not self.models:
            raise HTTPError(404, "no segmentation or detection model is loaded: start the server with "
                                 "convlens serve --dense RUN_DIR")
        if name is None:
            name = next(iter(self.models))
        if name not in self.models:
            raise HTTPError(404, f"unknown model {name!r}; loaded: {', '.join(self.models)}")
        return self.models[name]

    def scenes(self):
        if self._scenes is None:
            from convlens.data.scenes import load_scenes

            self._scenes = load_scenes("mnist-scenes-mini", train=False)
        return self._scenes


def _dense(request: Request) -> DenseModels:
    web = request.app.state.web
    if getattr(web, "dense", None) is None:
        web.dense = DenseModels()
    return web.dense


def _int(value, key: str, lo: int, hi: int) -> int:
    try:
        v = int(value)
        if isinstance(value, bool) or v != float(value):
            raise ValueError
    except (TypeError, ValueError):
        raise HTTPError(422, f"{key} must be an integer, got {value!r}") from None
    if not lo <= v <= hi:
        raise HTTPError(422, f"{key} must be in {lo}..{hi}, got {v}")
    return v


async def list_models(request: Request):
    d = _dense(request)
    return JSONResponse({"models": [
        {"name": k, "task": m.task, "classes": info.get("classes"), "input_channels": info["input_shape"][0]}
        for k, (m, info, _) in d.models.items()]})


async def list_scenes(request: Request):
    d = _dense(request)
    q = request.query_params
    count, offset = _int(q.get("count", 12), "count", 1, 100), _int(q.get("offset", 0), "offset", 0, 10**9)
    ds = await threaded(d.scenes)
    picks = range(min(offset, len(ds)), min(offset + count, len(ds)))
    return JSONResponse({"total": len(ds), "scenes": [{"index": i, "image": png_data_url(ds.images[i])} for i in picks]})


def _features(model, x) -> list[dict]:
    from convlens.autograd import no_grad
    from convlens.models.dense import pad_to_multiple
    from convlens.tensor import Tensor

    with no_grad():
        xp, _ = pad_to_multiple(Tensor._wrap(x), 2 ** (len(model.widths) - 1))
        feats = model.encoder(xp)
    out = []
    for k, f in enumerate(feats):
        a = f._data[0, :FEATURE_MAPS]
        lo, hi = a.min(axis=(1, 2), keepdims=True), a.max(axis=(1, 2), keepdims=True)
        maps = ((a - lo) / np.maximum(hi - lo, 1e-12) * 255).astype(np.uint8)
        out.append({"name": f"encoder.blocks.{k}", "shape": list(f.shape[1:]), "maps": [png_data_url(m) for m in maps]})
    return out


def _run(d: DenseModels, body: dict, image) -> dict:
    from convlens.cli import CLIError
    from convlens.cli._dense import draw_result, run_dense, scene_input

    model, info, lock = d.get(body.get("model"))
    channels = int(info["input_shape"][0])
    if image is not None:
        if max(image.size) > MAX_SIDE:
            raise HTTPError(413, f"image is {image.size[0]}×{image.size[1]} pixels; this page takes at most "
                                 f"{MAX_SIDE} per side")
        try:
            x, pixels = scene_input(image, channels)
        except CLIError as e:
            raise HTTPError(422, str(e)) from None
    elif body.get("scene") is not None:
        ds = d.scenes()
        i = _int(body.get("scene"), "scene", 0, len(ds) - 1)
        if channels != ds.shape[0]:
            raise HTTPError(422, f"the model takes {channels}-channel images; the scenes have {ds.shape[0]}")
        pixels = ds.images[i]
        x = pixels[None].astype(np.float32) / np.float32(255)
    else:
        raise HTTPError(422, "send a test scene index as 'scene', or an image (data URL or multipart file)")
    threshold = body.get("score_threshold", 0.3)
    try:
        threshold = float(threshold)
    except (TypeError, ValueError):
        raise HTTPError(422, f"score_threshold must be a number, got {threshold!r}") from None
    classes = list(info.get("classes") or [])
    with lock:
        r = run_dense(model, x, threshold)
        feats = _features(model, x)
    scale = max(1, 256 // max(pixels.shape[1:]))
    reply = {"task": model.task, "size": list(pixels.shape[1:]), "image": png_data_url(pixels),
             "overlay": png_data_url(np.asarray(draw_result(pixels, r, classes, scale))), "features": feats}
    if "mask" in r:
        counts = np.bincount(r["mask"].ravel(), minlength=len(classes) + 1)
        reply["pixels"] = {("background" if k == 0 else classes[k - 1]): int(c) for k, c in enumerate(counts) if c}
    else:
        reply["detections"] = [{"class": classes[int(lab) - 1], "score": float(s), "box": [float(v) for v in b]}
                               for b, s, lab in zip(r["boxes"], r["scores"], r["labels"])]
    return reply


async def run(request: Request):
    d = _dense(request)
    body, image = await read_image_request(request, request.app.state.web.limits)
    return JSONResponse(await threaded(_run, d, body, image))


routes = [
    Route("/api/dense/models", list_models, methods=["GET"]),
    Route("/api/dense/scenes", list_scenes, methods=["GET"]),
    Route("/api/dense/run", run, methods=["POST"]),
]
