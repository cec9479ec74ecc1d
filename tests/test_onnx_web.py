"""`convlens serve --checkpoint model.onnx`: an ONNX model exported by torch (a ResNet-style net with batch
norm, one input channel) is explained by the web app's HTTP API: the click-a-neuron arithmetic of its conv
and pooling layers equals the engine, the Draw page predicts, and bad requests stay 4xx."""

from __future__ import annotations

import io
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")
pytest.importorskip("starlette")
pytest.importorskip("httpx")

from PIL import Image  # noqa: E402

tnn = torch.nn


class DigitResNet(tnn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = tnn.Conv2d(1, 6, 3, padding=1)
        self.bn1 = tnn.BatchNorm2d(6)
        self.pool1 = tnn.MaxPool2d(2)
        self.conv2 = tnn.Conv2d(6, 6, 3, padding=1, bias=False)
        self.bn2 = tnn.BatchNorm2d(6)
        self.pool2 = tnn.AvgPool2d(2)
        self.fc = tnn.Linear(6 * 7 * 7, 10)

    def forward(self, x):
        x = self.pool1(torch.relu(self.bn1(self.conv1(x))))
        x = torch.relu(self.bn2(self.conv2(x)) + x)  # the skip connection
        return self.fc(torch.flatten(self.pool2(x), 1))


@pytest.fixture(scope="module")
def onnx_path(tmp_path_factory):
    torch.manual_seed(0)
    net = DigitResNet()
    for m in net.modules():
        if isinstance(m, tnn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
    net.eval()
    path = tmp_path_factory.mktemp("onnx") / "digits.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (torch.randn(1, 1, 28, 28),), str(path), dynamo=False, opset_version=17,
                          input_names=["x"], dynamic_axes={"x": {0: "N"}}, do_constant_folding=False)
    return path


@pytest.fixture(scope="module")
def client(onnx_path, tmp_path_factory):
    from starlette.testclient import TestClient

    from convlens.web import create_app

    app = create_app(checkpoint=onnx_path, runs_dir=tmp_path_factory.mktemp("runs"))
    with TestClient(app, base_url="http://127.0.0.1") as c:
        yield c


def _png(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="PNG")
    return buf.getvalue()


def _digit() -> np.ndarray:
    a = np.zeros((28, 28), np.uint8)
    a[5:23, 12:16] = 255
    return a


def test_model_info_and_layers_of_the_imported_net(client):
    r = client.get("/api/model")
    info = r.json()
    assert r.status_code == 200, info
    assert "digits.onnx" in info["label"]
    body = client.post("/api/explain", files={"image": ("d.png", _png(_digit()), "image/png")},
                       data={"prepare": "resize"}).json()
    kinds = {layer["name"]: layer["kind"] for layer in body["layers"]}
    assert kinds["conv1"] == "conv" and kinds["pool1"] == "pool" and kinds["pool2"] == "pool"
    assert any(layer["type"] == "Add" for layer in body["layers"])
    assert any(layer["type"] == "BatchNorm2d" for layer in body["layers"])
    conv = next(layer for layer in body["layers"] if layer["name"] == "conv2")
    assert conv["explainable"] and conv["formula"][0] == "(14 − 3 + 2·1)/1 + 1 = 14"
    assert len(body["output"]["probabilities"]) == 10


def test_conv_and_pool_arithmetic_equal_the_engine(client):
    from convlens.web import explain as X

    body = client.post("/api/explain", files={"image": ("d.png", _png(_digit()), "image/png")},
                       data={"prepare": "resize"}).json()
    web = client.app.state.web
    h = web.handle
    traces = X.trace(h.model, h.normalise(web.inputs.get(body["input_id"])), h.input_shape)
    byname = {t.name: t for t in traces}
    for layer, (c, y, x) in (("conv1", (2, 0, 5)), ("conv1", (5, 13, 14)), ("conv2", (1, 6, 6))):
        d = client.post("/api/explain/conv", json={"input_id": body["input_id"], "layer": layer, "channel": c,
                                                   "y": y, "x": x}).json()
        engine = float(byname[layer].output[c, y, x])
        assert abs(d["sum"] + d["bias"] - engine) <= 1e-5 * max(1.0, abs(engine))
        np.testing.assert_allclose(np.array(d["products"]), np.array(d["patch"]) * np.array(d["kernel"]), rtol=1e-12)
    for layer, pool in (("pool1", "max"), ("pool2", "avg")):
        d = client.post("/api/explain/pool", json={"input_id": body["input_id"], "layer": layer, "channel": 3,
                                                   "y": 2, "x": 3}).json()
        assert d["pool"] == pool and abs(d["value"] - float(byname[layer].output[3, 2, 3])) < 1e-6


def test_draw_page_predicts_and_bad_requests_are_4xx(client):
    import base64

    url = "data:image/png;base64," + base64.b64encode(_png(_digit())).decode()
    r = client.post("/api/predict", json={"image": url})
    assert r.status_code == 200 and len(r.json()["probabilities"]) == 10
    r = client.post("/api/explain/conv", json={"sample": 0, "layer": "nope", "channel": 0, "y": 0, "x": 0})
    assert 400 <= r.status_code < 500
    r = client.post("/api/explain/conv", json={"input_id": "deadbeef", "layer": "conv1", "channel": 0, "y": 0, "x": 0})
    assert 400 <= r.status_code < 500


def test_cli_inspect_and_predict_take_the_onnx_file(onnx_path, tmp_path, capsys):
    from convlens.cli import main

    img = tmp_path / "d.png"
    img.write_bytes(_png(_digit()))
    assert main(["inspect", str(onnx_path), str(img), "--out", str(tmp_path / "maps")]) == 0
    out = capsys.readouterr().out
    assert "conv1" in out and "prediction:" in out
    assert (tmp_path / "maps" / "kernels-conv1.png").is_file()
    assert main(["summary", str(onnx_path)]) == 0
    assert "Add" in capsys.readouterr().out


def test_train_page_fine_tunes_the_imported_net_and_leaves_the_explained_one_alone(client):
    import time

    before = {k: v.numpy().copy() for k, v in client.app.state.web.handle.model.state_dict().items()}
    r = client.post("/api/train/start", json={"model": "loaded", "dataset": "mnist-mini", "epochs": 1, "limit": 256,
                                              "batch_size": 32, "optimizer": "adam", "lr": 0.003, "schedule": "none",
                                              "val_split": 0.25})
    assert r.status_code == 201, r.text
    deadline = time.time() + 120
    while (s := client.get("/api/train/status").json())["state"] not in ("finished", "failed"):
        assert time.time() < deadline, s
        time.sleep(0.05)
    assert s["state"] == "finished", s
    assert s["history"] and np.isfinite(s["history"][-1]["train_loss"])
    job = client.app.state.web.jobs.job
    assert job.label.startswith("loaded: digits.onnx") and "spec" in job.arch  # rebuilt from its graph spec
    trained = job.model.state_dict()
    assert any(not np.array_equal(trained[k].numpy(), v) for k, v in before.items() if v.dtype.kind == "f")
    after = client.app.state.web.handle.model.state_dict()
    assert all(np.array_equal(after[k].numpy(), v) for k, v in before.items())  # the page's model is untouched


def test_fine_tuning_the_loaded_net_on_images_of_another_shape_is_refused(client):
    from convlens.web.images import HTTPError
    from convlens.web.job_setup import build_model

    with pytest.raises(HTTPError, match=r"model 'loaded' \(digits.onnx\) takes 1×28×28 images, but the data set has "
                                        r"3×32×32 images"):
        build_model({"model": "loaded"}, (3, 32, 32), 10, current=client.app.state.web.handle)
    with pytest.raises(HTTPError, match="no model is loaded"):
        build_model({"model": "loaded"}, (1, 28, 28), 10, current=None)
