"""Checkpoints: a pair of files, ``NAME.safetensors`` (every array) and ``NAME.json`` (everything else).

The safetensors file holds the model's weights and buffers under ``model.<state_dict key>`` and the
optimizer's state arrays under ``optim.state.<param index>.<name>`` (e.g.
``optim.state.3.momentum_buffer``). The JSON file holds metadata only: how to rebuild the model (a zoo
name and its arguments, or a spec), the recipe, the epoch, RNG and loader states, the data set, class
names, input shape, normalisation, the optimizer's hyper-parameters and scalar state, the scheduler's
state and the convlens version. Neither uses pickle, so loading a checkpoint never runs code.

Writing is atomic in effect: both files are written completely to temporary names in the target folder
(``.NAME.<pid>-<token>.safetensors.tmp`` / ``.json.tmp``) and fsync'd, then renamed into place with
``os.replace``, the safetensors file first. A random token is written into both (the safetensors
header's metadata and the JSON) along with the safetensors file's size. The JSON's rename is the commit
point: before the first rename the old pair is intact; between the two renames the new safetensors file
sits beside the old JSON while the new, complete JSON waits in its temporary file, and `recover` (run by
every reader and when a run opens) finishes that save by renaming it; after the second rename the new
pair is in place. A kill at any instant therefore leaves either the old or the new checkpoint. A pair
from two different saves that cannot be completed (files copied from different runs) is refused.
Temporary files of writers that died (the pid in their name is gone) are removed by `clean_stale_temps`.

A run directory (``convlens train --out``) holds ``last.*``, ``best.*`` and ``history.json``; wherever a
checkpoint is expected, a run directory (best, else last) or a ``.safetensors``/``.json`` path works.
"""

from __future__ import annotations

import contextlib
import json
import numbers
import os
import secrets
from pathlib import Path

import numpy as np

__all__ = [
    "CheckpointError", "save_checkpoint", "load_checkpoint", "read_checkpoint", "resolve_checkpoint",
    "write_checkpoint", "build_model", "restore_optimizer", "write_json_atomic", "describe_model",
    "recover", "clean_stale_temps",
]

FORMAT = "convlens-checkpoint"
FORMAT_VERSION = 1
_MODEL, _OPTIM = "model.", "optim.state."


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# temporary files may be created private (0600); the renamed result gets ordinary permissions
_FILE_MODE = 0o666 & ~_umask()


class CheckpointError(ValueError):
    """A missing, unreadable or inconsistent checkpoint; the message names the file."""


# ---- JSON helpers --------------------------------------------------------------------------------------
def jsonable(value, where: str = "info"):
    """A JSON-safe copy: NumPy scalars/arrays → numbers/lists, tuples → lists, Paths → strings."""
    if isinstance(value, dict):
        return {str(k): jsonable(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v, where) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    if value is None or isinstance(value, str | bool | numbers.Number):
        if isinstance(value, float) and not np.isfinite(value):
            return None  # JSON has no NaN/Inf
        return value
    raise TypeError(f"save_checkpoint: {where} is a {type(value).__name__}, which cannot be stored in JSON")


def _fsync(path: Path) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):  # not supported everywhere (e.g. Windows); best effort
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_json_atomic(path, obj) -> Path:
    """Write JSON to a temporary file beside ``path`` and rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(6)}.tmp")
    try:
        tmp.write_text(json.dumps(jsonable(obj), indent=1) + "\n")
        _fsync(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


# ---- paths ------------------------------------------------------------------------------------------------
def _stem(path) -> Path:
    p = Path(path)
    if p.suffix in (".safetensors", ".json"):
        return p.with_suffix("")
    if p.is_dir():
        return p / "last"
    return p


def resolve_checkpoint(path, prefer: str = "best") -> tuple[Path, Path]:
    """``(NAME.safetensors, NAME.json)`` for a run directory (``prefer``'s pair if complete, else the
    other), a ``.safetensors`` or ``.json`` file, or a path without suffix. Raises CheckpointError."""
    p = Path(path).expanduser()
    if p.is_dir():
        order = ("best", "last") if prefer == "best" else ("last", "best")
        for name in order:
            recover(p / name)
        for name in order:
            if (p / f"{name}.safetensors").is_file() and (p / f"{name}.json").is_file():
                return p / f"{name}.safetensors", p / f"{name}.json"
        raise CheckpointError(
            f"{p}: no checkpoint in this folder (expected best.safetensors or last.safetensors, each with its .json)"
        )
    if not p.exists() and p.suffix not in (".safetensors", ".json") and p.with_suffix(".safetensors").is_file():
        p = p.with_suffix(".safetensors")
    if not p.exists():
        raise CheckpointError(f"{p}: no such checkpoint (expected a run directory or a .safetensors file)")
    if p.suffix not in (".safetensors", ".json"):
        raise CheckpointError(f"{p}: not a checkpoint (expected a run directory, a .safetensors or a .json file)")
    st, js = p.with_suffix(".safetensors"), p.with_suffix(".json")
    recover(st)
    for f, what in ((st, "weights"), (js, "metadata")):
        if not f.is_file():
            raise CheckpointError(f"{f}: missing; a checkpoint is a pair {st.name} + {js.name} ({what} absent)")
    return st, js


# ---- writing ----------------------------------------------------------------------------------------------
def write_checkpoint(path, arrays: dict[str, np.ndarray], meta: dict) -> Path:
    """Write ``arrays`` and ``meta`` as the pair ``path`` (.safetensors + .json), atomically (see module
    docstring). Returns the .safetensors path. On failure the previous pair is left as it was."""
    from safetensors.numpy import save_file

    stem = _stem(path)
    folder = stem.parent
    folder.mkdir(parents=True, exist_ok=True)
    st, js = stem.with_suffix(".safetensors"), stem.with_suffix(".json")
    token = secrets.token_hex(16)
    tmp_st = folder / f".{stem.name}.{os.getpid()}-{token}.safetensors.tmp"
    tmp_js = folder / f".{stem.name}.{os.getpid()}-{token}.json.tmp"
    # np.ascontiguousarray makes a 0-d array 1-d (NumPy 2), which broke num_batches_tracked on load
    tensors = {k: np.ascontiguousarray(v) if np.ndim(v) else np.array(v) for k, v in arrays.items()}
    committed = False  # True once the safetensors file is renamed: tmp_js then completes the save
    try:
        save_file(tensors, str(tmp_st), metadata={"format": FORMAT, "token": token})
        _fsync(tmp_st)
        with contextlib.suppress(OSError):
            os.chmod(tmp_st, _FILE_MODE)
        body = dict(jsonable(meta))
        body.update(format=FORMAT, format_version=FORMAT_VERSION, token=token,
                    safetensors_file=st.name, safetensors_size=tmp_st.stat().st_size)
        tmp_js.write_text(json.dumps(body, indent=1) + "\n")
        _fsync(tmp_js)
        os.replace(tmp_st, st)
        committed = True
        os.replace(tmp_js, js)
        _fsync_dir(folder)
    finally:
        tmp_st.unlink(missing_ok=True)
        if not committed:  # after the first rename the JSON temp is what `recover` completes the save with
            tmp_js.unlink(missing_ok=True)
    return st


# ---- recovery ---------------------------------------------------------------------------------------------
def _st_token(st: Path) -> str | None:
    from safetensors import safe_open

    try:
        with safe_open(str(st), framework="numpy") as f:
            return (f.metadata() or {}).get("token")
    except Exception:  # unreadable or truncated: nothing to recover from
        return None


def _json_token(js: Path) -> str | None:
    try:
        meta = json.loads(js.read_text())
    except (OSError, UnicodeDecodeError, ValueError, RecursionError):
        return None
    return meta.get("token") if isinstance(meta, dict) else None


def recover(path) -> bool:
    """Finish a save of ``path`` (a stem, a run directory's ``last``/``best``, or either file) that was
    interrupted between its two renames: the safetensors file is new, its JSON still waits complete in
    ``.NAME.<pid>-<token>.json.tmp``. Returns True when it renamed that file into place."""
    stem = _stem(path)
    st, js = stem.with_suffix(".safetensors"), stem.with_suffix(".json")
    if not st.is_file():
        return False
    token = _st_token(st)
    if token is None or (js.is_file() and _json_token(js) == token):
        return False
    size = st.stat().st_size
    for cand in sorted(stem.parent.glob(f".{stem.name}.*{token}.json.tmp")):
        try:
            meta = json.loads(cand.read_text())
        except (OSError, UnicodeDecodeError, ValueError, RecursionError):
            continue
        if isinstance(meta, dict) and meta.get("token") == token and meta.get("safetensors_size") == size:
            try:
                os.replace(cand, js)
            except OSError:
                return False  # a read-only folder: the pair stays mismatched and says so when read
            _fsync_dir(stem.parent)
            return True
    return False


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # exists, owned by someone else
    return True


def clean_stale_temps(folder) -> list[Path]:
    """Remove the temporary files that writers killed mid-save left in ``folder`` (``.*.tmp`` whose pid is
    not running; names without a pid come from older versions and are removed too), after finishing any
    save that can be finished (`recover`). Returns the removed paths."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    for name in ("last", "best"):
        recover(folder / name)
    removed = []
    for tmp in folder.glob(".*.tmp"):
        parts = tmp.name.split(".")
        tag = parts[-3] if tmp.name.endswith((".safetensors.tmp", ".json.tmp")) and len(parts) >= 4 else parts[-2]
        pid = tag.split("-", 1)[0] if "-" in tag else ""
        if pid.isdigit() and _pid_alive(int(pid)):
            continue
        try:
            tmp.unlink()
            removed.append(tmp)
        except OSError:
            pass
    return removed


def describe_model(model, input_shape=None) -> dict | None:
    """How to rebuild ``model``: ``{"name", "kwargs"}`` for a zoo model that recorded its arguments,
    else ``{"spec": ...}`` from ``convlens.models.to_spec`` (None when neither works)."""
    zoo = getattr(model, "zoo_config", None) or getattr(model, "_zoo", None)
    if isinstance(zoo, dict) and "name" in zoo:
        return {"name": zoo["name"], "kwargs": dict(zoo.get("kwargs", {}))}
    if input_shape is not None:
        try:
            from convlens.models import to_spec

            return {"spec": to_spec(model, tuple(input_shape))}
        except (ImportError, ValueError, TypeError, NotImplementedError):
            return None
    return None


def _split_optimizer(sd: dict) -> tuple[dict, dict]:
    """Optimizer state_dict → (arrays for safetensors, JSON part). NumPy scalars go to safetensors as
    0-d arrays so that their dtype (and so the arithmetic after resuming) is kept exactly."""
    arrays, scalars = {}, {}
    for idx, entries in sd["state"].items():
        kept = {}
        for name, v in entries.items():
            if isinstance(v, np.ndarray | np.generic):
                arrays[f"{_OPTIM}{int(idx)}.{name}"] = np.asarray(v)
            else:
                kept[name] = v
        scalars[str(int(idx))] = kept
    # other lists of arrays (Lookahead's slow buffers): "optim.<key>.<i>", their count in the JSON part
    extra = {}
    for key, values in sd.items():
        if key not in ("state", "param_groups"):
            extra[key] = len(values)
            arrays.update({f"optim.{key}.{i}": np.asarray(v) for i, v in enumerate(values)})
    return arrays, {"param_groups": sd["param_groups"], "state": scalars, **({"lists": extra} if extra else {})}


def save_checkpoint(path, model, optimizer=None, scheduler=None, **info) -> Path:
    """Save ``model`` (weights and buffers), optionally the optimizer and scheduler states, and ``info``
    (JSON-able metadata: ``recipe``, ``epoch``, ``dataset``, ``classes``, ``input_shape``, ``mean``,
    ``std``, ...) as the pair ``path`` (``.safetensors`` + ``.json``; a directory means ``DIR/last``).

    ``info["architecture"]`` describes how to rebuild the model (``{"name": zoo_name, "kwargs": {...}}``
    or ``{"spec": {...}}``); when absent it is derived with `describe_model`.
    """
    import convlens
    from convlens.tensor import Tensor

    arrays = {_MODEL + k: v._data if isinstance(v, Tensor) else np.asarray(v) for k, v in model.state_dict().items()}
    meta = dict(info)
    if meta.get("architecture") is None:
        meta["architecture"] = describe_model(model, meta.get("input_shape"))
    meta["model_class"] = type(model).__name__
    meta["convlens_version"] = convlens.__version__
    if optimizer is not None:
        opt_arrays, opt_meta = _split_optimizer(optimizer.state_dict())
        arrays.update(opt_arrays)
        meta["optimizer"] = {"type": type(optimizer).__name__, **opt_meta}
    if scheduler is not None:
        meta["scheduler"] = {"type": type(scheduler).__name__, "state": scheduler.state_dict()}
    return write_checkpoint(path, arrays, meta)


# ---- reading ----------------------------------------------------------------------------------------------
def read_checkpoint(path, prefer: str = "best") -> tuple[dict[str, np.ndarray], dict, Path]:
    """``(arrays, meta, safetensors_path)``, after checking that the two files belong together."""
    from safetensors import safe_open

    st, js = resolve_checkpoint(path, prefer)
    try:
        meta = json.loads(js.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise CheckpointError(f"{js}: not a readable checkpoint JSON ({type(e).__name__}: {e})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{js}: not a convlens checkpoint (no \"format\": \"{FORMAT}\" entry)")
    if meta.get("format_version", 0) > FORMAT_VERSION:
        raise CheckpointError(f"{js}: written by a newer convlens (format {meta['format_version']}); upgrade")
    try:
        with safe_open(str(st), framework="numpy") as f:
            header = f.metadata() or {}
            token_ok = header.get("token") == meta.get("token")
            size_ok = st.stat().st_size == meta.get("safetensors_size")
            if not (token_ok and size_ok):
                raise CheckpointError(
                    f"{st} and {js.name} do not belong together (a mismatched pair: an interrupted save, or "
                    "files copied from different runs)"
                )
            arrays = {k: f.get_tensor(k) for k in f.keys()}
    except CheckpointError:
        raise
    except Exception as e:  # safetensors raises its own SafetensorError and OSError on bad files
        raise CheckpointError(f"{st}: not a readable safetensors file ({type(e).__name__}: {e})") from None
    return arrays, meta, st


def build_model(meta: dict, where: str = "checkpoint"):
    """Rebuild the (untrained) model a checkpoint describes."""
    from convlens import models

    desc = meta.get("architecture")
    if not isinstance(desc, dict):
        raise CheckpointError(f"{where}: does not say how to rebuild the model (no \"architecture\" entry); "
                              "pass model= to load_checkpoint")
    try:
        if "spec" in desc:
            shape = meta.get("input_shape")
            return models.from_spec(desc["spec"], input_shape=tuple(shape) if shape else None)
        return models.get_model(desc["name"], **desc.get("kwargs", {}))
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{where}: cannot rebuild the model {desc.get('name', '(spec)')!r}: {e}") from None


def load_checkpoint(path, model=None, prefer: str = "best"):
    """Load a checkpoint → ``(model, info)``. The model is rebuilt from the metadata (or ``model``'s
    weights are replaced), and put in eval mode. ``info`` holds all metadata plus ``"checkpoint"`` (the
    .safetensors path), ``"optimizer_state"`` (a state_dict for ``Optimizer.load_state_dict``, or None)
    and ``"scheduler_state"`` (or None)."""
    arrays, meta, st = read_checkpoint(path, prefer)
    if model is None:
        model = build_model(meta, str(st.with_suffix(".json")))
    weights = {k[len(_MODEL):]: v for k, v in arrays.items() if k.startswith(_MODEL)}
    try:
        model.load_state_dict(weights)
    except (KeyError, ValueError, RuntimeError) as e:
        raise CheckpointError(f"{st}: the weights do not fit the model {type(model).__name__}: {e}") from None
    model.eval()
    info = dict(meta)
    info["checkpoint"] = str(st)
    info["optimizer_state"] = _join_optimizer(meta.get("optimizer"), arrays)
    sched = meta.get("scheduler")
    info["scheduler_state"] = sched.get("state") if isinstance(sched, dict) else None
    return model, info


def _join_optimizer(opt_meta, arrays) -> dict | None:
    if not isinstance(opt_meta, dict):
        return None
    state: dict[int, dict] = {int(k): dict(v) for k, v in opt_meta.get("state", {}).items()}
    for key, value in arrays.items():
        if key.startswith(_OPTIM):
            idx, name = key[len(_OPTIM):].split(".", 1)
            state.setdefault(int(idx), {})[name] = value[()] if value.ndim == 0 else value
    lists = {}
    for key, count in (opt_meta.get("lists") or {}).items():
        missing = [i for i in range(int(count)) if f"optim.{key}.{i}" not in arrays]
        if missing:
            raise CheckpointError(f"checkpoint: optimizer list {key!r} lacks array(s) {missing}")
        lists[key] = [arrays[f"optim.{key}.{i}"] for i in range(int(count))]
    return {"state": state, "param_groups": opt_meta["param_groups"], **lists}


def restore_optimizer(info: dict, optimizer=None, scheduler=None) -> None:
    """Put a checkpoint's optimizer and scheduler states (from `load_checkpoint`'s info) back."""
    where = info.get("checkpoint", "checkpoint")
    if optimizer is not None:
        saved = info.get("optimizer_state")
        if saved is None:
            raise CheckpointError(f"{where}: holds no optimizer state")
        kind = (info.get("optimizer") or {}).get("type")
        if kind and kind != type(optimizer).__name__:
            raise CheckpointError(f"{where}: optimizer state is for {kind}, not {type(optimizer).__name__}")
        optimizer.load_state_dict(saved)
    if scheduler is not None and info.get("scheduler_state") is not None:
        scheduler.load_state_dict(info["scheduler_state"])
