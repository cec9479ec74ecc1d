"""``convlens train``: train a zoo model or a spec on a data set, with checkpoints and resuming."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from convlens.cli import CLIError

# flags that map one-to-one onto Recipe fields (flag default None = "use the recipe's value")
_RECIPE_FLAGS = ("dataset", "epochs", "batch_size", "optimizer", "lr", "momentum", "rho", "eps", "weight_decay",
                 "schedule", "augment", "seed", "val_split", "limit", "label_smoothing", "early_stopping", "normalize",
                 "size")
_RECIPE_FLAGS += ("nesterov", "decoupled_weight_decay", "bias_lr_scale", "warmup", "lr_start", "lr_end", "lookahead",
                  "whiten_bias_epochs", "tta")  # fast-training options (docs/recipes.md)


def register(sub, parent) -> None:
    from convlens.train.recipe import OPTIMIZERS, SCHEDULES

    p = sub.add_parser(
        "train", parents=[parent], help="train a model (default: LeNet-5 on the embedded mnist-mini)",
        description="Train a zoo model or a spec on a data set. The recipe starts from the model's default "
                    "(see 'convlens summary MODEL') and flags override it. Progress goes to stderr; the run "
                    "directory gets last.*, best.* and history.json.",
    )
    p.add_argument("--model", metavar="NAME|SPEC",
                   help="zoo model name or a spec file (.toml/.json) (default: lenet5)")
    p.add_argument("--dataset", metavar="NAME|FOLDER",
                   help="mnist, fashion-mnist, cifar10, mnist-mini, a folder of class folders or a .tar.gz of one "
                        "(default: the model's recipe; mnist-mini for lenet5)")
    p.add_argument("--data-dir", metavar="DIR", help="root folder of the data set's files")
    p.add_argument("--size", type=_size, metavar="HxW", help="resize a folder's images to H×W pixels (64 or 64x48); "
                   "needed when its photos differ in size")
    p.add_argument("--skip-bad", action="store_true", help="leave out a folder's unreadable images (listed in a "
                   "warning) instead of stopping")
    p.add_argument("--epochs", type=int, metavar="N", help="total number of epochs (also when resuming)")
    p.add_argument("--batch-size", type=int, metavar="N")
    p.add_argument("--optimizer", choices=OPTIMIZERS)
    p.add_argument("--lr", type=float, metavar="X", help="learning rate (the peak one with --schedule onecycle)")
    p.add_argument("--momentum", type=float, metavar="X", help="momentum (sgd, rmsprop)")
    p.add_argument("--rho", type=float, metavar="X", help="Adadelta's decay of its running averages (torch's "
                   "default 0.9; ConvNetJS used 0.95)")
    p.add_argument("--eps", type=float, metavar="X", help="stability term of the adaptive optimizers (Adadelta: "
                   "torch's default 1e-6; ConvNetJS used 1e-8)")
    p.add_argument("--weight-decay", type=float, metavar="X")
    p.add_argument("--schedule", choices=SCHEDULES, help="learning-rate schedule")
    p.add_argument("--augment", metavar="LIST", help="training augmentation: flip, shift, both ('flip,shift') or none")
    p.add_argument("--label-smoothing", type=float, metavar="X")
    p.add_argument("--no-normalize", dest="normalize", action="store_const", const=False, default=None,
                   help="do not standardise the channels with the training set's mean and std")
    p.add_argument("--seed", type=int, metavar="N", help="seed for initialisation, shuffling, augmentation and "
                   "dropout (default 0)")
    p.add_argument("--val-split", type=float, metavar="X",
                   help="fraction of the training set held out for validation (default 0.1; 0 = none)")
    p.add_argument("--early-stopping", type=int, metavar="N",
                   help="stop after N epochs without a better validation accuracy")
    p.add_argument("--limit", type=int, metavar="N", help="use only N images of the training set (a random, "
                   "seeded subset, taken before the validation split)")
    # fast-training options (airbench's recipe, docs/recipes.md); the zoo's airbench entries set them all
    p.add_argument("--nesterov", action="store_const", const=True, default=None, help="Nesterov momentum (sgd)")
    p.add_argument("--decoupled-weight-decay", action="store_const", const=True, default=None,
                   help="--weight-decay is the shrink per step at the base lr, whatever each group's lr")
    p.add_argument("--bias-lr-scale", type=float, metavar="X", help="lr multiplier for normalisation biases")
    p.add_argument("--warmup", type=float, metavar="X", help="schedule linear: warm-up fraction of the steps")
    p.add_argument("--lr-start", type=float, metavar="X", help="schedule linear: lr factor at the first step")
    p.add_argument("--lr-end", type=float, metavar="X", help="schedule linear: lr factor at the last step")
    p.add_argument("--lookahead", type=int, metavar="K", help="Lookahead every K steps (airbench's α schedule; 0: off)")
    p.add_argument("--whiten-bias-epochs", type=int, metavar="N", help="train the whitening bias for N epochs only")
    p.add_argument("--tta", type=int, nargs="?", const=2, choices=(0, 1, 2), metavar="LEVEL",
                   help="test-time augmentation: 1 flips, 2 (the default of a bare --tta) flips and 1-pixel shifts")
    p.add_argument("--out", metavar="RUN_DIR", help="run directory (default ./runs/<model>-<dataset>-<timestamp>)")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue a run from its last completed state")
    p.add_argument("--json", action="store_true", help="print one JSON object with the results on stdout")
    p.add_argument("--task", choices=("classify", "segment", "detect"),
                   help="what the model learns (default: from the model; unet-small segments, centernet-small "
                        "detects, on scene data sets such as mnist-scenes)")
    p.set_defaults(func=run)


def _size(text: str) -> list[int]:
    import argparse

    from convlens.cli._common import parse_size

    try:
        return parse_size(text)
    except CLIError as e:
        raise argparse.ArgumentTypeError(str(e).removeprefix("--size: ")) from None


def _given(args) -> dict:
    return {k: getattr(args, k) for k in _RECIPE_FLAGS if getattr(args, k, None) is not None}


def _slug(text: str) -> str:
    stem = Path(text).name
    for suffix in (".tar.gz", ".tgz", ".tar", ".toml", ".json"):
        stem = stem.removesuffix(suffix)
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in stem) or "run"


def _resolved(dataset):
    """A data set name as is; a folder or archive path made absolute (a run may resume elsewhere)."""
    from convlens.cli._common import dataset_key

    if dataset is None or dataset_key(str(dataset)) is not None or not Path(dataset).expanduser().exists():
        return dataset  # a name, or a path that does not exist (the error names it as given)
    return str(Path(dataset).expanduser().resolve())


def run(args) -> int:
    """Under ``mpiexec -n N`` (convlens.distributed) every rank runs this; an error on any rank ends the
    whole job with that rank's message (MPI_Abort) instead of leaving the others waiting."""
    from convlens import distributed

    if distributed.init().size == 1:
        return _run(args)
    try:
        return _run(args)
    except BaseException as e:  # noqa: B036 - every way out of one rank must take the job down
        if isinstance(e, SystemExit) and not e.code:
            raise
        from convlens.cli import _one_line

        distributed.abort(_one_line(e) if isinstance(e, CLIError) else f"{type(e).__name__}: {_one_line(e)}",
                          code=130 if isinstance(e, KeyboardInterrupt) else 1)
        raise


def _run(args) -> int:
    from convlens import distributed
    from convlens.checkpoint import read_checkpoint
    from convlens.train.recipe import Recipe

    given = _given(args)
    meta = None
    if args.resume:
        run_dir = Path(args.resume)
        _, meta, _ = read_checkpoint(run_dir / "last.safetensors")
        recipe = Recipe.from_dict(meta["recipe"])
        if args.out and Path(args.out).resolve() != run_dir.resolve():
            raise CLIError("--out and --resume name different folders; a resumed run stays in its folder")
        for key, value in given.items():
            if key not in ("epochs", "dataset", "tta") and value != getattr(recipe, key):
                raise CLIError(f"--{key.replace('_', '-')} cannot change when resuming (the run used "
                               f"{getattr(recipe, key)!r}); only --epochs can")
        if args.model is not None and args.model != recipe.model:
            raise CLIError(f"--model cannot change when resuming (the run trains {recipe.model})")
        schedule_start = recipe.schedule_start
        if "epochs" in given and given["epochs"] != recipe.epochs and recipe.schedule != "none":
            done = int(meta.get("epoch", 0))
            finished = done >= recipe.epochs and not meta.get("batch")
            if not (finished and given["epochs"] > done):
                raise CLIError(
                    f"--epochs cannot change while a run with the {recipe.schedule} schedule is unfinished (its "
                    f"learning rates are planned for epochs {recipe.schedule_start + 1}-{recipe.epochs}; it is at "
                    f"epoch {done}): resume it as it is, then extend the finished run with --epochs"
                    if not finished else f"--epochs {given['epochs']}: the run has done {done} epochs already; "
                    "give a larger total to train it longer")
            schedule_start = done  # a finished run trains longer: its schedule runs again over the new epochs
        # the data by the path recorded when the run started (resolved, so the working folder does not
        # matter); --dataset / --data-dir may point at moved data, which the fingerprint check verifies
        recipe = recipe.replace(epochs=given.get("epochs", recipe.epochs), schedule_start=schedule_start,
                                dataset=_resolved(given.get("dataset", meta.get("dataset_path") or recipe.dataset)),
                                tta=given.get("tta", recipe.tta))
        data_dir = _resolved(args.data_dir or meta.get("data_dir"))
    else:
        try:
            recipe = Recipe.for_model(args.model or "lenet5", **given)
        except ValueError as e:
            raise CLIError(str(e)) from None
        recipe = recipe.replace(dataset=_resolved(recipe.dataset))
        data_dir = _resolved(args.data_dir)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        run_dir = Path(args.out) if args.out else Path("runs") / f"{_slug(recipe.model)}-{_slug(recipe.dataset)}-{stamp}"
        run_dir = Path(distributed.broadcast_json(str(run_dir)))  # rank 0's time stamp on every rank
        if (run_dir / "last.json").exists():
            raise CLIError(f"{run_dir} already holds a run; continue it with --resume {run_dir} or choose another --out")
    from convlens.cli._dense import resolve_task, train_dense

    task = resolve_task(recipe.model, getattr(args, "task", None) or (meta or {}).get("task"))
    if task != "classify":  # segmentation / detection on scene data sets
        return train_dense(args, recipe, run_dir, data_dir, task)
    return _train(args, recipe, run_dir, data_dir, meta)


def _train(args, recipe, run_dir: Path, data_dir, meta) -> int:

    import convlens
    from convlens import data, distributed, parallel
    from convlens.checkpoint import build_model as rebuild
    from convlens.checkpoint import load_checkpoint
    from convlens.cli._common import (
        build_model,
        check_model_fits,
        eprint,
        load_dataset,
        print_json,
        separate_test_set,
    )
    from convlens.data import transforms as T
    from convlens.distributed.training import evaluate
    from convlens.train import NonFiniteLossError, fit
    from convlens.train.recipe import fingerprint, fingerprint_change

    world, rank = distributed.world_size(), distributed.rank()
    if rank != 0:  # only rank 0 reports
        def eprint(*a) -> None:
            return None

    started = time.perf_counter()
    full = load_dataset(recipe.dataset, data_dir, train=True, size=recipe.size, skip_bad=args.skip_bad)
    shape, classes = tuple(int(s) for s in full.shape), list(full.classes)
    data_print = fingerprint(full)
    if meta is not None:
        change = fingerprint_change(meta.get("data_fingerprint"), data_print)
        if change:
            raise CLIError(f"{recipe.dataset}: not the data this run trained on ({change}); resume with the "
                           f"original data (--dataset PATH, --data-dir DIR if it moved) or start a new run")
    test = load_dataset(recipe.dataset, data_dir, train=False, input_shape=shape, skip_bad=args.skip_bad)
    has_test = separate_test_set(full, test)
    try:
        train_ds, val_ds, mean, std = recipe.split_data(full)
    except ValueError as e:
        raise CLIError(str(e).replace("val_split", "--val-split", 1)) from None
    normalize = [T.Normalize(mean, std)] if recipe.normalize else []
    eval_tf = T.Compose(normalize) if normalize else None

    convlens.manual_seed(recipe.seed)
    name = recipe.model
    if meta is not None:
        model, desc = rebuild(meta), meta["architecture"]
    else:
        model, desc = build_model(name, shape, len(classes))
    check_model_fits(model, shape, len(classes), _slug(name), recipe.dataset)
    if meta is None:  # a patch-whitening layer is fitted to the training set once; checkpoints carry it
        from convlens.models.airbench import PatchWhitening, prepare_model
        from convlens.train.parts import whitening_images

        if any(isinstance(m, PatchWhitening) for m in model.modules()):
            prepare_model(model, whitening_images(train_ds, eval_tf))
    train_ds = recipe.training_set(train_ds)  # altflip

    augment = T.Compose(recipe.augmentation() + normalize)
    if world == 1:
        train_loader = data.DataLoader(train_ds, recipe.batch_size, shuffle=True, seed=recipe.seed, transform=augment)
    else:  # the global batch split over the ranks; batch k holds the images of one process's batch k
        if recipe.batch_size % world:
            raise CLIError(f"--batch-size {recipe.batch_size} (the global batch) does not split evenly over {world} "
                           f"processes; use a multiple of {world}")
        from convlens.utils.data import DistributedSampler

        # rank 0 keeps one process's random streams; the others get their own augmentation and dropout
        own = recipe.seed if rank == 0 else int(np.random.SeedSequence([recipe.seed, rank]).generate_state(1)[0])
        train_loader = data.DataLoader(train_ds, recipe.batch_size // world, seed=own, transform=augment,
                                       sampler=DistributedSampler(train_ds, seed=recipe.seed))
        if rank:
            convlens.manual_seed(own)  # the model is built; DistributedDataParallel copies rank 0's weights
    val_loader = data.DataLoader(val_ds, 256, transform=eval_tf) if val_ds is not None else None
    optimizer = recipe.make_optimizer(model)
    scheduler, interval = recipe.make_scheduler(optimizer, len(train_loader))
    loss_fn = None
    if recipe.label_smoothing:
        from convlens.nn import functional as F

        def loss_fn(out, y):
            return F.cross_entropy(out, y, label_smoothing=recipe.label_smoothing)

    n_params = sum(int(p._data.size) for p in model.parameters())
    eprint(f"convlens train: {'resuming ' + str(run_dir) if meta else 'run directory ' + str(run_dir)}")
    eprint(recipe.describe())
    eprint(f"  data             {len(train_ds)} training, {len(val_ds) if val_ds else 0} validation, "
           f"{len(test) if has_test else 0} test images of {'×'.join(map(str, shape))}, {len(classes)} classes")
    eprint(f"  parameters       {n_params:,}")
    if world > 1:
        eprint(f"  processes        {world} MPI ranks × {recipe.batch_size // world} images per step, "
               f"{parallel.get_num_threads()} thread(s) each")
    info = {"architecture": desc, "model_name": name, "recipe": recipe.to_dict(), "dataset": recipe.dataset,
            "data_dir": str(data_dir) if data_dir else None, "classes": classes, "input_shape": list(shape),
            "mean": mean, "std": std, "num_train": len(train_ds), "num_val": len(val_ds) if val_ds else 0,
            "dataset_path": recipe.dataset, "data_fingerprint": data_print}
    try:
        result = fit(model, train_loader, val_loader, optimizer=optimizer, epochs=recipe.epochs,
                     scheduler=scheduler, scheduler_interval=interval, loss_fn=loss_fn, run_dir=run_dir,
                     early_stopping=recipe.early_stopping if val_loader is not None else None, info=info,
                     resume=run_dir if meta is not None else None, progress=True,
                     restore_scheduler=meta is None or recipe.schedule_start == meta["recipe"].get("schedule_start", 0))
    except NonFiniteLossError as e:
        raise CLIError(str(e)) from None
    if result.status == "interrupted":
        eprint(f"convlens: interrupted at epoch {result.epochs_completed + 1}, batch {result.batch}; the state is "
               f"saved in {run_dir}/last.*. Continue with: convlens train --resume {run_dir}")
        return 130

    test_report = None
    if has_test:
        best = run_dir / "best.safetensors"
        if best.is_file():
            load_checkpoint(best, model=model)
        from convlens.train.parts import TTA

        tested = TTA(model, recipe.tta) if recipe.tta else model
        test_report = evaluate(tested, data.DataLoader(test, 256, transform=eval_tf), progress=True, desc="testing")
    report = {
        "run_dir": str(run_dir), "checkpoint": str(result.checkpoint) if result.checkpoint else None,
        "epochs": result.epochs_completed, "status": result.status, "best_epoch": result.best_epoch,
        "history": result.history, "val_accuracy": result.best_val_accuracy,
        "test_accuracy": test_report["accuracy"] if test_report else None,
        "test_loss": test_report["loss"] if test_report else None,
        "seconds": round(time.perf_counter() - started, 3),
    }
    from convlens.checkpoint import write_json_atomic

    if rank != 0:
        return 0
    write_json_atomic(run_dir / "report.json", report)
    if args.json:
        print_json(report)
    else:
        if test_report:
            which = f"best epoch {result.best_epoch}" if result.best_epoch else f"epoch {result.epochs_completed}"
            print(f"test accuracy {test_report['accuracy']:.2%} (loss {test_report['loss']:.4f}, "
                  f"{test_report['n']} images, {which})")
        elif result.best_val_accuracy is not None:
            print(f"validation accuracy {result.best_val_accuracy:.2%} (no separate test set)")
        print(f"saved to {run_dir} ({result.status}, {result.epochs_completed} epochs, {report['seconds']:.0f} s)")
    return 0

