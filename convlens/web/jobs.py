"""The background training job behind the Train page: one at a time, in a thread, streaming progress.

`JobManager.start(body)` checks a request (model or spec, data set, optimizer and hyper-parameters) and
answers 422 with a message for anything wrong, before a thread is started. The job runs
`convlens.train.fit` with callbacks that record progress points, epoch records and, every
``snapshot_interval`` seconds, a snapshot: every layer's feature maps for one test image, the first
conv layer's kernels, and the top-3 predictions for a strip of test images.

Everything that reads the model (snapshots, saving, copying it for the Explain page) runs between two
batches: in the training thread's batch callback, or directly while the job is paused (the loop is
then blocked) or over. So no one sees weights half-way through an optimizer step.

States: idle (no job yet), running, paused, stopped, finished, failed.
"""

from __future__ import annotations

import json
import math
import threading
import time
from pathlib import Path

import numpy as np

from convlens.web.images import HTTPError, float_map, png_data_url

__all__ = ["JobManager", "TrainJob", "STATES"]

STATES = ("idle", "running", "paused", "stopped", "finished", "failed")
_TERMINAL = ("stopped", "finished", "failed")
_FLOATS = ("lr", "momentum", "weight_decay", "val_split", "label_smoothing")
_INTS = ("batch_size", "epochs", "seed", "limit")
_FIELDS = ("model", "spec", "dataset", "optimizer", "schedule", "augment", "normalize", *_FLOATS, *_INTS)
MAX_PARAMS = 5_000_000
MAX_EPOCHS, MAX_BATCH = 1000, 4096
STRIP = 8


def _number(body: dict, key: str, kind):
    v = body.get(key)
    if v is None or v == "":
        return None
    if isinstance(v, bool):
        raise HTTPError(422, f"{key} must be a number, got {v!r}")
    try:
        f = float(v)
    except (TypeError, ValueError):
        raise HTTPError(422, f"{key} must be a number, got {v!r}") from None
    if not math.isfinite(f):
        raise HTTPError(422, f"{key} must be a finite number, got {v!r}")
    if kind is int:
        if f != int(f):
            raise HTTPError(422, f"{key} must be an integer, got {v!r}")
        return int(f)
    return f


def _planned_params(planned) -> int:
    total = 0
    for _, cls, kw, _ in planned:
        if cls.startswith("Conv"):
            k = kw.get("kernel_size", 1)
            size = math.prod(k) if isinstance(k, tuple | list) else int(k) ** (int(cls[4]) if cls[4:5].isdigit() else 2)
            total += int(kw["out_channels"]) * (int(kw["in_channels"]) // int(kw.get("groups", 1))) * size
        elif cls == "Linear":
            total += int(kw["in_features"]) * int(kw["out_features"])
    return total


def build_model(body: dict, shape: tuple, num_classes: int):
    """``(model, architecture description, label)`` from a request's ``model`` / ``spec``."""
    from convlens import models

    name = str(body.get("model") or "lenet5").strip().lower()
    if name == "spec":
        spec = body.get("spec")
        if isinstance(spec, str):
            try:
                spec = json.loads(spec)
            except ValueError as e:
                raise HTTPError(422, f"spec: not valid JSON ({e})") from None
        if not isinstance(spec, dict | list):  # never a str: from_spec would read it as a file path
            raise HTTPError(422, "spec: expected a JSON object {\"layers\": [...]} or a list of layer tables")
        try:
            planned, _, out = models.plan_spec(spec, shape)
            if len(planned) > 100 or _planned_params(planned) > MAX_PARAMS:
                raise HTTPError(422, f"spec: too large for the web app (at most 100 modules and "
                                     f"{MAX_PARAMS:,} parameters)")
            model = models.from_spec(spec, input_shape=shape)
        except (ValueError, TypeError, KeyError) as e:
            raise HTTPError(422, f"spec: {e}") from None
        return model, {"spec": models.to_spec(model, shape)}, "custom spec"
    if name not in models.list_models():
        raise HTTPError(422, f"unknown model {name!r}: expected one of {', '.join(models.list_models())} or 'spec'")
    try:
        model = models.get_model(name, input_shape=shape, num_classes=num_classes)
    except ValueError as e:
        raise HTTPError(422, f"model {name} cannot be built for images of shape {shape}: {e}") from None
    return model, {"name": name, "kwargs": {"input_shape": list(shape), "num_classes": num_classes}}, name


def _check_fits(model, shape: tuple, num_classes: int, label: str) -> None:
    from convlens.autograd import no_grad
    from convlens.summary import summary_rows
    from convlens.tensor import Tensor

    try:
        totals = summary_rows(model, shape)["totals"]
    except ValueError as e:
        raise HTTPError(422, f"model {label} does not accept images of shape {shape}: {e}") from None
    if totals["total"] > MAX_PARAMS:
        raise HTTPError(422, f"model {label} has {totals['total']:,} parameters; the web app trains at most "
                             f"{MAX_PARAMS:,}")
    model.eval()
    try:
        with no_grad():
            out = model(Tensor._wrap(np.zeros((1, *shape), np.float32)))
    except ValueError as e:
        raise HTTPError(422, f"model {label} does not accept images of shape {shape}: {e}") from None
    finally:
        model.train()
    if tuple(out.shape) != (1, num_classes):
        raise HTTPError(422, f"model {label} gives outputs of shape {tuple(out.shape[1:])} per image, but the data "
                             f"set has {num_classes} classes: the last layer needs {num_classes} units")


class _Task:
    def __init__(self, fn):
        self.fn, self.done, self.result, self.error = fn, threading.Event(), None, None

    def run(self):
        try:
            self.result = self.fn()
        except BaseException as e:  # handed to the waiting request
            self.error = e
        finally:
            self.done.set()


class TrainJob:
    """One training run in a background thread. See the module docstring."""

    def __init__(self, job_id: int, model, arch: dict, label: str, recipe, train_ds, val_ds, test_ds, classes,
                 shape, mean, std, dataset: str, runs_dir: Path, snapshot_interval: float):
        from convlens.train import TrainControl

        self.id, self.model, self.arch, self.label, self.recipe = job_id, model, arch, label, recipe
        self.train_ds, self.val_ds, self.test_ds = train_ds, val_ds, test_ds
        self.classes, self.shape, self.mean, self.std = list(classes), tuple(shape), mean, std
        self.dataset, self.runs_dir, self.snapshot_interval = dataset, Path(runs_dir), float(snapshot_interval)
        self.control = TrainControl()
        self.state, self.error, self.result_status = "running", None, None
        self.points: list[dict] = []
        self.history: list[dict] = []
        self.saved: list[str] = []
        self._events: list[tuple[int, str, dict]] = []
        self._seq = 0
        self._snapshot, self._snap_version = None, 0
        self._lock = threading.RLock()
        self._tasks: list[_Task] = []
        self._pause_requested = self._paused = self._done = False
        self._last_point = self._last_snap = 0.0
        self.started = time.time()
        self.run_name = f"web-{job_id}-{time.strftime('%Y%m%d-%H%M%S')}"
        self._strip_idx = self._pick_strip()
        self.strip_images = [png_data_url(self.test_ds.images[i]) for i in self._strip_idx]
        self.strip_labels = [self.classes[int(self.test_ds.labels[i])] for i in self._strip_idx]
        self.optimizer = recipe.make_optimizer(model.parameters())
        self._thread = threading.Thread(target=self._run, name=f"convlens-train-{job_id}", daemon=True)

    # ---- public --------------------------------------------------------------------------------------
    def start(self) -> None:
        self._push("status", {"state": "running"})
        self._thread.start()

    @property
    def terminal(self) -> bool:
        return self.state in _TERMINAL

    def pause(self) -> None:
        with self._lock:
            if self.state != "running":
                raise HTTPError(409, f"cannot pause: the job is {self.state}")
            self._pause_requested = True
        deadline = time.time() + 10  # acknowledged at the end of the current batch
        while time.time() < deadline and not self._paused and not self._done:
            time.sleep(0.02)

    def resume(self) -> None:
        with self._lock:
            if self.state != "paused" and not self._pause_requested:
                raise HTTPError(409, f"cannot resume: the job is {self.state}")
            self._pause_requested = self._paused = False
            self._set_state("running")
            self.control.resume()

    def stop(self) -> None:
        with self._lock:
            if self.terminal:
                raise HTTPError(409, f"cannot stop: the job is already {self.state}")
            self._pause_requested = self._paused = False
            self.control.stop()
        self._thread.join(timeout=10)

    def join(self, timeout=None) -> None:
        self._thread.join(timeout)

    def exclusive(self, fn, timeout: float = 60):
        """Run ``fn()`` where the model is at rest: now if paused or over, else between two batches."""
        with self._lock:
            if self._done or self._paused:
                return fn()
            task = _Task(fn)
            self._tasks.append(task)
        if not task.done.wait(timeout):
            raise HTTPError(503, "the training thread did not answer in time; try again")
        if task.error is not None:
            raise task.error
        return task.result

    def info(self) -> dict:
        """Checkpoint metadata: how to rebuild the model and how its inputs were prepared."""
        return {"architecture": self.arch, "model_name": self.label, "recipe": self.recipe.to_dict(),
                "dataset": self.dataset, "classes": self.classes, "input_shape": list(self.shape),
                "mean": self.mean, "std": self.std, "epoch": len(self.history)}

    def save(self) -> Path:
        from convlens.checkpoint import save_checkpoint

        def do():
            return save_checkpoint(self.runs_dir / self.run_name / "last", self.model, self.optimizer,
                                   **self.info(), history=self.history)

        path = self.exclusive(do)
        self.saved.append(str(path))
        self._push("saved", {"path": str(path)})
        return path

    def copy_model(self):
        """A copy of the current weights in a fresh model (for the Explain and Draw pages)."""
        from convlens.checkpoint import build_model as rebuild

        def do():
            state = {k: np.array(getattr(v, "_data", v)) for k, v in self.model.state_dict().items()}
            fresh = rebuild(self.info(), "training job")
            fresh.load_state_dict(state)
            fresh.eval()
            return fresh

        return self.exclusive(do)

    def status(self) -> dict:
        with self._lock:
            return {"job_id": self.id, "state": self.state, "error": self.error, "model": self.label,
                    "dataset": self.dataset, "recipe": self.recipe.to_dict(), "classes": self.classes,
                    "input_shape": list(self.shape), "train_images": len(self.train_ds),
                    "val_images": len(self.val_ds) if self.val_ds is not None else 0,
                    "last": self.points[-1] if self.points else None, "history": list(self.history),
                    "saved": list(self.saved), "seconds": round(time.time() - self.started, 2)}

    def full_state(self) -> tuple[dict, int]:
        """Status, every progress point and the strip images, and the event number they include."""
        with self._lock:
            s = self.status()
            s.update(points=list(self.points), strip={"images": self.strip_images, "labels": self.strip_labels})
            return s, self._seq

    def events_after(self, seq: int) -> list[tuple[int, str, dict]]:
        with self._lock:
            return [e for e in self._events if e[0] > seq]

    def snapshot_after(self, version: int):
        with self._lock:
            return (self._snapshot, self._snap_version) if self._snap_version > version else (None, version)

    # ---- inside the training thread ------------------------------------------------------------------
    def _run(self) -> None:
        from convlens.data import DataLoader
        from convlens.data import transforms as T
        from convlens.nn import functional as F
        from convlens.train import NonFiniteLossError, fit

        r = self.recipe
        norm = [T.Normalize(self.mean, self.std)] if self.mean is not None else []
        final = "finished"
        try:
            train_loader = DataLoader(self.train_ds, r.batch_size, shuffle=True, seed=r.seed,
                                      transform=T.Compose(r.augmentation() + norm))
            val_loader = (DataLoader(self.val_ds, 256, transform=T.Compose(norm) if norm else None)
                          if self.val_ds is not None else None)
            scheduler, interval = r.make_scheduler(self.optimizer, len(train_loader))
            loss_fn = None
            if r.label_smoothing:
                def loss_fn(out, y):
                    return F.cross_entropy(out, y, label_smoothing=r.label_smoothing)
            self._snap(force=True)
            result = fit(self.model, train_loader, val_loader, optimizer=self.optimizer, epochs=r.epochs,
                         scheduler=scheduler, scheduler_interval=interval, loss_fn=loss_fn, control=self.control,
                         on_batch_end=self._on_batch, on_epoch_end=self._on_epoch, progress=False,
                         handle_sigint=False)
            self.result_status = result.status
            final = "finished" if result.status in ("completed", "early_stopped") else "stopped"
        except NonFiniteLossError as e:
            final, self.error = "failed", str(e)
        except Exception as e:  # a bad configuration found late, or a bug: shown in the page
            final, self.error = "failed", f"{type(e).__name__}: {e}"
        try:
            self._snap(force=True)
        except Exception:  # the model may be broken (NaN weights): the status still has to be set
            pass
        with self._lock:
            self._done = True
            tasks, self._tasks = self._tasks, []
            self._set_state(final)
        for t in tasks:
            t.run()

    def _on_batch(self, s: dict):
        now = time.time()
        last = s["batch"] == s["batches"]
        if now - self._last_point >= 0.05 or last or not self.points:
            self._last_point = now
            point = {k: s[k] for k in ("epoch", "epochs", "batch", "batches", "loss", "accuracy", "batch_loss",
                                       "lr", "images_per_second", "examples_seen")}
            point["t"] = round(now - self.started, 3)
            with self._lock:
                self.points.append(point)
            self._push("progress", point)
        with self._lock:
            tasks, self._tasks = self._tasks, []
        for t in tasks:
            t.run()
        if now - self._last_snap >= self.snapshot_interval:
            self._snap()
        with self._lock:
            if self._pause_requested and not self.control.stopped:
                self._pause_requested, self._paused = False, True
                self._set_state("paused")
                return "pause"  # fit blocks in control.wait_while_paused() until resume() or stop()
        return None

    def _on_epoch(self, record: dict):
        with self._lock:
            self.history.append(record)
        self._push("epoch", record)

    def _snap(self, force: bool = False) -> None:
        from convlens.web.explain import layer_kind, softmax, trace

        self._last_snap = time.time()
        images = self.test_ds.images[self._strip_idx]
        x = images.astype(np.float32) / np.float32(255)
        if self.mean is not None:
            x = (x - np.asarray(self.mean, np.float32).reshape(-1, 1, 1)) / np.asarray(self.std, np.float32).reshape(-1, 1, 1)
        layers = []
        kernels = None
        for t in trace(self.model, x[:1], self.shape):
            kind = layer_kind(t.module)
            if t.output.ndim == 3 or (t.output.ndim == 1 and t.output.size <= 512):
                layers.append({"name": t.name, "type": t.type, "kind": kind, "shape": list(t.output.shape),
                               "values": float_map(t.output, 16 if t.output.ndim == 3 and t.output[0].size > 1 else None)})
            if kind == "conv" and kernels is None:
                kernels = {"layer": t.name, "shape": list(t.module.weight.shape),
                           "values": float_map(t.module.weight._data, 32)}
        from convlens.autograd import no_grad
        from convlens.tensor import Tensor

        self.model.eval()
        try:
            with no_grad():
                out = self.model(Tensor._wrap(np.ascontiguousarray(x, np.float32)))._data
        finally:
            self.model.train()
        strip = []
        for row in out:
            p = softmax(row)
            top = np.argsort(-p)[:3]
            strip.append([[self.classes[k], float(p[k])] for k in top])
        snap = {"job_id": self.id, "examples_seen": self.points[-1]["examples_seen"] if self.points else 0,
                "layers": layers, "kernels": kernels, "strip": strip}
        with self._lock:
            self._snapshot = snap
            self._snap_version += 1

    def _set_state(self, state: str) -> None:
        with self._lock:
            self.state = state
            self._push("status", {"state": state, "error": self.error})

    def _push(self, kind: str, data: dict) -> None:
        with self._lock:
            self._seq += 1
            self._events.append((self._seq, kind, data))
            if len(self._events) > 20000:  # a long run: clients that fell this far behind get a fresh state
                del self._events[:10000]

    def _pick_strip(self) -> list[int]:
        labels = np.asarray(self.test_ds.labels)
        picks: list[int] = []
        for c in range(len(self.classes)):  # one per class first, then the first others
            hit = np.flatnonzero(labels == c)
            if hit.size and len(picks) < STRIP:
                picks.append(int(hit[0]))
        for i in range(len(labels)):
            if len(picks) >= STRIP:
                break
            if i not in picks:
                picks.append(i)
        return picks


class JobManager:
    """Starts and holds the one training job."""

    def __init__(self, registry, runs_dir, snapshot_interval: float = 0.75):
        self.registry, self.runs_dir, self.snapshot_interval = registry, Path(runs_dir), snapshot_interval
        self.job: TrainJob | None = None
        self._lock = threading.Lock()
        self._next_id = 1

    def status(self) -> dict:
        if self.job is None:
            return {"job_id": None, "state": "idle"}
        return self.job.status()

    def current(self, action: str) -> TrainJob:
        if self.job is None:
            raise HTTPError(409, f"cannot {action}: no training job has been started")
        return self.job

    def start(self, body: dict) -> TrainJob:
        from convlens.train import Recipe

        if not isinstance(body, dict):
            raise HTTPError(400, "expected a JSON object with the training settings")
        unknown = sorted(set(body) - set(_FIELDS))
        if unknown:
            raise HTTPError(422, f"unknown setting(s) {', '.join(unknown)}; expected {', '.join(_FIELDS)}")
        values = {k: _number(body, k, float) for k in _FLOATS} | {k: _number(body, k, int) for k in _INTS}
        if values["epochs"] is not None and not 1 <= values["epochs"] <= MAX_EPOCHS:
            raise HTTPError(422, f"epochs must be in 1..{MAX_EPOCHS}, got {values['epochs']}")
        if values["batch_size"] is not None and not 1 <= values["batch_size"] <= MAX_BATCH:
            raise HTTPError(422, f"batch_size must be in 1..{MAX_BATCH}, got {values['batch_size']}")
        for key in ("optimizer", "schedule", "augment"):
            if body.get(key) is not None and not isinstance(body[key], str):
                raise HTTPError(422, f"{key} must be a string, got {body[key]!r}")
        dataset = body.get("dataset") or "mnist-mini"
        model_name = str(body.get("model") or "lenet5").strip().lower()
        try:
            recipe = Recipe.for_model(model_name, dataset=dataset, optimizer=body.get("optimizer"),
                                      schedule=body.get("schedule"), augment=body.get("augment"),
                                      normalize=None if body.get("normalize") is None else bool(body["normalize"]),
                                      **values)
        except (ValueError, TypeError) as e:
            raise HTTPError(422, str(e)) from None
        with self._lock:
            if self.job is not None and not self.job.terminal:
                raise HTTPError(409, f"a training job is already {self.job.state}; stop it first")
            train_full, test = self.registry.get(dataset)
            shape, classes = tuple(int(s) for s in train_full.shape), list(train_full.classes)
            try:
                train_ds, val_ds, mean, std = recipe.split_data(train_full)
            except ValueError as e:
                raise HTTPError(422, str(e)) from None
            import convlens

            convlens.manual_seed(recipe.seed)
            model, arch, label = build_model(body, shape, len(classes))
            _check_fits(model, shape, len(classes), label)
            recipe.model = label if label != "custom spec" else "spec"
            job = TrainJob(self._next_id, model, arch, label, recipe, train_ds, val_ds, test, classes, shape, mean,
                           std, dataset, self.runs_dir, self.snapshot_interval)
            self._next_id += 1
            self.job = job
            job.start()
            return job

    def shutdown(self) -> None:
        job = self.job
        if job is not None and not job.terminal:
            job.control.stop("server shutdown")
            job.join(timeout=5)
