"""Retrieval quality by class label: test images as queries, every training image as the database.

For raw pixels, an untrained network and a trained one at two depths: mean average precision over the
whole database and precision@1/10/100 (convlens.retrieval.ranking_metrics, exact, cosine similarity),
with the time to embed and to rank. Writes one JSON report.

    python scripts/results/retrieval_quality.py --dataset mnist --data-dir ../shared/data/mnist \\
        --checkpoint runs/retrieval/lenet5-mnist --layers pool2,fc2:input
    python scripts/results/retrieval_quality.py --dataset ../shared/data/cifar10-jpeg.tar.gz \\
        --checkpoint runs/retrieval/convnetjs-cifar10 --layers pool2,fc:input --name cifar10-jpeg
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", required=True, help="mnist, cifar10, or a folder / .tar.gz of class folders")
    ap.add_argument("--data-dir", help="root folder of mnist / cifar10 files")
    ap.add_argument("--checkpoint", required=True, help="the trained network's run directory or .safetensors")
    ap.add_argument("--layers", required=True, help="two (or more) layers of the trained net, comma-separated")
    ap.add_argument("--queries", type=int, help="only the first N test images as queries (default: all)")
    ap.add_argument("--name", help="report name (default: the data set's)")
    ap.add_argument("--out", help="JSON report (default runs/results/retrieval_quality_NAME.json)")
    args = ap.parse_args()

    import convlens
    from convlens import data, models
    from convlens.checkpoint import load_checkpoint
    from convlens.data import transforms as T
    from convlens.features import extract
    from convlens.retrieval import ranking_metrics

    name = args.name or Path(args.dataset).name.split(".")[0]
    out = Path(args.out or Path("runs") / "results" / f"retrieval_quality_{name}.json")
    train = data.load(args.dataset, root=args.data_dir, train=True)
    test = data.load(args.dataset, root=args.data_dir, train=False)
    if args.queries:
        test = test[: args.queries]
    net, info = load_checkpoint(args.checkpoint)
    norm = T.Normalize(info["mean"], info["std"]) if info.get("mean") is not None else None
    zoo = info.get("model_name")
    convlens.manual_seed(0)
    untrained = models.get_model(zoo, input_shape=tuple(info["input_shape"]))
    layers = [s.strip() for s in args.layers.split(",") if s.strip()]
    # (label, model, layer, transform): raw pixels in [0, 1]; the untrained net sees the same normalised
    # input as the trained one, so only the weights differ
    configs = [("raw pixels", untrained, "input", None)]
    configs += [(f"untrained {zoo}", untrained, layer, norm) for layer in layers]
    configs += [(f"trained {zoo}", net, layer, norm) for layer in layers]
    rows = []
    for label, model, layer, transform in configs:
        t0 = time.perf_counter()
        q = extract(model, test, layer=layer, transform=transform, progress=False)
        db = extract(model, train, layer=layer, transform=transform, progress=False)
        t1 = time.perf_counter()
        m = ranking_metrics(q, db, test.labels, train.labels, ks=(1, 10, 100), progress=False)
        t2 = time.perf_counter()
        row = {"features": label, "layer": layer, "dim": int(q.shape[1]), **m,
               "embed_seconds": t1 - t0, "rank_seconds": t2 - t1, "load_average": os.getloadavg()}
        rows.append(row)
        print(f"{label:>24} {layer:>10} D={row['dim']:>5}  mAP {m['map']:.4f}  P@10 {m['precision@10']:.4f}  "
              f"({t1 - t0:.0f} s embed, {t2 - t1:.0f} s rank, load {os.getloadavg()[0]:.1f})", flush=True)
    report = {"dataset": name, "queries": len(test), "database": len(train), "checkpoint": str(args.checkpoint),
              "model": zoo, "test_accuracy": info.get("test_accuracy"), "epoch": info.get("epoch"),
              "metric": "cosine", "results": rows, "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
              "note": "machine shared with ~8 engineers; load averages recorded per row"}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1) + "\n")
    print(out)


if __name__ == "__main__":
    main()
