"""Checkpoints: round trips (weights, optimizer, scheduler, metadata), run-directory resolution, atomic
writes that leave the previous pair intact, mismatched pairs and bad files reported with their names."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

import convlens
from convlens import checkpoint as ck
from convlens import models, nn, optim
from convlens.checkpoint import CheckpointError, load_checkpoint, save_checkpoint


def trained_lenet(steps: int = 2, seed: int = 0):
    convlens.manual_seed(seed)
    model = models.get_model("lenet5", input_shape=(1, 28, 28), num_classes=10)
    opt = optim.Adam(model.parameters(), lr=1e-3)
    sched = optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        x = convlens.tensor(rng.random((4, 1, 28, 28), dtype=np.float32))
        y = convlens.tensor(rng.integers(0, 10, 4))
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
        sched.step()
    return model, opt, sched


ARCH = {"name": "lenet5", "kwargs": {"input_shape": [1, 28, 28], "num_classes": 10}}


def same_weights(a, b) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(np.asarray(sa[k]).tobytes() == np.asarray(sb[k]).tobytes() for k in sa)


def test_round_trip_weights_optimizer_scheduler_and_metadata(tmp_path):
    model, opt, sched = trained_lenet()
    path = save_checkpoint(tmp_path / "ck", model, opt, sched, architecture=ARCH, classes=list("0123456789"),
                           input_shape=(1, 28, 28), mean=np.array([0.13], np.float32), epoch=3)
    assert path == tmp_path / "ck.safetensors" and (tmp_path / "ck.json").is_file()
    loaded, info = load_checkpoint(path)
    assert type(loaded).__name__ == type(model).__name__ and not loaded.training
    assert same_weights(model, loaded)
    assert info["classes"] == list("0123456789") and info["input_shape"] == [1, 28, 28] and info["epoch"] == 3
    assert info["mean"] == [pytest.approx(0.13)] and info["convlens_version"] == convlens.__version__
    meta = json.loads((tmp_path / "ck.json").read_text())
    assert "exp_avg" not in json.dumps(meta)  # arrays live only in the safetensors file

    # the optimizer and scheduler continue exactly where they were
    _, opt2, sched2 = trained_lenet(steps=0)
    opt2 = optim.Adam(loaded.parameters(), lr=1e-3)
    sched2 = optim.lr_scheduler.StepLR(opt2, step_size=1, gamma=0.5)
    ck.restore_optimizer(info, opt2, sched2)
    a, b = opt.state_dict(), opt2.state_dict()
    assert a["param_groups"] == b["param_groups"]
    for i in a["state"]:
        for k, v in a["state"][i].items():
            w = b["state"][i][k]
            if isinstance(v, np.ndarray):
                assert v.dtype == w.dtype and v.tobytes() == w.tobytes()
            else:
                assert v == w and type(v) is type(w)
    assert sched2.get_last_lr() == sched.get_last_lr() and sched2.last_epoch == sched.last_epoch


def test_arrays_use_the_documented_keys(tmp_path):
    from safetensors.numpy import load_file

    model, opt, _ = trained_lenet(steps=1)
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(convlens.zeros(1, 1, 28, 28)).sum().backward()
    opt.step()
    save_checkpoint(tmp_path / "ck", model, opt, architecture=ARCH)
    keys = set(load_file(str(tmp_path / "ck.safetensors")))
    assert {"model.conv1.weight", "model.fc2.bias", "optim.state.0.momentum_buffer"} <= keys


def test_numpy_scalar_optimizer_state_keeps_its_dtype():
    arrays, meta = ck._split_optimizer({"state": {0: {"step": 3, "beta_pow": np.float32(0.81),
                                                      "buf": np.ones(2, np.float32)}},
                                        "param_groups": [{"lr": 0.1, "params": [0]}]})
    joined = ck._join_optimizer(json.loads(json.dumps(meta)), arrays)
    assert joined["state"][0]["step"] == 3
    assert type(joined["state"][0]["beta_pow"]) is np.float32 and joined["state"][0]["beta_pow"] == np.float32(0.81)


def test_a_model_outside_the_zoo_is_rebuilt_from_its_spec(tmp_path):
    convlens.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 5, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(80, 4))
    save_checkpoint(tmp_path / "spec", model, input_shape=(3, 8, 8))
    loaded, info = load_checkpoint(tmp_path / "spec.json")
    assert "spec" in info["architecture"] and same_weights(model, loaded)
    x = convlens.randn(2, 3, 8, 8)
    np.testing.assert_array_equal(model.eval()(x)._data, loaded(x)._data)


def test_a_model_can_be_loaded_into_an_existing_instance(tmp_path):
    def net(seed):
        convlens.manual_seed(seed)
        return nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(8, 2))

    model = net(0)
    save_checkpoint(tmp_path / "w", model)  # neither a zoo model nor an input shape: weights only
    fresh = net(1)
    assert not same_weights(model, fresh)
    load_checkpoint(tmp_path / "w", model=fresh)
    assert same_weights(model, fresh)
    with pytest.raises(CheckpointError, match="does not say how to rebuild the model"):
        load_checkpoint(tmp_path / "w")
    with pytest.raises(CheckpointError, match=r"w\.safetensors: the weights do not fit the model"):
        load_checkpoint(tmp_path / "w", model=models.get_model("lenet5"))


def test_zoo_models_describe_themselves(tmp_path):
    model, _, _ = trained_lenet()
    save_checkpoint(tmp_path / "z", model)
    loaded, info = load_checkpoint(tmp_path / "z")
    assert info["architecture"]["name"] == "lenet5" and same_weights(model, loaded)


def test_run_directory_prefers_best_then_last(tmp_path):
    model, _, _ = trained_lenet()
    save_checkpoint(tmp_path / "last", model, architecture=ARCH, kind="last")
    assert load_checkpoint(tmp_path)[1]["kind"] == "last"
    save_checkpoint(tmp_path / "best", model, architecture=ARCH, kind="best")
    assert load_checkpoint(tmp_path)[1]["kind"] == "best"
    assert ck.resolve_checkpoint(tmp_path, prefer="last")[0] == tmp_path / "last.safetensors"
    assert ck.resolve_checkpoint(tmp_path / "best")[0] == tmp_path / "best.safetensors"


@pytest.mark.parametrize("make,expected", [
    (lambda d: d / "missing.safetensors", r"missing\.safetensors: no such checkpoint"),
    (lambda d: (d / "empty").mkdir() or d / "empty", r"empty: no checkpoint in this folder"),
    (lambda d: (d / "x.txt").write_text("hi") and d / "x.txt", r"x\.txt: not a checkpoint"),
])
def test_missing_or_wrong_paths_name_the_file(tmp_path, make, expected):
    with pytest.raises(CheckpointError, match=expected):
        load_checkpoint(make(tmp_path))


def test_missing_json_and_corrupt_files_are_reported(tmp_path):
    model, _, _ = trained_lenet(steps=0)
    save_checkpoint(tmp_path / "a", model, architecture=ARCH)
    (tmp_path / "a.json").rename(tmp_path / "a.json.bak")
    with pytest.raises(CheckpointError, match=r"a\.json: missing"):
        load_checkpoint(tmp_path / "a.safetensors")
    (tmp_path / "a.json.bak").rename(tmp_path / "a.json")
    (tmp_path / "a.safetensors").write_bytes(b"\x00garbage" * 10)
    with pytest.raises(CheckpointError, match=r"a\.safetensors"):
        load_checkpoint(tmp_path / "a")
    (tmp_path / "a.json").write_text("{not json")
    with pytest.raises(CheckpointError, match=r"a\.json: not a readable checkpoint JSON"):
        load_checkpoint(tmp_path / "a")
    (tmp_path / "a.json").write_text('{"format": "something-else"}')
    with pytest.raises(CheckpointError, match="not a convlens checkpoint"):
        load_checkpoint(tmp_path / "a")


def test_mismatched_pair_is_detected(tmp_path):
    m1, _, _ = trained_lenet(seed=1)
    m2, _, _ = trained_lenet(seed=2)
    save_checkpoint(tmp_path / "last", m1, architecture=ARCH)
    save_checkpoint(tmp_path / "best", m2, architecture=ARCH)
    os.replace(tmp_path / "best.safetensors", tmp_path / "last.safetensors")  # same size, other save
    with pytest.raises(CheckpointError, match="do not belong together"):
        load_checkpoint(tmp_path / "last")


def _fail_on_call(monkeypatch, target, attr, fail_at: int):
    real = getattr(target, attr)
    calls = {"n": 0}

    def wrapper(*a, **kw):
        calls["n"] += 1
        if calls["n"] == fail_at:
            raise OSError("disk full (simulated)")
        return real(*a, **kw)

    monkeypatch.setattr(target, attr, wrapper)


@pytest.mark.parametrize("where", ["writer", "first_rename", "second_rename"])
def test_a_failed_save_never_yields_a_mixed_pair(tmp_path, monkeypatch, where):
    import safetensors.numpy

    old, _, _ = trained_lenet(seed=1)
    new, _, _ = trained_lenet(seed=2)
    save_checkpoint(tmp_path / "last", old, architecture=ARCH, epoch=1)
    if where == "writer":
        _fail_on_call(monkeypatch, safetensors.numpy, "save_file", 1)
    else:
        _fail_on_call(monkeypatch, os, "replace", 1 if where == "first_rename" else 2)
    with pytest.raises(OSError, match="simulated"):
        save_checkpoint(tmp_path / "last", new, architecture=ARCH, epoch=2)
    monkeypatch.undo()
    if where == "second_rename":
        # the new weights went in, the complete new JSON waits in its temp file: reading finishes the save
        assert len(list(tmp_path.glob(".last.*.json.tmp"))) == 1
        loaded, info = load_checkpoint(tmp_path / "last")
        assert info["epoch"] == 2 and same_weights(loaded, new)
        assert sorted(p.name for p in tmp_path.iterdir()) == ["last.json", "last.safetensors"]
    else:
        assert sorted(p.name for p in tmp_path.iterdir()) == ["last.json", "last.safetensors"]  # no temp files
        loaded, info = load_checkpoint(tmp_path / "last")
        assert info["epoch"] == 1 and same_weights(loaded, old)


def test_metadata_must_be_json(tmp_path):
    model, _, _ = trained_lenet(steps=0)
    with pytest.raises(TypeError, match="info.extra is a object"):
        save_checkpoint(tmp_path / "x", model, architecture=ARCH, extra=object())
    assert not list(tmp_path.iterdir())
