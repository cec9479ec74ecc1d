"""Retrieval at scale: build time, query latency and recall@10 of exact and approximate faiss indexes
(convlens.retrieval.FeatureIndex) at 50,000 and 1,000,000 synthetic feature vectors.

The vectors are a mixture of Gaussian clusters in D=128 (unit-normalised, cosine similarity): random
points with no structure are the worst case of every approximate index and unlike CNN features. Queries
are drawn from the same mixture and are not in the database. Recall@10 = the fraction of the exact top 10
(IndexFlatIP) that the approximate index returns. Latency: one query at a time (median and 90th
percentile over 200 queries; faiss on one thread by default) and a batch of 1,000 (time per query). Writes one JSON report.

    python scripts/results/retrieval_scale.py [--sizes 50000,1000000] [--out runs/results/retrieval_scale.json]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np


def mixture(n: int, d: int, clusters: int, rng, centres=None, spread: float = 0.6):
    if centres is None:
        centres = rng.normal(size=(clusters, d)).astype(np.float32)
    labels = rng.integers(0, len(centres), n)
    x = centres[labels]
    x += spread * rng.normal(size=(n, d)).astype(np.float32)
    return x, centres


def latency(index, queries: np.ndarray, k: int = 10) -> dict:
    singles = []
    for q in queries[:200]:
        t = time.perf_counter()
        index.search(q[None], k)
        singles.append(time.perf_counter() - t)
    t = time.perf_counter()
    _, rows = index.search(queries, k)
    batch = (time.perf_counter() - t) / len(queries)
    return {"single_ms_median": 1e3 * float(np.median(singles)), "single_ms_p90": 1e3 * float(np.percentile(singles, 90)),
            "batch_ms_per_query": 1e3 * batch}, rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="50000,1000000")
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--clusters", type=int, default=1000)
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--kinds", default="flat,hnsw,ivf")
    ap.add_argument("--spread", type=float, default=1.0, help="cluster noise (centres are unit Gaussian)")
    ap.add_argument("--threads", type=int, default=1,
                    help="faiss OpenMP threads (default 1: on a loaded machine spinning threads cost more than they give)")
    ap.add_argument("--hnsw-m", type=int, default=32)
    ap.add_argument("--ef-construction", type=int, default=80)
    ap.add_argument("--out", default=str(Path("runs") / "results" / "retrieval_scale.json"))
    args = ap.parse_args()

    import faiss

    from convlens.retrieval import FeatureIndex, IndexConfig, recall_at_k

    faiss.omp_set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    report = {"spread": args.spread, "dim": args.dim, "clusters": args.clusters, "queries": args.queries, "metric": "cosine",
              "faiss": faiss.__version__, "faiss_threads": faiss.omp_get_max_threads(), "cpus": os.cpu_count(),
              "note": "2 vCPUs shared with ~8 engineers: times are noisy; load averages recorded per row",
              "runs": []}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    for n in [int(s) for s in args.sizes.split(",")]:
        db, centres = mixture(n, args.dim, args.clusters, rng, spread=args.spread)
        q, _ = mixture(args.queries, args.dim, args.clusters, rng, centres, spread=args.spread)
        exact_rows = None
        for kind in args.kinds.split(","):
            t = time.perf_counter()
            idx = FeatureIndex.build(db, config=IndexConfig(kind=kind, hnsw_m=args.hnsw_m,
                                                            ef_construction=args.ef_construction))
            build = time.perf_counter() - t
            sweep = {"flat": [None], "hnsw": [16, 32, 64, 128, 256], "ivf": [8, 16, 32, 64, 128, 256]}[kind]
            for knob in sweep:
                if kind == "hnsw":
                    idx.config.ef_search = knob
                elif kind == "ivf":
                    idx.config.nprobe = knob
                lat, rows = latency(idx, q)
                if kind == "flat":
                    exact_rows = rows
                recall = recall_at_k(rows, exact_rows, 10) if exact_rows is not None else None
                row = {"n": n, "kind": kind, "build_seconds": build, **lat, "recall@10": recall,
                       "load_average": os.getloadavg()}
                if kind == "hnsw":
                    row.update({"M": idx.config.hnsw_m, "ef_construction": idx.config.ef_construction, "ef_search": knob})
                elif kind == "ivf":
                    row.update({"nlist": int(idx.index.nlist), "nprobe": knob})
                report["runs"].append(row)
                print(f"n={n:>8} {kind:>5} {'' if knob is None else knob:>4}  build {build:7.1f} s  single "
                      f"{lat['single_ms_median']:7.3f} ms  batch {lat['batch_ms_per_query']:7.3f} ms/query  "
                      f"recall@10 {recall if recall is None else round(recall, 4)}  load {os.getloadavg()[0]:.1f}",
                      flush=True)
                out.write_text(json.dumps(report, indent=1) + "\n")  # partial results survive an interruption
            del idx
    print(out)


if __name__ == "__main__":
    main()
