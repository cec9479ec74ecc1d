"""`fit`: the training loop, with validation, history, checkpoints, resuming, early stopping, a NaN
guard, Ctrl-C handling and live-progress callbacks (`TrainControl` stops or pauses it from another
thread, e.g. the web app's).

Resuming is bit-exact: every random choice comes from the seed (weight init before `fit`, shuffling and
augmentation from the DataLoader's ``(seed, epoch, batch)`` streams, dropout from the global generator
whose state is saved in each checkpoint), and the optimizer, scheduler and loader states are restored,
so ``2 epochs + resume to 3`` ends with the same weights, bit for bit, as 3 epochs in one go.
"""

from __future__ import annotations

import math
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["fit", "FitResult", "TrainControl", "NonFiniteLossError"]


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite; training stopped and the last good checkpoint was kept."""

    def __init__(self, message: str, epoch: int, batch: int, checkpoint: Path | None, history: list):
        super().__init__(message)
        self.epoch, self.batch, self.checkpoint, self.history = epoch, batch, checkpoint, history


class TrainControl:
    """Stop or pause a running `fit` from another thread (or from a callback).

    ``stop()`` ends training after the current batch (the state is saved to ``last.*`` when there is a
    run directory); ``pause()`` blocks the loop between batches until ``resume()`` (or ``stop()``).
    """

    def __init__(self):
        self._stop = threading.Event()
        self._running = threading.Event()
        self._running.set()
        self.reason = "stopped"

    def stop(self, reason: str = "stopped") -> None:
        if not self._stop.is_set():
            self.reason = reason
        self._stop.set()
        self._running.set()  # wake a paused loop so it can stop

    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    def wait_while_paused(self) -> None:
        while not self._running.wait(timeout=0.2):
            pass


@dataclass
class FitResult:
    """What `fit` returns. ``status``: completed, early_stopped, stopped (TrainControl / callback) or
    interrupted (Ctrl-C); ``checkpoint``: best.safetensors if there is one, else last.safetensors."""

    history: list[dict]
    status: str
    epochs_completed: int
    seconds: float
    best_epoch: int | None = None
    best_val_accuracy: float | None = None
    run_dir: Path | None = None
    checkpoint: Path | None = None
    batch: int = 0  # batches done in the unfinished epoch when stopped mid-epoch


@dataclass
class _Progress:
    """Everything about the loop's position that a checkpoint must carry to resume it exactly."""

    epoch: int = 0  # completed epochs
    batch: int = 0  # batches done in the current epoch
    loss_sum: float = 0.0
    correct: int = 0
    seen: int = 0
    train_seconds: float = 0.0
    history: list = field(default_factory=list)
    best_epoch: int | None = None
    best_val_accuracy: float | None = None
    best_val_loss: float | None = None
    bad_epochs: int = 0
    examples_total: int = 0
    first_loss: float | None = None  # the run's first batch loss: the divergence guard's yardstick

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def _default_loss(output, target):
    from convlens.nn import functional as F

    return F.cross_entropy(output, target)


def _lr(optimizer) -> float:
    return float(optimizer.param_groups[0]["lr"])


# The divergence guard: a loss this many times its start (or its start + this, for a start near 0) means
# the run blew up even if no NaN appeared (Adam at lr 1e6 on LeNet-5 "trains" at a loss of 4e29).
DIVERGENCE_FACTOR = 1e3


def _diverged(value: float, first: float | None) -> bool:
    return first is not None and value > DIVERGENCE_FACTOR * max(abs(first), 1.0)


def _grads_finite(params) -> bool:
    """All gradients finite: a sum is finite only when every term is (one pass, no temporaries)."""
    import numpy as np

    for p in params:
        g = p.grad
        if g is not None and not np.isfinite(np.sum(g._data, dtype=np.float64)):
            return False
    return True


def _is_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def fit(model, train_loader, val_loader=None, optimizer=None, epochs: int = 1, scheduler=None, loss_fn=None,
        run_dir=None, early_stopping: int | None = None, on_epoch_end=None, on_batch_end=None,
        control: TrainControl | None = None, info: dict | None = None, resume=None,
        scheduler_interval: str | None = None, progress: bool = True, handle_sigint: bool = True,
        restore_scheduler: bool = True) -> FitResult:
    """Train ``model`` for ``epochs`` epochs (the total, counting epochs done before a resume).

    Args:
        model: a `convlens.nn.Module` mapping image batches to logits.
        train_loader / val_loader: `convlens.data.DataLoader`s; validation runs after every epoch.
        optimizer: default SGD(lr=0.01, momentum=0.9).
        scheduler: stepped once per epoch, or per batch for OneCycleLR (``scheduler_interval`` overrides).
        loss_fn: ``loss_fn(logits, labels)`` averaged over the batch; default cross-entropy.
        run_dir: where ``last.*`` (every epoch), ``best.*`` (best validation accuracy) and
            ``history.json`` go; None keeps nothing on disk.
        early_stopping: stop after this many epochs without a better validation accuracy.
        on_epoch_end(record): called with each history record ``{epoch, train_loss, train_accuracy,
            val_loss, val_accuracy, lr (at the epoch's start), seconds, images_per_second}``; may return
            "stop".
        on_batch_end(status): called after each batch with ``{epoch, epochs, batch, batches, loss,
            accuracy, batch_loss, lr, images_per_second, examples_seen}`` (running means over the epoch);
            may return "stop" or "pause" (then ``control.resume()`` continues).
        control: a `TrainControl` to stop or pause from another thread.
        info: JSON-able metadata stored in every checkpoint (model description, recipe, data set...).
        resume: a run directory or checkpoint to continue from (its ``last.*`` pair); the model,
            optimizer, scheduler and loaders must be built as for the original run.
        progress: one line per epoch on stderr, and a live tqdm bar when stderr is a terminal.
        handle_sigint: in the main thread, the first Ctrl-C (or SIGTERM) stops after the current batch and
            saves (status "interrupted"); a second one raises KeyboardInterrupt at once.
        restore_scheduler: with ``resume``, False keeps the given (fresh) scheduler and the optimizer's
            hyper-parameters as built and restores only the optimizer's buffers: a new schedule phase
            that extends a finished run.

    Raises NonFiniteLossError when the loss becomes NaN/Inf, a gradient is not finite, or the loss grows
    to DIVERGENCE_FACTOR times its first value (nothing is saved over the last good checkpoint).
    """
    from convlens.checkpoint import (
        clean_stale_temps,
        load_checkpoint,
        restore_optimizer,
        save_checkpoint,
        write_json_atomic,
    )
    from convlens.distributed.training import prepare as distributed_job
    from convlens.tensor import get_rng_state, set_rng_state
    from convlens.train.data_parallel import SlicedStep

    if optimizer is None:
        from convlens.optim import SGD

        optimizer = SGD(model.parameters(), lr=0.01, momentum=0.9)
    if int(epochs) < 1:
        raise ValueError(f"fit: epochs must be >= 1, got {epochs!r}")
    if early_stopping is not None and val_loader is None:
        raise ValueError("fit: early_stopping needs a val_loader (it watches the validation accuracy)")
    epochs = int(epochs)
    loss_fn = loss_fn or _default_loss
    control = control or TrainControl()
    info = dict(info or {})
    run_dir = Path(run_dir) if run_dir is not None else None
    if scheduler_interval is None:
        scheduler_interval = "batch" if type(scheduler).__name__ == "OneCycleLR" else "epoch"
    state = _Progress()
    # MPI ranks (convlens.distributed): gradients averaged, rank 0 prints and writes; one process: as ever
    job = distributed_job(model, train_loader)
    model, progress = job.model, progress and job.main

    if resume is not None:
        src = Path(resume)
        if src.is_dir():
            src = src / "last.safetensors"
        _, saved = load_checkpoint(src, model=job.net)
        job.check_resume(src, saved)
        fresh = [{k: v for k, v in g.items() if k != "params"} for g in optimizer.param_groups]
        restore_optimizer(saved, optimizer, scheduler if restore_scheduler else None)
        if not restore_scheduler:  # the new phase's learning rates, the old run's moment buffers
            for group, hyper in zip(optimizer.param_groups, fresh):
                group.update(hyper)
        job.restore(saved, train_loader, set_rng_state)  # the loader's position and the random state
        state = _Progress(**saved["progress"])

    def save(kind: str) -> Path | None:
        if run_dir is None:
            return None
        ranks = job.states(train_loader.state_dict(), get_rng_state())  # every rank's, on N > 1 ranks
        if not job.main:
            return None
        meta = dict(info, epoch=state.epoch, batch=state.batch, loader=train_loader.state_dict(),
                    rng_state=get_rng_state(), progress=state.to_dict(), kind=kind)
        if ranks is not None:
            meta["distributed"] = ranks
        path = save_checkpoint(run_dir / kind, job.net, optimizer, scheduler, **meta)
        if kind == "last":
            write_json_atomic(run_dir / "history.json", state.history)
        return path

    def checkpoint_path() -> Path | None:
        if run_dir is None:
            return None
        best = run_dir / "best.safetensors"
        return best if best.is_file() else (run_dir / "last.safetensors" if (run_dir / "last.safetensors").is_file()
                                            else None)

    previous_handlers = {}
    if handle_sigint and _is_main_thread():
        def on_sigint(signum, frame):
            if control.stopped:
                raise KeyboardInterrupt
            control.stop("interrupted")
            what = "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name
            print(f"\nconvlens: {what}: stopping after this batch and saving (Ctrl-C again to abort at once)",
                  file=sys.stderr, flush=True)

        # SIGTERM (kill, a job scheduler, docker stop) is treated as Ctrl-C: save, then stop
        for sig in (signal.SIGINT, getattr(signal, "SIGTERM", None)):
            if sig is not None:
                previous_handlers[sig] = signal.signal(sig, on_sigint)

    start = time.perf_counter()
    status = "completed"
    bar = None
    if run_dir is not None and job.main:
        run_dir.mkdir(parents=True, exist_ok=True)
        clean_stale_temps(run_dir)  # what writers killed mid-save left (a resumed run already recovered)
    model.train()
    step = SlicedStep(model, loss_fn, slices=job.slices)
    step_params = [p for g in optimizer.param_groups for p in g["params"]]
    try:
        while state.epoch < epochs:
            if job.sync_stop(control):
                status = control.reason
                break
            epoch = state.epoch
            if state.batch == 0:
                train_loader.set_epoch(epoch)
                state.loss_sum, state.correct, state.seen, state.train_seconds = 0.0, 0, 0, 0.0
            job.set_epoch(train_loader, epoch)  # a DistributedSampler's shuffle, also when resumed mid-epoch
            nb = len(train_loader)
            lr = _lr(optimizer)
            bar = _bar(progress, nb, state.batch, f"epoch {epoch + 1}/{epochs}")
            t0 = time.perf_counter()
            for x, y in train_loader:
                optimizer.zero_grad()
                # overflow inside a diverging step is reported by the guard below, not as RuntimeWarnings
                with np.errstate(over="ignore", invalid="ignore"):
                    value, logits = step(x, y)  # forward, loss and backward (in batch slices on the threads)
                n, correct = int(y.shape[0]), int((logits.argmax(axis=1) == y._data).sum())
                value, n, correct = job.batch_totals(value, n, correct)  # the global batch's, on N ranks
                if state.first_loss is None and math.isfinite(value):
                    state.first_loss = float(value)
                problem = None
                if not math.isfinite(value):
                    problem = f"the loss became {value}"
                elif _diverged(value, state.first_loss):
                    problem = f"the loss diverged to {value:.3g} (it started at {state.first_loss:.3g})"
                elif not _grads_finite(step_params):
                    problem = f"a gradient became NaN or infinite (loss {value:.3g})"
                if problem is not None:
                    good = run_dir / "last.safetensors" if run_dir is not None else None
                    good = good if good is not None and good.is_file() else None
                    raise NonFiniteLossError(
                        f"{problem} at epoch {epoch + 1}, batch {state.batch + 1}; training stopped "
                        "(try a lower learning rate). "
                        + (f"The last good checkpoint is kept: {good}." if good else "No checkpoint was saved."),
                        epoch + 1, state.batch + 1, good, state.history)
                with np.errstate(over="ignore", invalid="ignore"):
                    optimizer.step()
                if scheduler is not None and scheduler_interval == "batch":
                    scheduler.step()
                state.batch += 1
                state.loss_sum += value * n
                state.correct += correct
                state.seen += n
                state.examples_total += n
                elapsed = state.train_seconds + time.perf_counter() - t0
                ips = state.seen / elapsed if elapsed > 0 else 0.0
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{state.loss_sum / state.seen:.4f}",
                                    acc=f"{state.correct / state.seen:.2%}", img_s=f"{ips:.0f}", refresh=False)
                if on_batch_end is not None:
                    answer = on_batch_end({
                        "epoch": epoch + 1, "epochs": epochs, "batch": state.batch, "batches": nb,
                        "loss": state.loss_sum / state.seen, "accuracy": state.correct / state.seen,
                        "batch_loss": value, "lr": _lr(optimizer), "images_per_second": ips,
                        "examples_seen": state.examples_total,
                    })
                    if answer == "stop":
                        control.stop()
                    elif answer == "pause":
                        control.pause()
                if control.paused:
                    paused_at = time.perf_counter()
                    control.wait_while_paused()
                    t0 += time.perf_counter() - paused_at  # paused time is not training time
                if job.sync_stop(control):
                    break
            state.train_seconds += time.perf_counter() - t0
            if bar is not None:
                bar.close()
                bar = None
            if state.batch < nb:  # stopped mid-epoch: keep the exact position
                status = control.reason
                save("last")
                break

            t_val = time.perf_counter()
            record = {"epoch": epoch + 1, "train_loss": state.loss_sum / state.seen,
                      "train_accuracy": state.correct / state.seen, "val_loss": None, "val_accuracy": None,
                      "lr": lr}
            if val_loader is not None:
                # validation leaves the training's random stream alone: a loader drawing its seed on first
                # use (a fresh one after a resume) would otherwise shift every later dropout mask
                rng_before = get_rng_state()
                val = job.evaluate(val_loader, progress=progress, desc="validating")  # sharded on N ranks
                set_rng_state(rng_before)
                record["val_loss"], record["val_accuracy"] = val["loss"], val["accuracy"]
                model.train()
            if scheduler is not None and scheduler_interval == "epoch":
                scheduler.step()
            record["seconds"] = state.train_seconds + time.perf_counter() - t_val
            record["images_per_second"] = state.seen / state.train_seconds if state.train_seconds > 0 else 0.0
            state.history.append(record)
            state.epoch, state.batch = epoch + 1, 0

            improved = False
            if record["val_accuracy"] is not None:
                va, vl = record["val_accuracy"], record["val_loss"]
                improved = (state.best_val_accuracy is None or va > state.best_val_accuracy
                            or (va == state.best_val_accuracy and vl < (state.best_val_loss or math.inf)))
                if improved:
                    state.best_epoch, state.best_val_accuracy, state.best_val_loss = epoch + 1, va, vl
                    state.bad_epochs = 0
                else:
                    state.bad_epochs += 1
            # best before last: a kill between the two leaves last.* at the previous epoch, and the resumed
            # run redoes this epoch bit for bit and writes the same best.* again
            if improved:
                save("best")
            save("last")
            if progress:
                print(_epoch_line(record, epochs), file=sys.stderr, flush=True)
            if on_epoch_end is not None and on_epoch_end(dict(record)) == "stop":
                control.stop()
            if early_stopping is not None and state.bad_epochs >= early_stopping:
                status = "early_stopped"
                if progress:
                    print(f"early stopping: no better validation accuracy for {early_stopping} epochs",
                          file=sys.stderr)
                break
    finally:
        if bar is not None:
            bar.close()
        for sig, handler in previous_handlers.items():
            signal.signal(sig, handler)
    job.finish()
    return FitResult(history=state.history, status=status, epochs_completed=state.epoch,
                     seconds=time.perf_counter() - start, best_epoch=state.best_epoch,
                     best_val_accuracy=state.best_val_accuracy, run_dir=run_dir, checkpoint=checkpoint_path(),
                     batch=state.batch)


def _bar(progress: bool, total: int, initial: int, desc: str):
    # a live bar only on a terminal; logs (scripts, CI) get just the one line per epoch
    if not progress or not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc=desc, file=sys.stderr, leave=False, dynamic_ncols=True,
                mininterval=0.25, unit="batch")


def _epoch_line(r: dict, epochs: int) -> str:
    line = (f"epoch {r['epoch']}/{epochs}: train loss {r['train_loss']:.4f}, accuracy {r['train_accuracy']:.2%}")
    if r["val_accuracy"] is not None:
        line += f" | val loss {r['val_loss']:.4f}, accuracy {r['val_accuracy']:.2%}"
    return line + f" | {r['seconds']:.1f} s, {r['images_per_second']:.0f} images/s, lr {r['lr']:.3g}"

