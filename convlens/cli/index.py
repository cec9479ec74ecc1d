"""``convlens index``: embed a data set with a trained network and write a searchable index (faiss)."""

from __future__ import annotations

from convlens.cli import CLIError

SHIPPED = "lenet5-mnist-mini"  # the checkpoint in convlens/assets, usable by name from any directory


def register(sub, parent) -> None:
    p = sub.add_parser(
        "index", parents=[parent], help="index a data set's images by CNN features (for convlens search)",
        description="Compute every image's features at one layer of a trained network and store them in a "
                    "faiss index (index.faiss) with their ids, labels and provenance (index.json). Exact "
                    "inner-product search up to 200,000 images, an IVF index above (--kind to choose).",
    )
    p.add_argument("checkpoint", metavar="RUN",
                   help=f"a run directory or .safetensors file, or '{SHIPPED}' (the checkpoint shipped with convlens)")
    p.add_argument("--dataset", metavar="NAME|FOLDER", help="data set to index (default: the model's own)")
    p.add_argument("--data-dir", metavar="DIR", help="root folder of the data set's files")
    p.add_argument("--split", choices=("train", "test"), default="train", help="which part (default: train)")
    p.add_argument("--layer", metavar="NAME",
                   help="module name as in named_modules(), NAME:input, or 'input' (the pixels); default: the "
                        "input of the last Linear layer. 'convlens index RUN --list-layers' lists them")
    p.add_argument("--list-layers", action="store_true", help="print the model's layer names and exit")
    p.add_argument("--out", default="index", metavar="DIR", help="index folder to write (default ./index)")
    p.add_argument("--kind", choices=("auto", "flat", "hnsw", "ivf"), default="auto",
                   help="flat: exact; hnsw/ivf: approximate; auto: flat up to 200,000 vectors (default)")
    p.add_argument("--nprobe", type=int, default=32, metavar="N", help="IVF: cells visited per query (default 32)")
    p.add_argument("--ef-search", type=int, default=64, metavar="N", help="HNSW: candidates per query (default 64)")
    p.add_argument("--metric", choices=("cosine", "l2"), default="cosine", help="similarity (default cosine)")
    p.add_argument("--limit", type=int, metavar="N",
                   help="index only N images (a random subset, seed 0: folders are sorted by class)")
    p.add_argument("--batch-size", type=int, default=256, metavar="N")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.set_defaults(func=run)


def checkpoint_path(name: str):
    """The shipped checkpoint for its name, else the path as given."""
    from pathlib import Path

    if name == SHIPPED and not Path(name).exists():
        from convlens.web.state import default_checkpoint

        return str(default_checkpoint())
    return name


def run(args) -> int:
    import time
    from pathlib import Path

    from convlens.cli._common import dataset_key, eprint, load_dataset, load_model, print_json
    from convlens.features import feature_layers, resolve_layer
    from convlens.retrieval import build_index

    ckpt = checkpoint_path(args.checkpoint)
    model, info = load_model(ckpt)
    if args.list_layers:
        for name in feature_layers(model):
            print(name)
        return 0
    resolve_layer(model, args.layer)  # FeatureError (a ValueError): one line listing the layer names
    dataset = args.dataset or info.get("dataset")
    if not dataset:
        raise CLIError(f"{info['checkpoint']}: does not record its data set; pass --dataset")
    shape = tuple(info["input_shape"])
    data_dir = args.data_dir or (None if args.dataset else info.get("data_dir"))
    ds = load_dataset(dataset, data_dir, train=args.split == "train", input_shape=shape)
    if tuple(ds.shape) != shape:
        raise CLIError(f"{dataset}: images are (C, H, W) = {tuple(ds.shape)}, but the model takes {shape}")
    for opt in ("batch_size", "nprobe", "ef_search"):
        if getattr(args, opt) < 1:
            raise CLIError(f"--{opt.replace('_', '-')} must be >= 1, got {getattr(args, opt)}")
    if args.limit is not None:
        if args.limit < 1:
            raise CLIError(f"--limit must be >= 1, got {args.limit}")
        ds = _subset(ds, args.limit)
    key = dataset_key(dataset)
    source = {"dataset": key or str(Path(dataset).expanduser().resolve()),
              "data_dir": None if data_dir is None else str(Path(data_dir).expanduser().resolve())}
    t0 = time.perf_counter()
    index = build_index(ckpt, ds, args.layer, dataset_name=source["dataset"], split=args.split,
                        batch_size=args.batch_size, progress=None, meta={"data_dir": source["data_dir"]},
                        kind=args.kind, metric=args.metric, nprobe=args.nprobe, ef_search=args.ef_search)
    seconds = time.perf_counter() - t0
    folder = index.save(args.out)
    report = {"index": str(folder), "count": index.ntotal, "dim": index.dim, "kind": index.config.kind,
              "metric": index.config.metric, "layer": index.meta["layer"], "dataset": source["dataset"],
              "split": args.split, "checkpoint": info["checkpoint"], "seconds": seconds}
    if args.json:
        print_json(report)
    else:
        eprint(f"indexed {index.ntotal} images of {dataset} ({args.split}) at layer {index.meta['layer']} "
               f"({index.dim} dimensions, {index.config.kind}, {index.config.metric}) in {seconds:.1f} s")
        print(folder)
    return 0


def _subset(ds, n: int):
    """N images chosen at random with seed 0 (kept in data set order), as a Subset whose ids are the
    original indices; folder data sets are sorted by class, so the first N would be one class."""
    import numpy as np

    if n >= len(ds):
        return ds
    return ds[np.sort(np.random.default_rng(0).choice(len(ds), n, replace=False))]
