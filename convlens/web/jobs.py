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

import math
import threading
import time
from pathlib import Path

import numpy as np

from convlens.web.images import HTTPError, float_map, png_data_url
from convlens.web.job_setup import _check_fits, _number, build_model, check_input_matches

__all__ = ["JobManager", "TrainJob", "STATES"]

STATES = ("idle", "running", "paused", "stopped", "finished", "failed")
_TERMINAL = ("stopped", "finished", "failed")
_FLOATS = ("lr", "momentum", "weight_decay", "val_split", "label_smoothing")
_INTS = ("batch_size", "epochs", "seed", "limit")
_FIELDS = ("model", "spec", "dataset", "optimizer", "schedule", "augment", "normalize", *_FLOATS, *_INTS)
MAX_EPOCHS, MAX_BATCH = 1000, 4096
STRIP = 40  # test images in the prediction grid: 4 per class for 10 classes
LIVE = ("lr", "momentum", "weight_decay", "batch_size")  # what /api/train/hyper may change while training


class _LiveScheduler:
    """The recipe's scheduler until the learning rate or batch size is changed by hand while training;
    from then on the learning rate is what the user set (the schedule is frozen)."""

    def __init__(self, inner):
        self.inner, self.frozen = inner, False

    def step(self, *args, **kwargs):
        if not self.frozen:
            self.inner.step(*args, **kwargs)

    def state_dict(self):
        return self.inner.state_dict()

    def load_state_dict(self, state):
        self.inner.load_state_dict(state)


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
        self._scheduler: _LiveScheduler | None = None
        self._train_loader = None
        self._pending_batch_size: int | None = None
        self.hyper = {"lr": recipe.lr, "momentum": recipe.momentum, "weight_decay": recipe.weight_decay,
                      "batch_size": recipe.batch_size, "changes": []}
        self._smooth = {"loss": None, "accuracy": None, "n": 0}
        self._tally = {"total": 0, "epoch_start": 0, "correct": 0.0}
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

    def set_hyper(self, body: dict) -> dict:
        """Change lr, momentum, weight decay or batch size while training (ConvNetJS's live settings).
        lr, momentum and weight decay apply from the next batch; the batch size from the next epoch.
        Changing lr or the batch size freezes the recipe's schedule at the value set."""
        unknown = sorted(set(body) - set(LIVE))
        if unknown:
            raise HTTPError(422, f"cannot change {', '.join(unknown)} while training; live settings: {', '.join(LIVE)}")
        values = {}
        for key in LIVE:
            v = _number(body, key, int if key == "batch_size" else float)
            if v is None:
                continue
            if key == "lr" and not 0 < v <= 10:
                raise HTTPError(422, f"lr must be in (0, 10], got {v}")
            if key == "momentum" and not 0 <= v < 1:
                raise HTTPError(422, f"momentum must be in [0, 1), got {v}")
            if key == "weight_decay" and not 0 <= v <= 1:
                raise HTTPError(422, f"weight_decay must be in [0, 1], got {v}")
            if key == "batch_size" and not 1 <= v <= MAX_BATCH:
                raise HTTPError(422, f"batch_size must be in 1..{MAX_BATCH}, got {v}")
            values[key] = v
        if not values:
            raise HTTPError(422, f"nothing to change: send one or more of {', '.join(LIVE)}")
        if self.terminal:
            raise HTTPError(409, f"the job is {self.state}: start a new one with these settings")

        def apply():
            for group in self.optimizer.param_groups:
                if "lr" in values:
                    group["lr"] = values["lr"]
                if "weight_decay" in values and "weight_decay" in group:
                    group["weight_decay"] = values["weight_decay"]
                if "momentum" in values:
                    if "momentum" in group:
                        group["momentum"] = values["momentum"]
                    elif "betas" in group:  # Adam's first-moment decay plays momentum's part
                        group["betas"] = (values["momentum"], group["betas"][1])
            if "batch_size" in values:
                self._pending_batch_size = values["batch_size"]
            if ("lr" in values or "batch_size" in values) and self._scheduler is not None:
                self._scheduler.frozen = True
            seen = self.points[-1]["examples_seen"] if self.points else 0
            with self._lock:
                self.hyper.update(values)
                self.hyper["changes"].append({"examples_seen": seen, **values})
            self._push("hyper", {k: v for k, v in self.hyper.items() if k != "changes"} | {"at": seen})
            return dict(self.hyper)

        return self.exclusive(apply)

    def train_loader_batch_size(self) -> int | None:
        return getattr(self._train_loader, "batch_size", None)

    def params(self, layer: str | None) -> dict:
        """Every parameterised layer's weight and gradient statistics, and for ``layer`` (default the
        first) the weights and gradients themselves (as of the last batch)."""
        from convlens.web.explain import layer_kind

        def do():
            layers, chosen = [], None
            for name, module in self.model.named_modules():
                w = getattr(module, "weight", None)
                if w is None or not hasattr(w, "_data") or layer_kind(module) not in ("conv", "fc", "norm"):
                    continue
                g = getattr(w, "grad", None)
                gd = None if g is None else np.asarray(getattr(g, "_data", g))
                wd = np.asarray(w._data)
                entry = {"name": name, "type": type(module).__name__, "kind": layer_kind(module), "shape": list(wd.shape),
                         "weight_rms": float(np.sqrt(np.mean(np.square(wd, dtype=np.float64)))),
                         "grad_rms": None if gd is None else float(np.sqrt(np.mean(np.square(gd, dtype=np.float64))))}
                entry["ratio"] = (entry["grad_rms"] / entry["weight_rms"]
                                  if entry["grad_rms"] is not None and entry["weight_rms"] > 0 else None)
                layers.append(entry)
                if chosen is None and (layer in (None, "", name)):
                    chosen = {"name": name, "weight": float_map(wd, 64), "grad": None if gd is None else float_map(gd, 64)}
                    b = getattr(module, "bias", None)
                    if b is not None and hasattr(b, "_data"):
                        chosen["bias"] = float_map(np.asarray(b._data))
            if layer not in (None, "") and chosen is None:
                raise HTTPError(422, f"unknown layer {layer!r}: expected one of {', '.join(e['name'] for e in layers)}")
            return {"layers": layers, "selected": chosen,
                    "examples_seen": self.points[-1]["examples_seen"] if self.points else 0}

        return self.exclusive(do)

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
                    "saved": list(self.saved), "seconds": round(time.time() - self.started, 2),
                    "hyper": {k: v for k, v in self.hyper.items() if k != "changes"}}

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
            self._train_loader = train_loader
            scheduler, interval = r.make_scheduler(self.optimizer, len(train_loader))
            if scheduler is not None:
                scheduler = self._scheduler = _LiveScheduler(scheduler)
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

    def _track(self, s: dict) -> None:
        """An exponential moving average of the batch loss and accuracy that runs across epochs (the
        epoch's running mean restarts at every epoch: a cliff in the curve): m ← m + α(v − m), with
        α = max(0.03, 1/n) for the n-th batch so that the first values are not biased towards 0. The
        batch's accuracy is recovered from fit's running mean: correct so far = mean × images so far."""
        t = self._tally
        if s["batch"] == 1:
            t["epoch_start"], t["correct"] = t["total"], 0.0
        n = s["examples_seen"] - t["total"]
        correct = s["accuracy"] * (s["examples_seen"] - t["epoch_start"])
        batch_acc = (correct - t["correct"]) / n if n > 0 else None
        t["total"], t["correct"] = s["examples_seen"], correct
        sm = self._smooth
        sm["n"] += 1
        alpha = max(0.03, 1.0 / sm["n"])
        for key, v in (("loss", s["batch_loss"]), ("accuracy", batch_acc)):
            if v is None or not math.isfinite(v):
                continue
            sm[key] = v if sm[key] is None or not math.isfinite(sm[key]) else sm[key] + alpha * (v - sm[key])

    def _smoothed(self) -> dict:
        return {"smooth_loss": self._smooth["loss"], "smooth_accuracy": self._smooth["accuracy"]}

    def _on_batch(self, s: dict):
        now = time.time()
        self._track(s)
        last = s["batch"] == s["batches"]
        if now - self._last_point >= 0.05 or last or s["batch"] == 1 or not self.points:  # each epoch's ends
            self._last_point = now
            point = {k: s[k] for k in ("epoch", "epochs", "batch", "batches", "loss", "accuracy", "batch_loss",
                                       "lr", "images_per_second", "examples_seen")}
            point["t"] = round(now - self.started, 3)
            point.update(self._smoothed())
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
        record = dict(record, examples_seen=self.points[-1]["examples_seen"] if self.points else 0)
        with self._lock:
            self.history.append(record)
        self._push("epoch", record)
        bs, loader = self._pending_batch_size, self._train_loader
        if bs is not None and loader is not None:  # between epochs: the next epoch's batches have the new size
            self._pending_batch_size = None
            loader.batch_size = bs
            if getattr(loader, "batch_sampler", None) is not None and hasattr(loader.batch_sampler, "batch_size"):
                loader.batch_sampler.batch_size = bs

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
        """STRIP test images, the classes taking turns (the first image of each class, then the second...)."""
        labels = np.asarray(self.test_ds.labels)
        per_class = [np.flatnonzero(labels == c) for c in range(len(self.classes))]
        picks: list[int] = []
        for r in range(max((len(p) for p in per_class), default=0)):
            for hit in per_class:
                if r < len(hit) and len(picks) < STRIP:
                    picks.append(int(hit[r]))
            if len(picks) >= STRIP:
                break
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
            train_full, test = self.registry.get(dataset, wait=False)
            shape, classes = tuple(int(s) for s in train_full.shape), list(train_full.classes)
            check_input_matches(model_name, shape, dataset)
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
