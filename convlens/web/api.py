"""The JSON API of the Explain, Draw and Playground pages, and the catalogue (models, data sets, model).

Every handler reads the app's `WebState` from ``request.app.state.web``; blocking work (NumPy, Pillow)
runs in a thread pool. Errors are `HTTPError`s (answered as ``{"error": ...}`` by the app).
"""

from __future__ import annotations

import secrets
from collections import OrderedDict

import numpy as np
from starlette.requests import Request
from starlette.routing import Route

from convlens.web import explain as X
from convlens.web.http import JSONResponse, loads, read_image_request, read_json, threaded
from convlens.web.images import HTTPError, float_map, png_data_url

__all__ = ["routes", "InputCache"]

PLAYGROUND_MAX_SIDE = 256
KERNEL_MAX = 15


class InputCache:
    """The last few images explained, by a random token, so that clicks on a feature map need not send
    the image again."""

    def __init__(self, size: int = 64):
        self._items: OrderedDict[str, np.ndarray] = OrderedDict()
        self.size = size

    def put(self, pixels: np.ndarray) -> str:
        token = secrets.token_hex(8)
        self._items[token] = pixels
        while len(self._items) > self.size:
            self._items.popitem(last=False)
        return token

    def get(self, token) -> np.ndarray:
        if not isinstance(token, str) or token not in self._items:
            raise HTTPError(404, "unknown or expired input_id: explain the image again")
        self._items.move_to_end(token)
        return self._items[token]


def _web(request: Request):
    return request.app.state.web


def _int(body: dict, key: str, default=None, lo=None, hi=None) -> int:
    v = body.get(key, default)
    if v is None:
        raise HTTPError(422, f"{key} is required")
    try:
        iv = int(v)
        if isinstance(v, bool) or iv != float(v):
            raise ValueError
    except (TypeError, ValueError, OverflowError):
        raise HTTPError(422, f"{key} must be an integer, got {v!r}") from None
    if (lo is not None and iv < lo) or (hi is not None and iv > hi):
        raise HTTPError(422, f"{key} must be in {lo}..{hi}, got {iv}")
    return iv


# ---- catalogue ------------------------------------------------------------------------------------------
async def list_models(request: Request):
    from convlens import models
    from convlens.train import OPTIMIZERS, SCHEDULES
    from convlens.web.job_setup import QUICK

    out = [{"name": n, "description": models.describe_model(n), "input_shape": list(models.default_input_shape(n)),
            "recipe": models.default_recipe(n), "quick": QUICK.get(n)} for n in models.list_models()]
    return JSONResponse({"models": out, "optimizers": list(OPTIMIZERS), "schedules": list(SCHEDULES)})


async def list_datasets(request: Request):
    return JSONResponse({"datasets": _web(request).registry.describe()})


async def load_dataset(request: Request):
    """``{"name": NAME}``: start loading a data set in the background; poll GET /api/datasets for its
    ``state`` (loading, with the phase and seconds so far; ready; failed, with the error)."""
    body = await read_json(request)
    st = await threaded(_web(request).registry.load_async, body.get("name"))
    return JSONResponse({"name": body.get("name"), **st}, status_code=202 if st["state"] == "loading" else 200)


def _model_info(web) -> dict:
    from convlens.summary import summary_rows

    h = web.handle
    with h.lock:
        rows = summary_rows(h.model, h.input_shape)
        traces = X.trace(h.model, np.zeros((1, *h.input_shape), np.float32), h.input_shape)
    layers = X.overview(traces, lambda a, m: None)
    for layer in layers:
        layer.pop("values", None)
    keep = ("dataset", "model_name", "test_accuracy", "val_accuracy", "test_set", "epoch", "recipe")
    return {"label": h.label, "classes": h.classes, "input_shape": list(h.input_shape), "digit_model": h.is_digit_model,
            "info": {k: h.info.get(k) for k in keep if h.info.get(k) is not None}, "source": web.source,
            "summary": rows, "layers": layers, "samples": web.samples_name(), "shipped": sorted(web.shipped)}


async def model_info(request: Request):
    return JSONResponse(await threaded(_model_info, _web(request)))


def _interleaved(labels: np.ndarray) -> np.ndarray:
    """Indices ordered by (rank within its class, class): the first image of every class, then the
    second... (a data set stored class by class, like CIFAR-10's folders, would otherwise show one
    class for pages on end)."""
    order = np.argsort(labels, kind="stable")
    sorted_labels = labels[order]
    rank = np.empty(len(labels), np.int64)
    rank[order] = np.arange(len(labels)) - np.searchsorted(sorted_labels, sorted_labels, "left")
    return np.lexsort((np.arange(len(labels)), labels, rank))


async def samples(request: Request):
    """``?offset=&count=&label=``: a page of the images the Explain page offers (``label``: one class's
    images only, by class index or name)."""
    web = _web(request)
    q = dict(request.query_params)
    count = _int(q, "count", 24, 1, 200)
    offset = _int(q, "offset", 0, 0, 10**9)
    ds = await threaded(web.sample_set)
    if ds is None:
        msg = web.samples_message()
        return JSONResponse({"dataset": web.samples_name(), "samples": [], "total": 0, "message": msg,
                             "loading": bool(msg and "still loading" in msg)})
    labels = np.asarray(ds.labels)
    classes = list(ds.classes)
    pool = _interleaved(labels)  # the classes take turns: a page of "all classes" shows every class
    label = q.get("label")
    if label not in (None, ""):
        k = classes.index(label) if label in classes else _int({"label": label}, "label", None, 0, len(classes) - 1)
        pool = np.flatnonzero(labels == k)
    idx = pool[offset: offset + count]
    items = [{"index": int(i), "label": classes[int(labels[i])], "image": png_data_url(ds.images[i])} for i in idx]
    return JSONResponse({"dataset": web.samples_name(), "part": web.samples_part(), "samples": items,
                         "total": int(pool.size), "offset": offset, "classes": classes,
                         "counts": np.bincount(labels, minlength=len(classes)).tolist()})


# ---- explain ---------------------------------------------------------------------------------------------
def _sample_pixels(web, index) -> np.ndarray:
    ds = web.sample_set()
    if ds is None:
        raise HTTPError(422, "this model has no sample images; upload an image instead")
    i = _int({"sample": index}, "sample", None, 0, len(ds) - 1)
    return np.asarray(ds.images[i])


def _pixels_from(web, body: dict, image) -> np.ndarray:
    if image is not None:
        mode = body.get("prepare", "auto")
        if mode not in ("auto", "digit", "resize"):
            raise HTTPError(422, f"prepare must be auto, digit or resize, got {mode!r}")
        return web.handle.prepare(image, mode)
    if "sample" in body:
        return _sample_pixels(web, body["sample"])
    if "input_id" in body:
        return web.inputs.get(body["input_id"])
    raise HTTPError(422, "send an image (multipart 'image' or a data URL), a 'sample' index or an 'input_id'")


def _explain(web, pixels: np.ndarray) -> dict:
    h = web.handle
    with h.lock:
        traces = X.trace(h.model, h.normalise(pixels), h.input_shape)
    return {"input_id": web.inputs.put(pixels), "model": h.label,
            "input": {"image": png_data_url(pixels), "shape": list(pixels.shape),
                      "values": float_map(traces[0].input)},
            "layers": X.overview(traces, float_map), "output": X.logits(traces, h.classes)}


async def explain(request: Request):
    web = _web(request)
    body, image = await read_image_request(request, web.limits)
    pixels = await threaded(_pixels_from, web, body, image)
    return JSONResponse(await threaded(_explain, web, pixels))


def _explain_point(web, body: dict, fn) -> dict:
    pixels = _pixels_from(web, body, None)
    layer = body.get("layer")
    if not isinstance(layer, str):
        raise HTTPError(422, "layer is required: a layer name such as 'conv1'")
    pos = [_int(body, k) for k in ("channel", "y", "x")]
    h = web.handle
    with h.lock:
        traces = X.trace(h.model, h.normalise(pixels), h.input_shape)
    try:
        return fn(traces, layer, *pos)
    except ValueError as e:
        raise HTTPError(422, str(e)) from None


async def explain_conv(request: Request):
    body = await read_json(request)
    return JSONResponse(await threaded(_explain_point, _web(request), body, X.explain_conv))


async def explain_pool(request: Request):
    body = await read_json(request)
    return JSONResponse(await threaded(_explain_point, _web(request), body, X.explain_pool))


def _explain_fc(web, body: dict) -> dict:
    pixels = _pixels_from(web, body, None)
    layer = body.get("layer")
    if not isinstance(layer, str):
        raise HTTPError(422, "layer is required: a Linear layer's name such as 'fc1'")
    unit = _int(body, "unit")
    h = web.handle
    with h.lock:
        traces = X.trace(h.model, h.normalise(pixels), h.input_shape)
    try:
        out = X.explain_fc(traces, layer, unit)
    except ValueError as e:
        raise HTTPError(422, str(e)) from None
    if traces[-1].name == out["layer"]:
        out["softmax"] = X.logits(traces, h.classes)
    return out


async def explain_fc(request: Request):
    body = await read_json(request)
    return JSONResponse(await threaded(_explain_fc, _web(request), body))


SHIFT_MAX = 8


def _shift(web, body: dict) -> dict:
    pixels = _pixels_from(web, body, None)
    dy, dx = _int(body, "dy", 0, -SHIFT_MAX, SHIFT_MAX), _int(body, "dx", 0, -SHIFT_MAX, SHIFT_MAX)
    moved = X._shift(pixels, dy, dx)
    h = web.handle
    with h.lock:
        out = X.shift_demo(h.model, h.normalise(pixels), h.normalise(moved), h.input_shape, dy, dx, h.classes,
                           float_map)
    out["input"] = {"original": png_data_url(pixels), "shifted": png_data_url(moved), "shape": list(pixels.shape)}
    out["model"] = h.label
    return out


async def shift(request: Request):
    """Move the input (a ``sample`` or an ``input_id``) by (``dy``, ``dx``) pixels, |d| ≤ 8, and compare
    every layer's maps and the prediction (`convlens.web.explain.shift_demo`)."""
    body = await read_json(request)
    return JSONResponse(await threaded(_shift, _web(request), body))


def _predict(web, body: dict, image) -> dict:
    if image is None:
        raise HTTPError(422, "send the drawing as 'image' (a PNG data URL or a multipart file)")
    pixels = _pixels_from(web, body, image)
    h = web.handle
    with h.lock:
        traces = X.trace(h.model, h.normalise(pixels), h.input_shape)
    layers = [{"name": t.name, "type": t.type, "kind": X.layer_kind(t.module), "shape": list(t.output.shape),
               "values": float_map(t.output, 16 if t.output.ndim == 3 and t.output[0].size > 1 else None)}
              for t in traces if t.output.ndim == 3 or (t.output.ndim == 1 and t.output.size <= 512)]
    return {"prepared": png_data_url(pixels), "blank": not bool(pixels.any()), **X.logits(traces, h.classes),
            "layers": layers}


async def predict(request: Request):
    web = _web(request)
    body, image = await read_image_request(request, web.limits)
    return JSONResponse(await threaded(_predict, web, body, image))


# ---- playground ------------------------------------------------------------------------------------------
def sample_shapes(size: int = 128) -> np.ndarray:
    """A procedural test picture (uint8, size×size): a shaded background, a bright square, a disc, a
    triangle and stripes: edges in every direction, for the hand-designed kernels to find."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / (size - 1)
    img = 40 + 50 * xx  # a left-to-right ramp
    s = size
    img[int(0.12 * s):int(0.42 * s), int(0.1 * s):int(0.4 * s)] = 235
    disc = (xx - 0.7) ** 2 + (yy - 0.28) ** 2 < 0.16 ** 2
    img[disc] = 170
    tri = (yy > 0.55) & (yy < 0.9) & (np.abs(xx - 0.27) < (yy - 0.55) * 0.6)
    img[tri] = 210
    stripes = (xx > 0.55) & (xx < 0.92) & (yy > 0.58) & (yy < 0.9)
    img[stripes & (((xx + yy) * size / 8).astype(int) % 2 == 0)] = 250
    return np.clip(img, 0, 255).astype(np.uint8)


def _kernel(value) -> tuple[str, np.ndarray]:
    from convlens.filters import KERNELS

    if isinstance(value, str) and value.strip().lower() in KERNELS:
        key = value.strip().lower()
        return key, KERNELS[key].copy()
    if isinstance(value, str):
        if len(value) > 20_000:
            raise HTTPError(422, f"kernel text too long ({len(value):,} characters)")
        try:
            value = loads(value, "kernel: invalid JSON:", 422)
        except HTTPError:
            raise HTTPError(422, f"kernel must be one of {', '.join(KERNELS)} or rows of numbers, "
                                 f"got {value[:80]!r}") from None
    try:
        k = np.array(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise HTTPError(422, "kernel must be a rectangular table of numbers (rows of equal length)") from None
    if k.ndim != 2 or k.size == 0:
        raise HTTPError(422, f"kernel must be 2-d (rows of numbers), got shape {k.shape}")
    if max(k.shape) > KERNEL_MAX:
        raise HTTPError(422, f"kernel must be at most {KERNEL_MAX}×{KERNEL_MAX}, got {k.shape[0]}×{k.shape[1]}")
    if not np.all(np.isfinite(k)):
        raise HTTPError(422, "kernel values must be finite numbers")
    with np.errstate(over="ignore"):
        k32 = k.astype(np.float32)
    if not np.all(np.isfinite(k32)):  # 1e39 is a float64 but not a float32
        raise HTTPError(422, f"kernel values must fit float32 (|v| ≤ 3.4e38); got {float(np.abs(k).max()):.3g}")
    return "custom", k32


def _playground(web, body: dict, image) -> dict:
    from PIL import Image

    from convlens.filters import apply_kernel, output_size_formula
    from convlens.nn.shape import conv_output_size

    note = None
    if image is not None:
        gray = image.convert("L")
        if max(gray.size) > PLAYGROUND_MAX_SIDE:
            scale = PLAYGROUND_MAX_SIDE / max(gray.size)
            size = (max(1, round(gray.size[0] * scale)), max(1, round(gray.size[1] * scale)))
            note = f"resized from {gray.size[0]}×{gray.size[1]} to {size[0]}×{size[1]}"
            gray = gray.resize(size, Image.Resampling.LANCZOS)
        pixels = np.asarray(gray, dtype=np.uint8)
    else:
        sample = body.get("sample", "shapes")
        if sample == "shapes":
            pixels = sample_shapes()
        elif sample == "digit":
            ds = web.sample_set()
            pixels = np.asarray(ds.images[0][0]) if ds is not None and ds.shape[0] == 1 else sample_shapes()
        else:
            raise HTTPError(422, f"sample must be 'shapes' or 'digit', got {sample!r}")
    name, kernel = _kernel(body.get("kernel", "sobel-x"))
    padding = _int(body, "padding", 0, 0, 32)
    stride = _int(body, "stride", 1, 1, 32)
    mode = body.get("padding_mode", "zeros")
    if mode not in ("zeros", "replicate"):
        raise HTTPError(422, f"padding_mode must be 'zeros' or 'replicate', got {mode!r}")
    h, w = pixels.shape
    fh, fw = kernel.shape
    out_h, out_w = conv_output_size(h, fh, stride, padding), conv_output_size(w, fw, stride, padding)
    if out_h < 1 or out_w < 1:
        raise HTTPError(422, f"the kernel ({fh}×{fw}) does not fit the {h}×{w} image with padding {padding}: "
                             f"the output would be {out_h}×{out_w}")
    x = pixels.astype(np.float32) / np.float32(255)
    try:
        out = apply_kernel(x, kernel, stride=stride, padding=padding, padding_mode=mode)
    except ValueError as e:
        raise HTTPError(422, str(e)) from None
    if not np.all(np.isfinite(out)):
        raise HTTPError(422, "the kernel's values are so large that the feature map overflows float32; use "
                             "smaller numbers")
    return {"kernel_name": name, "kernel": kernel.tolist(), "padding": padding, "stride": stride,
            "padding_mode": mode, "note": note, "input": {"image": png_data_url(pixels), "shape": [h, w]},
            "output_shape": [int(out.shape[0]), int(out.shape[1])],
            "formula": {"height": output_size_formula(h, fh, padding, stride),
                        "width": output_size_formula(w, fw, padding, stride)},
            "output": float_map(out), "relu": float_map(np.maximum(out, 0))}


async def playground(request: Request):
    web = _web(request)
    body, image = await read_image_request(request, web.limits)
    return JSONResponse(await threaded(_playground, web, body, image))


async def kernels(request: Request):
    from convlens.filters import KERNELS

    return JSONResponse({"kernels": {k: v.tolist() for k, v in KERNELS.items()}})


routes = [
    Route("/api/models", list_models, methods=["GET"]),
    Route("/api/datasets", list_datasets, methods=["GET"]),
    Route("/api/datasets/load", load_dataset, methods=["POST"]),
    Route("/api/model", model_info, methods=["GET"]),
    Route("/api/samples", samples, methods=["GET"]),
    Route("/api/explain", explain, methods=["POST"]),
    Route("/api/explain/conv", explain_conv, methods=["POST"]),
    Route("/api/explain/pool", explain_pool, methods=["POST"]),
    Route("/api/explain/fc", explain_fc, methods=["POST"]),
    Route("/api/shift", shift, methods=["POST"]),
    Route("/api/predict", predict, methods=["POST"]),
    Route("/api/playground", playground, methods=["POST"]),
    Route("/api/playground/kernels", kernels, methods=["GET"]),
]
