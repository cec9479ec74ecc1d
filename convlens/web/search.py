"""The Search page's API: the course's retrieval figure, live.

``GET /api/search/layers`` → the current model's layers, the default one (the input of the last Linear)
and the database (the training images of the model's data set). ``POST /api/search`` with an image
(multipart ``image`` or a data URL) or a test ``sample`` index, a ``layer`` and ``k`` → the query and its
``k`` nearest training images at that layer, with labels and cosine distances.

The database's features are computed once per (model, layer) and kept in an exact faiss index
(`convlens.retrieval.FeatureIndex`); the first search at a layer embeds the database (seconds), later
ones only the query. At most `MAX_DATABASE` training images are indexed, so that any layer stays
interactive; the answer says how many.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict

import numpy as np
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from convlens.web.http import read_image_request, threaded
from convlens.web.images import HTTPError, png_data_url

__all__ = ["routes", "MAX_DATABASE", "MAX_K"]

MAX_DATABASE = 20_000
MAX_K = 50
_CACHE_SIZE = 6  # (model, layer) indexes kept; a LeNet-5 layer over 10,000 images is 0.3-16 MB


class _Indexes:
    """Exact indexes of the database by (model handle, layer), built once each (a lock per app)."""

    def __init__(self):
        self.items: OrderedDict = OrderedDict()
        self.lock = threading.Lock()


def _state(web) -> _Indexes:
    if getattr(web, "_search_indexes", None) is None:
        web._search_indexes = _Indexes()
    return web._search_indexes


def _database(web):
    """(name, train set, test set) of the current model's data set, or HTTPError."""
    web.sample_set()  # resolves the model's data set the way the Explain page does
    name = web.samples_name()
    if name is None:
        raise HTTPError(422, "no data set of this model's images is registered: start the server with "
                             "--data NAME=DIR for its data set to search its training images")
    train, test = web.registry.get(name)
    return name, train, test


def _layers(web) -> dict:
    from convlens.features import feature_layers, last_linear_input

    h = web.handle
    name, train, _ = _database(web)
    return {"model": h.label, "layers": feature_layers(h.model), "default": last_linear_input(h.model),
            "dataset": name, "database": min(len(train), MAX_DATABASE), "database_total": len(train),
            "max_k": MAX_K}


def _index(web, layer: str):
    from convlens.data import transforms as T
    from convlens.features import FeatureError, extract, resolve_layer
    from convlens.retrieval import FeatureIndex

    h = web.handle
    try:
        resolve_layer(h.model, layer)
    except FeatureError as e:
        raise HTTPError(422, str(e)) from None
    cache = _state(web)
    key = (id(h), layer)
    with cache.lock:
        if key in cache.items and cache.items[key][0] is h:
            cache.items.move_to_end(key)
            return cache.items[key][1]
        name, train, _ = _database(web)
        n = min(len(train), MAX_DATABASE)
        norm = T.Normalize(h.mean.ravel().tolist(), h.std.ravel().tolist()) if h.mean is not None else None
        t0 = time.perf_counter()
        with h.lock:
            feats = extract(h.model, train.images[:n], layer=layer, transform=norm, progress=False)
        index = FeatureIndex.build(feats, labels=train.labels[:n], kind="flat",
                                   meta={"layer": layer, "dataset": name, "classes": list(train.classes),
                                         "seconds": time.perf_counter() - t0})
        cache.items[key] = (h, index, train)
        while len(cache.items) > _CACHE_SIZE:
            cache.items.popitem(last=False)
        return index


def _k(body: dict) -> int:
    v = body.get("k", 10)
    try:
        k = int(v)
        if isinstance(v, bool) or k != float(v):
            raise ValueError
    except (TypeError, ValueError):
        raise HTTPError(422, f"k must be an integer, got {v!r}") from None
    if not 1 <= k <= MAX_K:
        raise HTTPError(422, f"k must be in 1..{MAX_K}, got {k}")
    return k


def _search(web, body: dict, image) -> dict:
    from convlens.data import transforms as T
    from convlens.features import extract

    h = web.handle
    layer = body.get("layer") or None
    if layer is not None and not isinstance(layer, str):
        raise HTTPError(422, f"layer must be a layer name, got {layer!r}")
    if layer is None:
        from convlens.features import last_linear_input

        layer = last_linear_input(h.model)
    k = _k(body)
    name, train, test = _database(web)
    query_label = None
    if image is not None:
        mode = body.get("prepare", "auto")
        if mode not in ("auto", "digit", "resize"):
            raise HTTPError(422, f"prepare must be auto, digit or resize, got {mode!r}")
        pixels = h.prepare(image, mode)
    elif "sample" in body:
        v = body["sample"]
        try:
            i = int(v)
            if isinstance(v, bool) or i != float(v):
                raise ValueError
        except (TypeError, ValueError):
            raise HTTPError(422, f"sample must be an integer, got {v!r}") from None
        if not 0 <= i < len(test):
            raise HTTPError(422, f"sample must be in 0..{len(test) - 1}, got {i}")
        pixels = np.asarray(test.images[i])
        query_label = test.classes[int(test.labels[i])]
    else:
        raise HTTPError(422, "send an image (multipart 'image' or a data URL) or a test 'sample' index")
    index = _index(web, layer)
    norm = T.Normalize(h.mean.ravel().tolist(), h.std.ravel().tolist()) if h.mean is not None else None
    t0 = time.perf_counter()
    with h.lock:
        q = extract(h.model, pixels[None], layer=layer, transform=norm, progress=False)
    d, rows = index.search(q, k)
    seconds = time.perf_counter() - t0
    classes = list(train.classes)
    hits = [{"rank": r + 1, "index": int(i), "label": classes[int(train.labels[i])], "distance": float(dist),
             "image": png_data_url(np.asarray(train.images[i]))}
            for r, (dist, i) in enumerate(zip(d[0], rows[0])) if i >= 0]
    same = [hit["label"] == query_label for hit in hits] if query_label is not None else None
    return {"query": {"image": png_data_url(pixels), "label": query_label}, "layer": layer, "dim": index.dim,
            "dataset": name, "database": index.ntotal, "database_total": len(train), "metric": "cosine",
            "neighbours": hits, "precision": None if same is None else sum(same) / max(len(same), 1),
            "index_seconds": index.meta.get("seconds"), "search_seconds": seconds}


async def layers(request: Request):
    return JSONResponse(await threaded(_layers, request.app.state.web))


async def search(request: Request):
    web = request.app.state.web
    body, image = await read_image_request(request, web.limits)
    return JSONResponse(await threaded(_search, web, body, image))


routes = [Route("/api/search/layers", layers, methods=["GET"]), Route("/api/search", search, methods=["POST"])]
