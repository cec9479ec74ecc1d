"""PyTorch weights both ways (safetensors, never pickle) and the export/convert commands."""

from __future__ import annotations

import json
from collections import OrderedDict

import numpy as np
import pytest

import convlens as cl
from convlens import models
from convlens.cli import main
from convlens.torch_weights import WeightsError, load_torch_weights, read_state_dict, save_torch_weights


def _torch_twin(model, torch):
    """The same Sequential in torch.nn, module for module (spec models use torch's classes and names)."""
    tnn = torch.nn
    layers = OrderedDict()
    for name, m in model.named_children():
        cls = type(m).__name__
        if cls.startswith("Conv"):
            layers[name] = tnn.Conv2d(m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding,
                                      m.dilation, m.groups, m.bias is not None, m.padding_mode)
        elif cls == "BatchNorm2d":
            layers[name] = tnn.BatchNorm2d(m.num_features, m.eps, m.momentum)
        elif cls in ("MaxPool2d", "AvgPool2d"):
            layers[name] = getattr(tnn, cls)(m.kernel_size, m.stride, m.padding)
        elif cls == "AdaptiveAvgPool2d":
            layers[name] = tnn.AdaptiveAvgPool2d(m.output_size)
        elif cls == "Linear":
            layers[name] = tnn.Linear(m.in_features, m.out_features, m.bias is not None)
        elif cls == "Dropout":
            layers[name] = tnn.Dropout(m.p)
        else:
            layers[name] = getattr(tnn, cls)()
    return tnn.Sequential(layers)


def _train_a_little(model, shape, steps=2):
    model.train()
    opt = cl.optim.SGD(model.parameters(), lr=0.01)
    g = np.random.default_rng(0)
    for _ in range(steps):
        x = cl.tensor(g.standard_normal((4, *shape)).astype(np.float32))
        opt.zero_grad()
        cl.nn.functional.cross_entropy(model(x), cl.tensor(np.arange(4) % 10)).backward()
        opt.step()
    return model.eval()


def test_convlens_weights_load_into_torch_as_is(tmp_path):
    torch = pytest.importorskip("torch")
    from safetensors.torch import load_file

    model = _train_a_little(models.get_model("cifar-bn", input_shape=(3, 16, 16)), (3, 16, 16))
    path = save_torch_weights(model, tmp_path / "cifar_bn.safetensors")
    state = load_file(str(path))
    assert state["bn1_1.num_batches_tracked"].dtype == torch.int64 and state["bn1_1.num_batches_tracked"].shape == ()
    assert int(state["bn1_1.num_batches_tracked"]) == 2
    twin = _torch_twin(model, torch)
    twin.load_state_dict(state, strict=True)
    twin.eval()
    x = np.random.default_rng(1).standard_normal((2, 3, 16, 16)).astype(np.float32)
    with torch.no_grad():
        want = twin(torch.from_numpy(x)).numpy()
    with cl.no_grad():
        got = model(cl.tensor(x)).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_convert_torch_state_dict_to_a_checkpoint(tmp_path):
    torch = pytest.importorskip("torch")
    from safetensors.torch import save_file

    shape = (1, 28, 28)
    template = models.get_model("lenet5")
    torch.manual_seed(0)
    twin = _torch_twin(template, torch).eval()
    src = tmp_path / "lenet.safetensors"
    save_file(twin.state_dict(), str(src))
    out = tmp_path / "converted"
    assert main(["convert", str(src), "--model", "lenet5", "--classes", ",".join("0123456789"), "-o", str(out)]) == 0
    from convlens.checkpoint import load_checkpoint

    model, info = load_checkpoint(out)
    assert info["classes"] == list("0123456789") and info["input_shape"] == list(shape)
    x = np.random.default_rng(2).standard_normal((3, *shape)).astype(np.float32)
    with torch.no_grad():
        want = twin(torch.from_numpy(x)).numpy()
    with cl.no_grad():
        np.testing.assert_allclose(model(cl.tensor(x)).numpy(), want, rtol=1e-4, atol=1e-5)


def test_weights_that_do_not_fit_name_the_keys(tmp_path, capsys):
    from safetensors.numpy import save_file

    model = models.get_model("lenet5")
    state = {k: np.asarray(v._data) for k, v in model.state_dict().items()}
    state["conv1.weight"] = np.zeros((6, 1, 3, 3), np.float32)
    state.pop("fc2.bias")
    state["extra.weight"] = np.zeros(3, np.float32)
    path = tmp_path / "bad.safetensors"
    save_file(state, str(path))
    with pytest.raises(WeightsError) as e:
        load_torch_weights(models.get_model("lenet5"), path)
    msg = str(e.value)
    assert "missing keys fc2.bias" in msg and "unexpected keys extra.weight" in msg
    assert "conv1.weight (6, 1, 3, 3) in the file, (6, 1, 5, 5) in the model" in msg and "\n" not in msg
    assert main(["convert", str(path), "--model", "lenet5", "-o", str(tmp_path / "x")]) == 1
    assert "missing keys fc2.bias" in capsys.readouterr().err
    (tmp_path / "model.pt").write_bytes(b"\x80\x02pickle")
    with pytest.raises(WeightsError, match="never unpickles"):
        read_state_dict(tmp_path / "model.pt")


def test_export_command_from_a_run_directory(tmp_path, capsys):
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from convlens.checkpoint import load_checkpoint, save_checkpoint

    model = _train_a_little(models.get_model("resnet20", input_shape=(3, 16, 16)), (3, 16, 16), steps=1)
    run = tmp_path / "run"
    save_checkpoint(run / "last", model, input_shape=[3, 16, 16], classes=[f"c{i}" for i in range(10)])
    onnx_file = tmp_path / "model.onnx"
    assert main(["export", str(run), "--format", "onnx", "-o", str(onnx_file), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["opset"] == 17 and summary["input_shape"] == [3, 16, 16]
    back, _ = load_checkpoint(run)
    x = np.random.default_rng(3).standard_normal((5, 3, 16, 16)).astype(np.float32)
    with cl.no_grad():
        want = back(cl.tensor(x)).numpy()
    got = ort.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    import convlens.onnx as cx

    assert cx.load_with_info(onnx_file)[1]["classes"] == [f"c{i}" for i in range(10)]
    st = tmp_path / "w.safetensors"
    assert main(["export", str(run), "--format", "safetensors", "-o", str(st)]) == 0
    assert set(read_state_dict(st)) == set(model.state_dict())
    assert main(["export", "lenet5", "-o", str(tmp_path / "lenet.onnx")]) == 0
    assert main(["export", "lenet5", "-o", str(tmp_path / "lenet.txt")]) == 1
