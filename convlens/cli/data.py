"""``convlens data``: download data sets (``fetch``), describe them (``info``), show and empty the cache
(``cache``, ``clean``)."""

from __future__ import annotations


def register(sub, parent) -> None:
    p = sub.add_parser("data", parents=[parent], help="download or describe data sets",
                       description="Download (fetch) or describe (info) a data set.")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    f = actions.add_parser("fetch", parents=[parent], help="download mnist, fashion-mnist or cifar10",
                           description="Download a data set into ROOT (default: the convlens cache, "
                                       "$CONVLENS_DATA or ~/.cache/convlens) and check its MD5 sums.")
    f.add_argument("name", choices=("mnist", "fashion-mnist", "cifar10"))
    f.add_argument("--root", metavar="DIR", help="folder to download into")
    f.set_defaults(func=fetch)
    i = actions.add_parser("info", parents=[parent], help="size, image shape, classes, mean and std of a data set")
    i.add_argument("name", metavar="NAME|FOLDER")
    i.add_argument("--data-dir", metavar="DIR", help="root folder of the data set's files")
    i.set_defaults(func=info)
    c = actions.add_parser("cache", parents=[parent], help="what the convlens cache holds, and its size",
                           description="List the cache ($CONVLENS_DATA or ~/.cache/convlens): decoded arrays, "
                                       "extracted archives and downloaded data sets, with their sizes.")
    c.set_defaults(func=cache)
    k = actions.add_parser("clean", parents=[parent], help="remove decoded and extracted copies from the cache",
                           description="Remove what convlens can rebuild (decoded IDX arrays, decoded image "
                                       "folders, extracted archives); with --downloads also the downloaded data "
                                       "sets. Your own folders and archives are never touched.")
    k.add_argument("--downloads", action="store_true", help="also remove downloaded data sets (mnist, ...)")
    k.add_argument("--dry-run", action="store_true", help="only say what would be removed")
    k.set_defaults(func=clean)


# the cache's parts: folder name -> (what it holds, rebuilt without a download?)
_PARTS = {"extracted": ("extracted archives (.tar.gz data sets)", True),
          "imagefolder": ("decoded image folders (.npy)", True),
          "idx": ("decompressed IDX files (.npy)", True),
          "mnist": ("downloaded MNIST", False), "fashion-mnist": ("downloaded Fashion-MNIST", False),
          "cifar10": ("downloaded CIFAR-10", False)}


def _size(path) -> tuple[int, int]:
    """(bytes, files) under a folder."""
    import os

    total = files = 0
    for folder, _, names in os.walk(path):
        for name in names:
            try:
                total += os.lstat(os.path.join(folder, name)).st_size
                files += 1
            except OSError:
                pass
    return total, files


def _human(n: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


def cache(args) -> int:
    from convlens.data.cache import cache_dir

    root = cache_dir(create=False)
    print(f"convlens cache: {root}" + ("" if root.is_dir() else " (empty: not created yet)"))
    if not root.is_dir():
        return 0
    grand = 0
    for entry in sorted(root.iterdir()):
        if not entry.is_dir():
            continue
        size, files = _size(entry)
        grand += size
        what = _PARTS.get(entry.name, ("other files", False))[0]
        print(f"  {entry.name + '/':<15} {_human(size):>9}  {files:>6} files  {what}")
    print(f"  {'total':<15} {_human(grand):>9}   (convlens data clean removes the rebuildable parts)")
    return 0


def clean(args) -> int:
    import shutil

    from convlens.data.cache import cache_dir

    root = cache_dir(create=False)
    freed = 0
    for name, (what, rebuildable) in _PARTS.items():
        path = root / name
        if not path.is_dir() or not (rebuildable or args.downloads):
            continue
        size, _ = _size(path)
        freed += size
        print(f"{'would remove' if args.dry_run else 'removed'} {path} ({_human(size)}, {what})")
        if not args.dry_run:
            shutil.rmtree(path, ignore_errors=True)
    print(f"{'would free' if args.dry_run else 'freed'} {_human(freed)}" + ("" if args.downloads else
          "; downloaded data sets kept (--downloads removes them too)"))
    return 0


def fetch(args) -> int:
    from convlens.data import fetch as download

    folder = download(args.name, root=args.root)
    print(f"{args.name}: ready in {folder}")
    return 0


def info(args) -> int:
    import numpy as np

    from convlens.cli._common import load_dataset, separate_test_set
    from convlens.data import mean_std

    train = load_dataset(args.name, args.data_dir, train=True)
    test = load_dataset(args.name, args.data_dir, train=False, input_shape=train.shape)
    mean, std = mean_std(train)
    counts = np.bincount(train.labels, minlength=len(train.classes))
    print(f"{args.name}: {len(train)} training images" + (f", {len(test)} test images" if separate_test_set(train, test)
                                                           else " (no separate test set)"))
    print(f"image shape (C, H, W) = {tuple(train.shape)}; {len(train.classes)} classes")
    print("mean " + ", ".join(f"{m:.4f}" for m in mean) + "; std " + ", ".join(f"{s:.4f}" for s in std))
    for c, n in zip(train.classes, counts):
        print(f"  {c}: {n}")
    return 0
