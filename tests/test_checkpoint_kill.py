"""A kill at any instant of a save leaves a resumable run (issue 19, items 6 and 7).

Every file operation of an epoch-end save (safetensors write, JSON writes, fsyncs, chmods, renames,
unlinks) is counted; for every k the run is stopped just before the k-th one, once by an exception
(the Python-level failure: finally blocks run) and once by ``os._exit`` in a forked child (a real kill:
nothing runs after it). Each time, resuming must give the same weights, bit for bit, as a run that was
never interrupted, and no temporary file may be left once the resumed run has opened.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import safetensors.numpy

import convlens
from convlens import nn
from convlens.checkpoint import clean_stale_temps, read_checkpoint
from convlens.data import DataLoader
from convlens.train import fit
from convlens.utils.data import TensorDataset


class SimulatedKill(BaseException):
    """Not an Exception: nothing in the save may catch it."""


def _data():
    g = np.random.default_rng(0)
    x = convlens.tensor(g.random((48, 1, 4, 4), dtype=np.float32))
    y = convlens.tensor(g.integers(0, 3, 48))
    return TensorDataset(x, y)


def _setup():
    convlens.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.ReLU(), nn.Dropout(0.2), nn.Linear(8, 3))
    opt = convlens.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    ds = _data()
    return model, opt, DataLoader(ds, 8, shuffle=True, seed=3), DataLoader(ds, 16)


def _fit(run_dir, epochs, resume=None):
    model, opt, train, val = _setup()
    fit(model, train, val, optimizer=opt, epochs=epochs, run_dir=run_dir, resume=resume, progress=False,
        handle_sigint=False)
    return model


# (module, name) of every file operation a save makes
_OPS = [(safetensors.numpy, "save_file"), (os, "replace"), (os, "fsync"), (os, "chmod"), (os, "unlink"),
        (Path, "write_text"), (Path, "unlink")]


def _count_ops(monkeypatch, on_call):
    calls = {"n": 0}
    for owner, name in _OPS:
        real = getattr(owner, name)

        def wrapper(*a, _real=real, **kw):
            calls["n"] += 1
            on_call(calls["n"])
            return _real(*a, **kw)

        monkeypatch.setattr(owner, name, wrapper)
    return calls


@pytest.fixture(scope="module")
def reference():
    """Three epochs in one go, and the file-operation count of epoch 2's save."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        weights = {k: v.numpy().copy() for k, v in _fit(Path(tmp) / "ref", 3).state_dict().items()}
        _fit(Path(tmp) / "one", 1)
        with pytest.MonkeyPatch.context() as mp:
            calls = _count_ops(mp, lambda n: None)
            _fit(Path(tmp) / "one", 2, resume=Path(tmp) / "one")
        return weights, calls["n"]


@pytest.fixture(scope="module")
def after_one_epoch(tmp_path_factory):
    path = tmp_path_factory.mktemp("kill") / "epoch1"
    _fit(path, 1)
    return path


def _resume_and_compare(run: Path, reference_weights):
    model = _fit(run, 3, resume=run)
    assert not list(run.glob(".*.tmp")), list(run.glob(".*"))
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), reference_weights[k], err_msg=k)
    _, meta, _ = read_checkpoint(run / "last")
    assert meta["epoch"] == 3


def test_the_count_covers_a_whole_save(reference):
    _, n = reference
    assert n >= 8  # last: write, fsync, chmod, write, fsync, 2 renames; history.json; best likewise


def test_an_exception_before_any_file_operation_leaves_a_resumable_run(tmp_path, reference, after_one_epoch):
    weights, n_ops = reference
    for k in range(1, n_ops + 1):
        run = tmp_path / f"k{k}"
        shutil.copytree(after_one_epoch, run)

        def stop(n, k=k):
            if n == k:
                raise SimulatedKill(k)

        with pytest.MonkeyPatch.context() as mp:
            _count_ops(mp, stop)
            with pytest.raises(SimulatedKill):
                _fit(run, 2, resume=run)
        _resume_and_compare(run, weights)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork to kill a writer mid-save")
def test_a_kill_before_any_file_operation_leaves_a_resumable_run(tmp_path, reference, after_one_epoch):
    weights, n_ops = reference
    for k in range(1, n_ops + 1):
        run = tmp_path / f"k{k}"
        shutil.copytree(after_one_epoch, run)
        pid = os.fork()
        if pid == 0:  # the child: train epoch 2, die at the k-th file operation; never returns to pytest
            try:
                with pytest.MonkeyPatch.context() as mp:
                    _count_ops(mp, lambda n, k=k: os._exit(137) if n == k else None)
                    _fit(run, 2, resume=run)
            finally:
                os._exit(0)
        _, status = os.waitpid(pid, 0)
        assert os.WEXITSTATUS(status) == 137, f"k={k}: the child did not reach its k-th file operation"
        _resume_and_compare(run, weights)


def test_stale_temps_of_dead_writers_are_removed_when_a_run_opens(tmp_path, after_one_epoch):
    run = tmp_path / "run"
    shutil.copytree(after_one_epoch, run)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        stale = [run / f".last.{dead}-{'a' * 32}.safetensors.tmp", run / f".best.{dead}-{'b' * 32}.json.tmp",
                 run / f".history.json.{dead}-abcdef.tmp", run / f".last.{'c' * 32}.safetensors.tmp"]
        live = run / f".last.{alive.pid}-{'d' * 32}.safetensors.tmp"
        for f in [*stale, live]:
            f.write_bytes(b"\0" * 1000)
        removed = clean_stale_temps(run)
        assert sorted(removed) == sorted(stale)
        assert live.exists()  # a writer that is still running keeps its temp file
    finally:
        alive.kill()
        alive.wait()
    _fit(run, 2, resume=run)  # a run opening cleans the rest (that writer is gone now)
    assert not list(run.glob(".*.tmp"))
