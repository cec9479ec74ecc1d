"""``convlens data``: download data sets (``fetch``) and describe them (``info``)."""

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
