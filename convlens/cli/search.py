"""``convlens search``: the nearest indexed images of query images, and retrieval metrics (--eval)."""

from __future__ import annotations

from convlens.cli import CLIError


def register(sub, parent) -> None:
    p = sub.add_parser(
        "search", parents=[parent], help="find the indexed images nearest to query images (or --eval)",
        description="Embed query images with the network that built the index (same layer, same "
                    "normalisation) and print their nearest indexed images with ids, labels and distances "
                    "(cosine: 1 - cosine similarity; l2: Euclidean). Queries: image files (converted and "
                    "resized like `convlens predict`), .npy files holding an image (C, H, W) or a feature "
                    "vector (D,), or --sample N test images of the index's data set. --eval scores every "
                    "test image as a query: mean average precision and precision@k by class label.",
    )
    p.add_argument("index", metavar="INDEX", help="index folder written by `convlens index`")
    p.add_argument("queries", nargs="*", metavar="QUERY", help="image files or .npy arrays")
    p.add_argument("-k", "--top-k", dest="k", type=int, default=10, metavar="K", help="neighbours (default 10)")
    p.add_argument("--sample", type=int, metavar="N", help="use N random test images of the data set as queries")
    p.add_argument("--seed", type=int, default=0, help="which random test images --sample takes (default 0)")
    p.add_argument("--eval", action="store_true",
                   help="every test image as a query: mAP and precision@1/10/100 over the whole index")
    p.add_argument("--limit", type=int, metavar="N", help="with --eval: only N test images (random, seed 0)")
    p.add_argument("--model", metavar="CKPT", help="query model (default: the checkpoint that built the index; "
                   "another model is refused)")
    p.add_argument("--data-dir", metavar="DIR", help="root folder of the data set's files (default: the index's)")
    p.add_argument("--prepare", choices=("auto", "digit", "resize"), default="auto",
                   help="how image files are made into the model's input (as in convlens predict)")
    p.add_argument("--json", action="store_true", help="print one JSON value on stdout")
    p.set_defaults(func=run)


def run(args) -> int:
    import numpy as np

    from convlens.cli._common import eprint, print_json
    from convlens.retrieval import index_model, load_index, neighbours, search_images
    from convlens.retrieval.build import check_model

    if args.k < 1:
        raise CLIError(f"-k must be >= 1, got {args.k}")
    chosen = sum(bool(x) for x in (args.queries, args.sample is not None, args.eval))
    if chosen != 1:
        raise CLIError("give query files, --sample N or --eval (exactly one of them)")
    index = load_index(args.index)
    if args.model:
        from convlens.cli._common import load_model
        from convlens.cli.index import checkpoint_path

        model, info = load_model(checkpoint_path(args.model))
        check_model(index, model, info["checkpoint"])
    else:
        model, _ = index_model(index)
    info = index.meta.get("model") or {}
    if args.eval:
        return _evaluate(args, index, model)
    if args.sample is not None:
        if args.sample < 1:
            raise CLIError(f"--sample must be >= 1, got {args.sample}")
        ds = _test_set(args, index)
        rng = np.random.default_rng(args.seed)
        rows = rng.choice(len(ds), min(args.sample, len(ds)), replace=False)
        queries = [{"query": f"test/{int(i)}", "label": int(ds.labels[i]), "class": _cls(index, ds.labels[i])}
                   for i in rows]
        hits = search_images(index, ds.images[rows], args.k, model=model)
    else:
        images, vectors, queries = [], [], []
        for path in args.queries:
            kind, value = _read_query(path, index, info, args.prepare)
            (images if kind == "image" else vectors).append((len(queries), value))
            queries.append({"query": str(path)})
        hits = [None] * len(queries)
        if images:
            found = search_images(index, np.stack([v for _, v in images]), args.k, model=model)
            for (slot, _), h in zip(images, found):
                hits[slot] = h
        if vectors:
            d, rows = index.search(np.stack([v for _, v in vectors]), args.k)
            for (slot, _), h in zip(vectors, neighbours(index, d, rows)):
                hits[slot] = h
    results = [{**q, "neighbours": h} for q, h in zip(queries, hits)]
    if args.json:
        print_json(results)
        return 0
    eprint(f"{index.meta.get('folder')}: {index.ntotal} images of {index.meta.get('dataset')} at layer "
           f"{index.meta.get('layer')} ({index.config.kind}, {index.config.metric} distance)")
    for r in results:
        label = f" (label {r['class']})" if r.get("class") is not None else ""
        print(f"{r['query']}{label}:")
        for h in r["neighbours"]:
            cls = "" if h["class"] is None else f"  {h['class']}"
            print(f"  {h['rank']:>3}. {index.meta.get('split', 'train')}/{h['id']}{cls}  distance {h['distance']:.4f}")
    return 0


def _cls(index, label) -> str:
    classes = list(index.meta.get("classes") or [])
    return classes[int(label)] if int(label) < len(classes) else str(int(label))


def _test_set(args, index):
    from convlens.cli._common import load_dataset

    name = index.meta.get("dataset")
    if not name:
        raise CLIError(f"{index.meta.get('folder')}: records no data set to take test images from")
    shape = tuple(index.meta.get("image_shape") or ()) or None
    ds = load_dataset(name, args.data_dir or index.meta.get("data_dir"), train=False, input_shape=shape)
    if shape and tuple(ds.shape) != shape:
        raise CLIError(f"{name}: test images are (C, H, W) = {tuple(ds.shape)}, the index's images are {shape}")
    return ds


def _read_query(path, index, info: dict, prepare: str):
    """("image", uint8/float (C, H, W)) or ("vector", float32 (D,)) from an image file or a .npy file."""
    from pathlib import Path

    import numpy as np

    from convlens.cli._common import open_image, prepare_image

    p = Path(path)
    shape = tuple(index.meta.get("image_shape") or info.get("input_shape") or ())
    if p.suffix.lower() == ".npy":
        if not p.is_file():
            raise CLIError(f"{p}: no such file")
        try:
            a = np.load(p, allow_pickle=False)  # never unpickle
        except (ValueError, OSError) as e:
            raise CLIError(f"{p}: not a readable .npy array ({str(e).splitlines()[0][:120]})") from None
        if a.dtype == object or not np.issubdtype(a.dtype, np.number):
            raise CLIError(f"{p}: holds {a.dtype} values; expected numbers (an image {shape} or a "
                           f"{index.dim}-vector)")
        if a.ndim == 1:
            if a.shape[0] != index.dim:
                raise CLIError(f"{p}: a vector of {a.shape[0]} values, the index holds {index.dim}-dimensional "
                               f"features (layer {index.meta.get('layer')})")
            return "vector", a.astype(np.float32)
        if tuple(a.shape) != shape:
            raise CLIError(f"{p}: an array of shape {tuple(a.shape)}; expected an image of (C, H, W) = {shape} "
                           f"or a feature vector of {index.dim} values")
        return "image", a
    if not shape or len(shape) != 3:
        raise CLIError(f"{index.meta.get('folder')}: records no image shape; query with .npy feature vectors")
    pixel_info = {k: info.get(k) for k in ("input_shape", "classes")}  # normalisation happens in search_images
    return "image", prepare_image(open_image(p), shape, pixel_info, prepare)[1]


def _evaluate(args, index, model) -> int:
    import time

    import numpy as np

    from convlens.cli._common import eprint, print_json
    from convlens.features import extract
    from convlens.retrieval import ranking_metrics, recall_at_k
    from convlens.retrieval.build import _model_and_info

    if index.labels is None:
        raise CLIError(f"{index.meta.get('folder')}: the index has no labels to score retrieval by")
    ds = _test_set(args, index)
    if args.limit is not None:
        if args.limit < 1:
            raise CLIError(f"--limit must be >= 1, got {args.limit}")
        from convlens.cli.index import _subset

        ds = _subset(ds, args.limit)  # random (seed 0): folders are sorted by class
    _, _, transform = _model_and_info(model)
    m = index.meta.get("model") or {}
    if m.get("mean") is not None:
        from convlens.data import transforms as T

        transform = T.Normalize(m["mean"], m["std"])
    t0 = time.perf_counter()
    q = extract(model, ds.images, layer=index.meta.get("layer"), transform=transform, desc="embedding queries")
    db = index.index.reconstruct_n(0, index.ntotal) if _reconstructible(index) else None
    if db is None:
        raise CLIError(f"{index.meta.get('folder')}: this index ({index.config.kind}) cannot give back its vectors")
    exact = ranking_metrics(q, db, ds.labels, index.labels, ks=(1, 10, 100), metric=index.config.metric)
    d, rows = index.search(q, args.k)
    hit = (index.labels[np.maximum(rows, 0)] == np.asarray(ds.labels)[:, None]) & (rows >= 0)
    report = {"index": index.meta.get("folder"), "dataset": index.meta.get("dataset"), "layer": index.meta.get("layer"),
              "kind": index.config.kind, "metric": index.config.metric, **exact,
              f"index_precision@{args.k}": float(hit.mean()), "seconds": time.perf_counter() - t0}
    if index.config.kind != "flat":  # how much of the exact top-k the approximate index finds
        from convlens.retrieval import FeatureIndex

        _, exact_rows = FeatureIndex.build(db, kind="flat", metric=index.config.metric).search(q, args.k)
        report[f"recall@{args.k}"] = recall_at_k(rows, exact_rows, args.k)
    if args.json:
        print_json(report)
        return 0
    eprint(f"{report['queries']} test images against {report['database']} indexed images "
           f"({report['layer']}, {report['metric']})")
    print(f"mAP {report['map']:.4f}  precision@1 {report['precision@1']:.4f}  precision@10 "
          f"{report['precision@10']:.4f}  precision@100 {report['precision@100']:.4f}")
    return 0


def _reconstructible(index) -> bool:
    try:
        if index.config.kind == "ivf":
            import faiss

            faiss.extract_index_ivf(index.index).make_direct_map()
        index.index.reconstruct(0)
        return True
    except RuntimeError:
        return False
