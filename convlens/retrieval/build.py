"""From a model and a data set to an index, and from query images to their neighbours.

    from convlens import retrieval
    idx = retrieval.build_index("convlens/assets/lenet5-mnist-mini", "mnist-mini", layer="fc2:input")
    idx.save("index/")
    result = retrieval.search_images(retrieval.load_index("index/"), images, k=10)  # model from the index

The index records which model computed its vectors (checkpoint path and a fingerprint of the weights,
`convlens.features.model_fingerprint`), the layer, the normalisation and the data set, so that queries are
embedded the same way; a query embedded by another model is refused rather than silently compared with
vectors it has nothing in common with.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .index import FeatureIndex, RetrievalError

__all__ = ["build_index", "load_index", "search_images", "check_model", "index_model", "neighbours"]


def _model_and_info(model):
    """(module, description dict, transform) from a Module, a zoo name or a checkpoint path."""
    from convlens import models
    from convlens.data import transforms as T
    from convlens.features import model_fingerprint

    if isinstance(model, str | Path):
        key = str(model).strip().lower().replace("_", "-")
        if isinstance(model, str) and key in models.list_models():
            net = models.get_model(key)
            return net, {"zoo": key, "fingerprint": model_fingerprint(net)}, None
        from convlens.checkpoint import load_checkpoint

        net, info = load_checkpoint(model)
        mean, std = info.get("mean"), info.get("std")
        desc = {"checkpoint": str(Path(info["checkpoint"]).resolve()), "model_name": info.get("model_name"),
                "input_shape": list(info.get("input_shape") or []), "classes": info.get("classes"),
                "dataset": info.get("dataset"), "mean": mean, "std": std, "fingerprint": model_fingerprint(net)}
        return net, desc, (T.Normalize(mean, std) if mean is not None and std is not None else None)
    return model, {"fingerprint": model_fingerprint(model), "model_class": type(model).__name__}, None


def build_index(model, dataset, layer: str | None = None, *, dataset_name: str | None = None, split: str = "train",
                batch_size: int = 256, transform=None, progress: bool | None = None, meta: dict | None = None,
                **config) -> FeatureIndex:
    """Embed every image of ``dataset`` with ``model`` at ``layer`` and index the vectors.

    ``model``: a Module, a zoo name or a checkpoint path (its normalisation is then used); ``dataset``: a
    name for `convlens.data.load`, an array data set, or a (N, C, H, W) array. ``config``: `IndexConfig`
    fields (kind="auto"|"flat"|"hnsw"|"ivf", metric="cosine"|"l2", ...).
    """
    from convlens import data
    from convlens.features import extract, resolve_layer

    net, desc, ckpt_transform = _model_and_info(model)
    transform = ckpt_transform if transform is None else transform
    if isinstance(dataset, str):
        dataset_name = dataset_name or dataset
        dataset = data.load(dataset, train=split == "train")
    resolve_layer(net, layer)  # a bad layer name fails before any work
    from convlens.features import last_linear_input

    layer = layer or last_linear_input(net)
    feats = extract(net, dataset, layer=layer, batch_size=batch_size, transform=transform, progress=progress,
                    desc=f"embedding ({layer})")
    labels = getattr(dataset, "labels", None)
    ids = _ids(dataset, len(feats))
    info = {"model": desc, "layer": layer, "dataset": dataset_name or getattr(dataset, "name", None),
            "split": split, "classes": list(getattr(dataset, "classes", []) or []),
            "image_shape": list(np.asarray(getattr(dataset, "images", feats[:0])).shape[1:]), **(meta or {})}
    if transform is not None and desc.get("mean") is None and hasattr(transform, "mean"):
        info["model"] = {**desc, "mean": np.asarray(transform.mean).tolist(), "std": np.asarray(transform.std).tolist()}
    return FeatureIndex.build(feats, labels=labels, ids=ids, meta=info, **config)


def _ids(dataset, n: int) -> list:
    """Each image's id: its file (ImageFolder) or its index in the full data set (also through a Subset)."""
    parent, indices = getattr(dataset, "parent", None), getattr(dataset, "indices", None)
    if parent is not None and indices is not None:
        files = getattr(parent, "files", None)
        return [files[i] for i in indices] if files is not None else [int(i) for i in indices]
    files = getattr(dataset, "files", None)
    return list(files) if files is not None and len(files) == n else list(range(n))


def load_index(folder) -> FeatureIndex:
    """`FeatureIndex.load`: an index folder written by `FeatureIndex.save` / `convlens index`."""
    return FeatureIndex.load(folder)


def index_model(index: FeatureIndex):
    """``(module, transform)`` that computed the index's vectors, loaded from the recorded checkpoint;
    RetrievalError when it is gone or its weights changed since."""
    desc = index.meta.get("model") or {}
    if desc.get("zoo"):
        raise RetrievalError(f"{_where(index)}: built with an untrained {desc['zoo']} (random weights): pass the "
                             "same model object to search it")
    ckpt = desc.get("checkpoint")
    if not ckpt:
        raise RetrievalError(f"{_where(index)}: records no checkpoint; pass the model that built it")
    if not Path(ckpt).exists():
        raise RetrievalError(f"{_where(index)}: built with checkpoint {ckpt}, which no longer exists; pass "
                             "--model with the same checkpoint, or rebuild the index")
    net, _, transform = _model_and_info(ckpt)
    check_model(index, net, ckpt)
    return net, transform


def _where(index: FeatureIndex) -> str:
    return str(index.meta.get("folder") or "the index")


def check_model(index: FeatureIndex, model, name: str | None = None) -> None:
    """RetrievalError unless ``model``'s weights are those that built ``index`` (same fingerprint)."""
    from convlens.features import model_fingerprint

    want = (index.meta.get("model") or {}).get("fingerprint")
    got = model_fingerprint(model)
    if want is not None and want != got:
        built = (index.meta.get("model") or {}).get("checkpoint") or "another model"
        raise RetrievalError(f"{_where(index)}: was built with {built} (weights fingerprint {want}), but the query "
                             f"model {name or ''}{' ' if name else ''}has fingerprint {got}: its features are not "
                             "comparable; search with the model that built the index or rebuild it")


def search_images(index: FeatureIndex, images, k: int = 10, model=None, transform=None,
                  progress: bool | None = False) -> list[list[dict]]:
    """Neighbours of each query image: a list per query of ``{"rank", "row", "id", "label", "class",
    "distance"}``. ``model`` defaults to the index's own checkpoint (`index_model`); a different model
    is refused (`check_model`). Images: (Q, C, H, W) uint8 or float, prepared as the model's input."""
    from convlens.features import FeatureError, extract

    if model is None:
        model, default_transform = index_model(index)
        transform = default_transform if transform is None else transform
    else:
        model, _, ckpt_transform = _model_and_info(model)
        check_model(index, model)
        transform = ckpt_transform if transform is None else transform
        if transform is None and (index.meta.get("model") or {}).get("mean") is not None:
            from convlens.data import transforms as T

            m = index.meta["model"]
            transform = T.Normalize(m["mean"], m["std"])
    shape = tuple(index.meta.get("image_shape") or ())
    x = np.asarray(images._data if hasattr(images, "_data") else images)
    if x.dtype == object or not (np.issubdtype(x.dtype, np.number)):
        raise RetrievalError(f"query images: expected a (N, C, H, W) array of numbers, got dtype {x.dtype}")
    if x.ndim == 3 and shape and tuple(x.shape) == shape:
        x = x[None]
    if shape and tuple(x.shape[1:]) != shape:
        raise RetrievalError(f"query images have shape (C, H, W) = {tuple(x.shape[1:])}, the index's images "
                             f"are {shape}")
    try:
        feats = extract(model, x, layer=index.meta.get("layer"), transform=transform, progress=progress)
    except FeatureError as e:
        raise RetrievalError(f"query images: {e}") from None
    d, rows = index.search(feats, k)
    return neighbours(index, d, rows)


def neighbours(index: FeatureIndex, distances: np.ndarray, rows: np.ndarray) -> list[list[dict]]:
    """`FeatureIndex.search`'s arrays as lists of dicts with ids, labels and class names."""
    classes = list(index.meta.get("classes") or [])
    out = []
    for d_row, i_row in zip(distances, rows):
        hits = []
        for rank, (d, i) in enumerate(zip(d_row, i_row), 1):
            if i < 0:
                continue
            label = None if index.labels is None else int(index.labels[i])
            hits.append({"rank": rank, "row": int(i), "id": index.ids[i], "label": label,
                         "class": classes[label] if label is not None and label < len(classes) else None,
                         "distance": float(d)})
        out.append(hits)
    return out
