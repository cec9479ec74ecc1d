"""Retrieval metrics by class label: mean average precision, precision@k, and recall@k of an approximate
search against exact search.

For a query with R relevant database items (same label) ranked over the whole database,
    AP = (1/R) · Σ_{ranks r of relevant items} precision@r,   precision@r = (# relevant in top r) / r,
and mAP is its mean over the queries; precision@k = (# relevant in the top k) / k.

`ranking_metrics` never sorts indices: each score carries its relevance in its lowest mantissa bit and
one value sort per query (NumPy's SIMD sort, ~40x faster than a stable argsort of 50,000 scores) gives
the relevance in rank order. Ties between a relevant and a non-relevant item rank the relevant one last
(the pessimistic convention), so the numbers are deterministic and never flattered by ties.
"""

from __future__ import annotations

import numpy as np

__all__ = ["average_precision", "precision_at_k", "ranking_metrics", "recall_at_k", "similarity_ranking"]


def average_precision(relevant: np.ndarray) -> np.ndarray:
    """AP of each row of a (Q, N) boolean matrix of ranked relevance (rank 1 first); 0 where none is relevant.

    Shape:
        (Q, N) → (Q,) float64.
    """
    rel = np.asarray(relevant, dtype=bool)
    hits = np.cumsum(rel, axis=1, dtype=np.float64)
    ranks = np.arange(1, rel.shape[1] + 1, dtype=np.float64)
    total = rel.sum(axis=1)
    ap = np.where(rel, hits / ranks, 0.0).sum(axis=1)
    return np.divide(ap, total, out=np.zeros(rel.shape[0]), where=total > 0)


def precision_at_k(relevant: np.ndarray, k: int) -> np.ndarray:
    """Fraction of relevant items among each row's first ``k`` (Q, N) → (Q,)."""
    rel = np.asarray(relevant, dtype=bool)
    return rel[:, :k].sum(axis=1) / float(k)


def similarity_ranking(queries: np.ndarray, database: np.ndarray, metric: str = "cosine") -> np.ndarray:
    """Database rows of each query, most similar first (exact, stable): (Q, D), (N, D) → (Q, N) int64."""
    return np.argsort(_scores(np.asarray(queries, np.float32), np.asarray(database, np.float32), metric),
                      axis=1, kind="stable")


def ranking_metrics(queries, database, query_labels, database_labels, ks=(1, 10, 100), metric: str = "cosine",
                    chunk: int = 64, progress: bool | None = None) -> dict:
    """Exact retrieval of every query over the whole database, scored by label: ``{"map", "precision@k"
    for k in ks, "queries", "database", "metric"}``. Chunks of ``chunk`` queries bound memory to
    chunk × N similarities.
    """
    from tqdm.auto import tqdm

    q_labels = np.asarray(query_labels, dtype=np.int64)
    db_labels = np.asarray(database_labels, dtype=np.int64)
    q = np.asarray(queries, np.float32)
    db = np.asarray(database, np.float32)
    if q.shape[0] != q_labels.shape[0] or db.shape[0] != db_labels.shape[0]:
        raise ValueError(f"ranking_metrics: {q.shape[0]} queries with {q_labels.shape[0]} labels, "
                         f"{db.shape[0]} database vectors with {db_labels.shape[0]} labels")
    if q.ndim != 2 or db.ndim != 2 or q.shape[1] != db.shape[1]:
        raise ValueError(f"ranking_metrics: queries {q.shape} and database {db.shape} must be (Q, D) and (N, D)")
    ks = [int(k) for k in ks if 0 < int(k) <= db.shape[0]]
    if metric == "cosine":  # normalised once, not per chunk
        from convlens.features import l2_normalize

        q, db = l2_normalize(q), l2_normalize(db)
    aps, precs = [], {k: [] for k in ks}
    for a in tqdm(range(0, q.shape[0], chunk), desc="ranking", unit="chunk", leave=False,
                  disable=None if progress is None else not progress):
        score = -(q[a : a + chunk] @ db.T) if metric == "cosine" else _scores(q[a : a + chunk], db, metric)
        ap, hits = _chunk_ranks(score, db_labels == q_labels[a : a + chunk, None], ks)
        aps.append(ap)
        for k in ks:
            precs[k].append(hits[k] / float(k))
    out = {"map": float(np.concatenate(aps).mean()) if aps else float("nan")}
    out.update({f"precision@{k}": float(np.concatenate(v).mean()) for k, v in precs.items()})
    out.update({"queries": int(q.shape[0]), "database": int(db.shape[0]), "metric": metric})
    return out


def _scores(q: np.ndarray, db: np.ndarray, metric: str) -> np.ndarray:
    """(Q, N) scores, lower = more similar (negative cosine, or squared L2 less the query's own norm)."""
    if metric == "cosine":  # cosine of unit vectors is their inner product (cheap to renormalise)
        from convlens.features import l2_normalize

        return -(l2_normalize(q) @ l2_normalize(db).T)
    if metric == "l2":
        return (db * db).sum(1)[None, :] - 2.0 * (q @ db.T)
    raise ValueError(f"metric must be 'cosine' or 'l2', got {metric!r}")


def _chunk_ranks(score: np.ndarray, rel: np.ndarray, ks) -> tuple[np.ndarray, dict]:
    """AP per row and # relevant within the top k, by one value sort per chunk.

    Scores are shifted to >= 1 (positive floats order as their bit patterns) and each one's lowest mantissa
    bit is set to its relevance: after NumPy's SIMD value sort the bit says which items are relevant, in
    rank order, with no index sort. A relevant item tied with a non-relevant one sorts after it (ties count
    against the ranking); scores 1 ulp apart may swap, far below any feature's precision.
    """
    s = np.ascontiguousarray(score, dtype=np.float32) - np.float32(score.min()) + np.float32(1.0)
    bits = s.view(np.int32)
    bits &= np.int32(~1)
    bits |= rel.astype(np.int32)
    s.sort(axis=1)
    rel_sorted = (s.view(np.int32) & 1).astype(bool)
    hits = np.cumsum(rel_sorted, axis=1, dtype=np.int32)
    ranks = np.arange(1, s.shape[1] + 1, dtype=np.float32)
    counts = hits[:, -1]
    ap = np.where(rel_sorted, hits / ranks, np.float32(0)).sum(axis=1, dtype=np.float64)
    ap = np.divide(ap, counts, out=np.zeros(s.shape[0]), where=counts > 0)
    return ap, {k: hits[:, k - 1].astype(np.float64) for k in ks}


def recall_at_k(approx: np.ndarray, exact: np.ndarray, k: int = 10) -> float:
    """Mean fraction of each query's exact top-k found in the approximate top-k: (Q, ≥k), (Q, ≥k) → float."""
    a = np.asarray(approx)[:, :k]
    e = np.asarray(exact)[:, :k]
    if a.shape != e.shape:
        raise ValueError(f"recall_at_k: approximate {a.shape} and exact {e.shape} results differ in shape")
    found = (a[:, :, None] == e[:, None, :]).any(axis=1)  # (Q, k): exact neighbour j present in approx
    return float(found.mean())
