"""convlens.save / convlens.load: safetensors + JSON, never pickle; PyTorch's .pt files refused clearly."""

from __future__ import annotations

import io
import pickle
import zipfile
from collections import OrderedDict

import numpy as np
import pytest

import convlens
import convlens.nn as nn
from convlens.tensor import Tensor


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4 * 6 * 6, 3)

    def forward(self, x):
        return self.fc(self.bn(self.conv(x)).relu().flatten(1))


def _trained():
    convlens.manual_seed(0)
    net = Net()
    opt = convlens.optim.Adam(net.parameters(), lr=1e-3)
    for _ in range(2):
        opt.zero_grad()
        net(convlens.randn(5, 1, 8, 8)).sum().backward()
        opt.step()
    return net, opt


def test_state_dict_roundtrip_path_and_file_object(tmp_path):
    net, _ = _trained()
    path = tmp_path / "net.pt"
    convlens.save(net.state_dict(), path)
    loaded = convlens.load(path, weights_only=True)
    assert isinstance(loaded, OrderedDict) and list(loaded) == list(net.state_dict())
    for k, v in net.state_dict().items():
        assert isinstance(loaded[k], Tensor) and loaded[k].dtype == v.dtype and loaded[k].shape == v.shape
        np.testing.assert_array_equal(loaded[k]._data, v._data)
    assert loaded["bn.num_batches_tracked"].shape == ()  # 0-d stays 0-d
    fresh = Net()
    fresh.load_state_dict(loaded)
    x = convlens.randn(2, 1, 8, 8)
    net.eval(), fresh.eval()
    np.testing.assert_array_equal(fresh(x)._data, net(x)._data)
    buf = io.BytesIO()
    convlens.save(net.state_dict(), buf)
    buf.seek(0)
    assert list(convlens.load(buf, map_location="cpu")) == list(loaded)
    assert not list(tmp_path.glob(".*part"))  # written through a temp file, renamed into place


def test_optimizer_state_and_nested_structures():
    net, opt = _trained()
    shared = convlens.tensor([1.0, 2.0])
    obj = {
        "epoch": 7, "loss": 0.25, "nan": float("nan"), "name": "run", "none": None, "flag": True,
        "optimizer": opt.state_dict(), "pair": (shared, shared), "lists": [[1, 2], {"a": np.arange(3)}],
        "np": np.float32(1.5), "int_keys": {3: "x", -1: [None]}, "tuple_key": {(1, 2): "t"},
        "__dunder": 1, "param": nn.Parameter(convlens.ones(2)),
    }
    buf = io.BytesIO()
    convlens.save(obj, buf)
    back = convlens.load(io.BytesIO(buf.getvalue()))
    assert back["epoch"] == 7 and back["loss"] == 0.25 and np.isnan(back["nan"]) and back["none"] is None
    assert back["flag"] is True and back["name"] == "run" and back["__dunder"] == 1
    assert back["int_keys"] == {3: "x", -1: [None]} and back["tuple_key"] == {(1, 2): "t"}
    assert isinstance(back["pair"], tuple) and back["pair"][0] is back["pair"][1]  # stored once
    assert back["np"] == np.float32(1.5) and back["np"].dtype == np.float32
    np.testing.assert_array_equal(back["lists"][1]["a"], np.arange(3))
    assert isinstance(back["param"], nn.Parameter) and back["param"].requires_grad
    sd = opt.state_dict()
    assert set(back["optimizer"]["state"]) == set(sd["state"]) and all(isinstance(k, int) for k in back["optimizer"]["state"])
    assert back["optimizer"]["param_groups"] == sd["param_groups"]
    for i, entries in sd["state"].items():
        for k, v in entries.items():
            np.testing.assert_array_equal(np.asarray(getattr(back["optimizer"]["state"][i][k], "_data",
                                                             back["optimizer"]["state"][i][k])),
                                          np.asarray(getattr(v, "_data", v)))
    fresh_net, _ = _trained()
    fresh = convlens.optim.Adam(fresh_net.parameters(), lr=1e-3)
    fresh.load_state_dict(back["optimizer"])


def test_what_cannot_be_saved_is_named():
    with pytest.raises(TypeError, match=r"cannot store a Net at model.*state_dict\(\)"):
        convlens.save({"model": Net()}, io.BytesIO())
    with pytest.raises(TypeError, match="dtype <U1"):
        convlens.save({"a": np.array(["x"])}, io.BytesIO())
    with pytest.raises(ValueError, match="never pickles"):
        convlens.save({}, io.BytesIO(), pickle_module=pickle)


def test_pytorch_pickles_are_refused_without_unpickling(tmp_path):
    ran = []

    class Evil:
        def __reduce__(self):
            return (ran.append, ("unpickled!",))

    legacy = tmp_path / "legacy.pt"
    legacy.write_bytes(pickle.dumps(Evil(), protocol=2))
    with pytest.raises(ValueError, match=r"legacy.pt: a pickle .*never unpickles.*safetensors.torch import save_file"):
        convlens.load(legacy)
    zipped = tmp_path / "new.pt"
    with zipfile.ZipFile(zipped, "w") as z:
        z.writestr("archive/data.pkl", pickle.dumps(Evil()))
        z.writestr("archive/version", "3\n")
    with pytest.raises(ValueError, match=r"zip archive holding archive/data.pkl, a pickle.*Convert it"):
        convlens.load(zipped)
    assert ran == []


def test_real_torch_files(tmp_path):
    torch = pytest.importorskip("torch")
    from safetensors.torch import load_file, save_file

    tnet = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.Flatten(), torch.nn.Linear(2 * 4 * 4, 3))
    torch.save(tnet.state_dict(), tmp_path / "model.pt")
    with pytest.raises(ValueError, match=r"model.pt: a PyTorch file written by torch.save"):
        convlens.load(tmp_path / "model.pt")
    # the conversion the message describes, then into a convlens twin: same outputs
    save_file(torch.load(tmp_path / "model.pt", weights_only=True), tmp_path / "model.safetensors")
    cnet = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(2 * 4 * 4, 3))
    cnet.load_state_dict(convlens.load(tmp_path / "model.safetensors"))
    x = np.random.default_rng(0).random((2, 1, 6, 6), dtype=np.float32)
    with torch.no_grad():
        ref = tnet(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(cnet(convlens.tensor(x))._data, ref, rtol=1e-5, atol=1e-6)
    # and back: a state_dict saved by convlens is a safetensors file torch reads directly
    convlens.save(cnet.state_dict(), tmp_path / "from_convlens.pt")
    tnet2 = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.Flatten(), torch.nn.Linear(2 * 4 * 4, 3))
    tnet2.load_state_dict(load_file(tmp_path / "from_convlens.pt"))
    with torch.no_grad():
        np.testing.assert_allclose(tnet2(torch.from_numpy(x)).numpy(), ref, rtol=1e-6)


def test_bad_files_and_arguments(tmp_path):
    (tmp_path / "text.pt").write_text("hello, not a tensor file")
    with pytest.raises(ValueError, match="not a convlens.save / safetensors file"):
        convlens.load(tmp_path / "text.pt")
    (tmp_path / "short").write_bytes(b"\x01")
    with pytest.raises(ValueError, match="1 bytes"):
        convlens.load(tmp_path / "short")
    buf = io.BytesIO()
    convlens.save({"w": convlens.ones(100)}, buf)
    (tmp_path / "cut").write_bytes(buf.getvalue()[:-10])
    with pytest.raises(ValueError, match="cut: not a readable safetensors file"):
        convlens.load(tmp_path / "cut")
    with pytest.raises(FileNotFoundError, match="no such file"):
        convlens.load(tmp_path / "missing.pt")
    with pytest.raises(RuntimeError, match="CPU only"):
        convlens.load(io.BytesIO(buf.getvalue()), map_location="cuda:0")
    convlens.load(io.BytesIO(buf.getvalue()), map_location={"cuda:0": "cpu"}, weights_only=False)
    with open(tmp_path / "text.pt") as f, pytest.raises(TypeError, match="text mode"):
        convlens.load(f)
