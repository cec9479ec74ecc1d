"""A vector index over feature vectors: faiss underneath, metadata as JSON beside it, never pickle.

    idx = FeatureIndex.build(features, labels=labels, ids=ids, meta={"layer": "fc2:input"})
    distances, neighbours = idx.search(queries, k=10)     # (Q, k) float32 ascending, (Q, k) int64 rows
    idx.save("index/")          # index/index.faiss (faiss.write_index) + index/index.json (metadata)
    idx = FeatureIndex.load("index/")

Why faiss: exact search is one matrix product, which NumPy could do; what a library adds is the approximate
indexes (HNSW graphs, inverted files) that keep a million vectors searchable in well under a millisecond per
query, built and read back in a documented binary format. faiss (Meta AI, MIT licence, CPU wheels on PyPI)
is the reference implementation of both, used under most vector databases.

Kinds: ``flat`` (``IndexFlatIP`` / ``IndexFlatL2``: exact), ``hnsw`` (``IndexHNSWFlat``: a navigable
small-world graph, no training, recall set by ``ef_search``), ``ivf`` (``IndexIVFFlat``: k-means cells,
recall set by ``nprobe``). ``auto`` is exact up to `EXACT_MAX` vectors and IVF above: measured on this
project's 2 shared cores (README, "Retrieval at scale"), IVF indexed 1,000,000 vectors in 77 s and kept
recall@10 >= 0.95 at 0.3-1 ms a query, while building an HNSW graph took 148 s for 50,000 vectors
already (about an hour for a million); HNSW answers fastest once built and is there as ``kind="hnsw"``.

Metrics: ``cosine`` L2-normalises vectors and searches by inner product (distance = 1 - cosine similarity);
``l2`` is Euclidean distance (faiss returns squared distances; `search` returns their square roots).
"""

from __future__ import annotations

import json
import math
import os
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

__all__ = ["FeatureIndex", "IndexConfig", "RetrievalError", "EXACT_MAX", "INDEX_FILE", "META_FILE"]

INDEX_FILE = "index.faiss"
META_FILE = "index.json"
FORMAT = "convlens-index"
FORMAT_VERSION = 1
# Above this many vectors `kind="auto"` builds an IVF index instead of the exact flat one. An exact query
# over 50,000 vectors of 128 dimensions took 3.7 ms on one loaded core (README, "Retrieval at scale"), so
# ~15 ms at 200,000, still interactive; over 1,000,000 it took 217 ms, IVF 0.3-0.6 ms at recall@10 >= 0.95.
EXACT_MAX = 200_000
KINDS = ("auto", "flat", "hnsw", "ivf")
METRICS = ("cosine", "l2")


class RetrievalError(ValueError):
    """Bad input to retrieval (a query of the wrong size or type, an index from another model, a corrupt
    index file): a one-line message naming what was wrong and what was expected."""


@dataclass
class IndexConfig:
    """How the faiss index is built and searched (stored in the metadata)."""

    kind: str = "auto"          # auto | flat | hnsw | ivf
    metric: str = "cosine"      # cosine | l2
    hnsw_m: int = 32            # graph degree: more = better recall, more memory and build time
    ef_construction: int = 80   # candidate list while building the graph
    ef_search: int = 64         # candidate list per query: the recall/latency knob of HNSW
    nlist: int | None = None    # IVF cells (default sqrt(N), at least 39 vectors per cell)
    nprobe: int = 32            # IVF cells visited per query: recall@10 0.96 at 50,000, 0.998 at 1,000,000

    def __post_init__(self):
        if self.kind not in KINDS:
            raise RetrievalError(f"index kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        if self.metric not in METRICS:
            raise RetrievalError(f"metric must be one of {', '.join(METRICS)}, got {self.metric!r}")


def _faiss():
    try:
        import faiss
    except ImportError as e:
        raise ImportError("retrieval needs faiss: pip install 'convlens[retrieval]' (faiss-cpu)") from e
    return faiss


def as_vectors(x, what: str = "vectors", dim: int | None = None) -> np.ndarray:
    """A C-contiguous float32 (N, D) array from ``x``; RetrievalError naming the shape or type otherwise."""
    from convlens.tensor import Tensor

    if isinstance(x, Tensor):
        x = x._data
    if isinstance(x, str | bytes | Path):
        raise RetrievalError(f"{what}: expected a (N, D) array of numbers, got {type(x).__name__} {str(x)[:60]!r}")
    try:
        a = np.asarray(x)
    except (ValueError, TypeError) as e:
        raise RetrievalError(f"{what}: expected a (N, D) array of numbers ({e})") from None
    if a.dtype == object or not (np.issubdtype(a.dtype, np.number) or a.dtype == bool):
        raise RetrievalError(f"{what}: expected a (N, D) array of numbers, got dtype {a.dtype}")
    if np.iscomplexobj(a):
        raise RetrievalError(f"{what}: expected real numbers, got dtype {a.dtype}")
    if a.ndim == 1 and dim is not None and a.shape[0] == dim:
        a = a[None]
    if a.ndim != 2:
        raise RetrievalError(f"{what}: expected a (N, D) array, got shape {a.shape}")
    if dim is not None and a.shape[1] != dim:
        raise RetrievalError(f"{what}: have {a.shape[1]} dimensions per vector, the index holds {dim}-dimensional "
                             "vectors (features of another layer or model?)")
    a = np.ascontiguousarray(a, dtype=np.float32)
    if not np.isfinite(a).all():
        raise RetrievalError(f"{what}: contain NaN or infinite values")
    return a


def _normalise(a: np.ndarray) -> np.ndarray:
    from convlens.features import l2_normalize

    return l2_normalize(a)


class FeatureIndex:
    """Feature vectors in a faiss index with their labels, ids and provenance (``meta``)."""

    def __init__(self, index, config: IndexConfig, labels=None, ids=None, meta: dict | None = None):
        self.index = index
        self.config = config
        self.labels = None if labels is None else np.asarray(labels, dtype=np.int64)
        self.ids = list(range(index.ntotal)) if ids is None else list(ids)
        self.meta = dict(meta or {})
        if self.labels is not None and len(self.labels) != index.ntotal:
            raise RetrievalError(f"labels: {len(self.labels)} given for {index.ntotal} vectors")
        if len(self.ids) != index.ntotal:
            raise RetrievalError(f"ids: {len(self.ids)} given for {index.ntotal} vectors")

    # ---- building -----------------------------------------------------------------------------------------
    @classmethod
    def build(cls, features, labels=None, ids=None, meta: dict | None = None, config: IndexConfig | None = None,
              **options) -> FeatureIndex:
        """An index of ``features`` (N, D); ``options`` are `IndexConfig` fields (kind, metric, ...)."""
        config = config or IndexConfig(**options)
        x = as_vectors(features, "features")
        if x.shape[0] == 0:
            raise RetrievalError("features: an index needs at least one vector, got 0")
        if config.metric == "cosine":
            x = _normalise(x)
        kind = config.kind
        if kind == "auto":
            kind = "flat" if x.shape[0] <= EXACT_MAX else "ivf"
        config = IndexConfig(**{**asdict(config), "kind": kind})
        index = _new_index(x, config)
        index.add(x)
        return cls(index, config, labels, ids, meta)

    @property
    def ntotal(self) -> int:
        return int(self.index.ntotal)

    @property
    def dim(self) -> int:
        return int(self.index.d)

    def __len__(self) -> int:
        return self.ntotal

    def __repr__(self) -> str:
        return (f"FeatureIndex(n={self.ntotal}, dim={self.dim}, kind={self.config.kind!r}, "
                f"metric={self.config.metric!r}, layer={self.meta.get('layer')!r})")

    # ---- searching ----------------------------------------------------------------------------------------
    def search(self, queries, k: int = 10, batch_size: int = 4096) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` nearest vectors of each query: ``(distances float32 (Q, k) ascending, rows int64 (Q, k))``
        (faiss's convention, rows index ``labels``/``ids``; -1 where fewer than k were found)."""
        if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
            raise RetrievalError(f"k must be a positive integer, got {k!r}")
        q = as_vectors(queries, "queries", dim=self.dim)
        if self.config.metric == "cosine":
            q = _normalise(q)
        k = min(int(k), self.ntotal)
        self._apply_search_params()
        dists, rows = [], []
        for a in range(0, q.shape[0], batch_size):
            d, i = self.index.search(q[a : a + batch_size], k)
            dists.append(d)
            rows.append(i)
        d = np.concatenate(dists) if dists else np.zeros((0, k), np.float32)
        i = np.concatenate(rows) if rows else np.zeros((0, k), np.int64)
        if self.config.metric == "cosine":
            d = 1.0 - d  # inner product of unit vectors = cosine similarity
        else:
            d = np.sqrt(np.maximum(d, 0))
        return d.astype(np.float32), i.astype(np.int64)

    def _apply_search_params(self) -> None:
        if self.config.kind == "hnsw":
            self.index.hnsw.efSearch = max(int(self.config.ef_search), 1)
        elif self.config.kind == "ivf":
            self.index.nprobe = max(int(self.config.nprobe), 1)

    # ---- files --------------------------------------------------------------------------------------------
    def save(self, folder) -> Path:
        """Write ``folder/index.faiss`` (faiss.write_index) and ``folder/index.json`` (config, labels, ids,
        meta), each to a temporary file renamed into place. Returns the folder."""
        from convlens.checkpoint import write_json_atomic

        faiss = _faiss()
        folder = Path(folder).expanduser()
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{INDEX_FILE}.{secrets.token_hex(6)}.tmp"
        try:
            faiss.write_index(self.index, str(tmp))
            os.replace(tmp, folder / INDEX_FILE)
        finally:
            tmp.unlink(missing_ok=True)
        meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "faiss_version": faiss.__version__,
                "count": self.ntotal, "dim": self.dim, "config": asdict(self.config), **self.meta,
                "labels": None if self.labels is None else self.labels.tolist(), "ids": self.ids}
        write_json_atomic(folder / META_FILE, meta)
        return folder

    @classmethod
    def load(cls, folder) -> FeatureIndex:
        """Read an index written by `save`; RetrievalError naming the file for a missing, corrupt or
        mismatched one."""
        faiss = _faiss()
        folder = Path(folder).expanduser()
        if folder.is_file() and folder.name in (INDEX_FILE, META_FILE):
            folder = folder.parent
        ipath, mpath = folder / INDEX_FILE, folder / META_FILE
        if not folder.is_dir():
            raise RetrievalError(f"{folder}: no such index folder (expected {INDEX_FILE} + {META_FILE} inside, "
                                 "written by `convlens index`)")
        for p in (ipath, mpath):
            if not p.is_file():
                raise RetrievalError(f"{p}: missing; an index folder holds {INDEX_FILE} and {META_FILE}")
        meta = _read_meta(mpath)
        try:
            index = faiss.read_index(str(ipath))
        except RuntimeError as e:
            why = str(e).strip().splitlines()[-1][:160]
            raise RetrievalError(f"{ipath}: not a readable faiss index (corrupt or truncated; "
                                 f"{ipath.stat().st_size} bytes): {why}") from None
        if index.ntotal != meta["count"] or index.d != meta["dim"]:
            raise RetrievalError(f"{ipath}: holds {index.ntotal} vectors of {index.d} dimensions, but {mpath.name} "
                                 f"describes {meta['count']} of {meta['dim']}: the two files do not belong together")
        config = IndexConfig(**{k: v for k, v in meta.pop("config").items() if k in IndexConfig.__dataclass_fields__})
        labels, ids = meta.pop("labels"), meta.pop("ids")
        for key in ("format", "format_version", "faiss_version", "count", "dim"):
            meta.pop(key, None)
        meta["folder"] = str(folder)
        return cls(index, config, labels, ids, meta)


def _read_meta(path: Path) -> dict:
    try:
        meta = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        where = f" at byte {e.pos}" if isinstance(e, json.JSONDecodeError) else ""
        raise RetrievalError(f"{path}: not valid JSON{where} ({type(e).__name__}); the index metadata is corrupt") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise RetrievalError(f"{path}: not convlens index metadata (expected \"format\": \"{FORMAT}\")")
    if meta.get("format_version", 0) > FORMAT_VERSION:
        raise RetrievalError(f"{path}: format version {meta.get('format_version')} is newer than this convlens "
                             f"reads ({FORMAT_VERSION}); upgrade convlens")
    missing = [k for k in ("count", "dim", "config", "labels", "ids") if k not in meta]
    if missing:
        raise RetrievalError(f"{path}: index metadata lacks {', '.join(missing)}")
    if not isinstance(meta["ids"], list) or len(meta["ids"]) != meta["count"]:
        raise RetrievalError(f"{path}: 'ids' must list one id per vector ({meta['count']})")
    if meta["labels"] is not None and (not isinstance(meta["labels"], list) or len(meta["labels"]) != meta["count"]):
        raise RetrievalError(f"{path}: 'labels' must list one label per vector ({meta['count']})")
    return meta


def _new_index(x: np.ndarray, config: IndexConfig):
    faiss = _faiss()
    n, d = x.shape
    ip = config.metric == "cosine"
    metric = faiss.METRIC_INNER_PRODUCT if ip else faiss.METRIC_L2
    if config.kind == "flat":
        return faiss.IndexFlatIP(d) if ip else faiss.IndexFlatL2(d)
    if config.kind == "hnsw":
        index = faiss.IndexHNSWFlat(d, int(config.hnsw_m), metric)
        index.hnsw.efConstruction = int(config.ef_construction)
        return index
    # IVF: k-means cells over (a sample of) the vectors; faiss wants >= 39 training points per cell
    nlist = int(config.nlist or max(1, min(int(math.sqrt(n)), n // 39)))
    quantizer = faiss.IndexFlatIP(d) if ip else faiss.IndexFlatL2(d)
    index = faiss.IndexIVFFlat(quantizer, d, nlist, metric)
    rng = np.random.default_rng(0)
    sample = x if n <= 64 * nlist else x[np.sort(rng.choice(n, 64 * nlist, replace=False))]  # k-means on a sample
    index.train(sample)
    return index
