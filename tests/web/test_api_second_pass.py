"""The web app's second pass (issue 18): bad inputs answered 4xx, strict JSON (never NaN), Origin: null,
the HTML 404 page, shipped checkpoints (a CIFAR-10 one written here), model / data set mismatches,
data sets loaded in the background, the fully connected and 1×1 explanations, receptive fields, the
shift demo, live hyper-parameters, weights and gradients, checkpoint upload and sample paging."""

from __future__ import annotations

import json
import re
import tarfile
import time

import numpy as np
import pytest

from tests.web.conftest import tiny_dataset
from tests.web.conftest import wait_state as _wait_state

CIFAR_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def has_nonfinite_constant(text: str) -> bool:
    """A NaN or Infinity where a JSON value goes (not `"NaN" in text`: responses carry base64 images,
    where "NaN" is an ordinary substring)."""
    return re.search(r"[:\[,]\s*-?(NaN|Infinity)\b", text) is not None


def strict(text: str):
    """Parse JSON the way a browser does: NaN / Infinity are errors."""
    def bad(name):
        raise ValueError(f"non-standard JSON constant {name}")

    return json.loads(text, parse_constant=bad)


def wait_state(client, states, timeout=60):  # these jobs train longer than test_api.py's
    return _wait_state(client, states, timeout)


def cifar_like(n: int, seed: int):
    """3×32×32 colour images of 10 classes (class k: a bright patch in colour channel k % 3, row band k)."""
    from convlens.data import TensorDataset

    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 10
    images = rng.integers(0, 60, size=(n, 3, 32, 32)).astype(np.uint8)
    for k in range(10):
        images[labels == k, k % 3, 2 + 3 * k: 5 + 3 * k, 4:28] = 220
    return TensorDataset(images, labels, classes=CIFAR_CLASSES, name="cifar-like")


def write_cifar_checkpoint(folder):
    """A small 3×32×32 → 10 network saved in the shipped run-directory format (best.safetensors + best.json)."""
    import convlens
    from convlens import models
    from convlens.checkpoint import save_checkpoint

    convlens.manual_seed(0)
    spec = {"layers": [{"type": "conv", "name": "conv1", "filters": 4, "size": 3, "pad": 1, "activation": "relu"},
                       {"type": "pool", "name": "pool1", "size": 2, "kind": "max"},
                       {"type": "fc", "name": "fc", "units": 10}]}
    model = models.from_spec(spec, input_shape=(3, 32, 32))
    return save_checkpoint(folder / "best", model, architecture={"spec": models.to_spec(model, (3, 32, 32))},
                           dataset="cifar10", classes=CIFAR_CLASSES, input_shape=[3, 32, 32], mean=[0.45] * 3,
                           std=[0.25] * 3, test_accuracy=0.5, model_name="convnetjs-cifar10")


# ---- bad inputs: 4xx with a message, never 500 ------------------------------------------------------------
@pytest.mark.parametrize("path,raw,status,words", [
    ("/api/explain", "[" * 100_000, 400, "nested"),
    ("/api/explain/conv", '{"a":' * 20_000 + "1" + "}" * 20_000, 400, "nested"),
    ("/api/explain/conv", '{"a":' * 300_000, 413, "too large"),
    ("/api/explain", '{"sample": 1e400}', 400, "out of range"),
    ("/api/explain", '{"sample": NaN}', 400, "NaN"),
    ("/api/explain", '{"sample": -Infinity}', 400, "Infinity"),
    ("/api/explain", '{"sample": 1' + "0" * 400 + "}", 422, "sample"),
    ("/api/explain/conv", '{"sample": 0, "layer": "conv1", "channel": 1e300, "y": 0, "x": 0}', 422, "channel"),
    ("/api/playground", '{"kernel": [[1e39, 0], [0, 1]]}', 422, "float32"),
    ("/api/playground", '{"kernel": "[[1e39, 0], [0, 1]]"}', 422, "float32"),
    ("/api/playground", '{"kernel": [[3e38, 3e38], [3e38, 3e38]]}', 422, "overflows"),
    ("/api/playground", '{"kernel": "' + "[" * 5000 + '"}', 422, "kernel"),
    ("/api/train/start", '{"epochs": 1e400}', 400, "out of range"),
    ("/api/train/start", '{"spec": "' + "[" * 20 + '", "model": "spec", "dataset": "tiny"}', 422, "spec"),
])
def test_bad_inputs_answer_4xx(client, path, raw, status, words):
    r = client.post(path, content=raw, headers={"content-type": "application/json"})
    assert r.status_code == status, r.text
    assert words in r.json()["error"], r.text


def test_origin_null_is_refused(client):
    r = client.post("/api/train/stop", headers={"origin": "null"})
    assert r.status_code == 403 and "Origin: null" in r.json()["error"]
    r = client.post("/api/model/reset", headers={"origin": "null"}, json={})
    assert r.status_code == 403
    assert client.get("/api/model", headers={"origin": "null"}).status_code == 200  # reading is harmless


def test_nan_weights_give_strict_json(client):
    """A model with NaN weights (a diverged run handed to Explain) answers valid JSON: null, not NaN."""
    web = client.app.state.web
    h = web.handle
    for p in h.model.parameters():
        p._data[...] = np.nan
    try:
        for path, body in (("/api/explain", {"sample": 0}), ("/api/explain/conv", None), ("/api/explain/fc", None)):
            if body is None:
                iid = client.post("/api/explain", json={"sample": 0}).json()["input_id"]
                body = ({"input_id": iid, "layer": "conv1", "channel": 0, "y": 3, "x": 3} if path.endswith("conv")
                        else {"input_id": iid, "layer": "fc2", "unit": 1})
            r = client.post(path, json=body)
            assert r.status_code == 200, r.text
            data = strict(r.text)
            assert not has_nonfinite_constant(r.text)
            if path == "/api/explain":
                assert data["output"]["logits"][0] is None
            else:
                assert data["value"] is None and data["engine"] is None
    finally:
        web.reset_model()
        web._checkpoint_handle = type(h).from_checkpoint(web.checkpoint)
        web.reset_model()


def test_diverging_run_streams_strict_json(client):
    r = client.post("/api/train/start", json={"dataset": "tiny", "epochs": 3, "optimizer": "sgd", "lr": 1e6,
                                              "schedule": "none", "val_split": 0, "normalize": False})
    assert r.status_code == 201
    wait_state(client, ("failed", "finished"))
    with client.stream("GET", "/api/train/events") as s:
        text = "".join(s.iter_text())
    datas = [line[6:] for line in text.splitlines() if line.startswith("data: ")]
    assert len(datas) >= 3
    for d in datas:
        strict(d)  # every event parses in a browser: a NaN or Infinity constant is an error there
    assert not has_nonfinite_constant(text)
    assert client.get("/api/train/status").json()["state"] == "failed"


def test_unknown_page_is_an_html_404(client):
    r = client.get("/no/such/page", headers={"accept": "text/html,application/xhtml+xml"})
    assert r.status_code == 404 and r.headers["content-type"].startswith("text/html")
    assert "Page not found" in r.text and 'href="/train"' in r.text
    r = client.get("/api/nothing", headers={"accept": "text/html"})
    assert r.status_code == 404 and r.json()["error"] == "not found: /api/nothing"
    assert client.get("/no/such/page").json()["error"].startswith("not found")


def test_page_registry_builds_the_navigation(client):
    from html import escape

    from convlens.web.app import PAGES

    html = client.get("/").text
    for path, page in PAGES.items():
        assert client.get(path).status_code == 200
        if path != "/":
            label = page[3] if len(page) > 3 else page[1]
            assert f'<a href="{path}">{escape(label)}</a>' in html
    assert "shift.js" in client.get("/shift").text


# ---- shipped checkpoints, CIFAR-10, mismatches ------------------------------------------------------------
@pytest.fixture
def cifar_client(make_app, tmp_path, tiny):
    from starlette.testclient import TestClient

    assets = tmp_path / "assets"
    write_cifar_checkpoint(assets / "convnetjs-cifar10")
    (assets / "not-a-checkpoint").mkdir()
    test = cifar_like(30, 1)
    order = np.argsort(test.labels, kind="stable")  # stored class by class, as CIFAR-10's folders are
    test = type(test)(test.images[order], test.labels[order], classes=CIFAR_CLASSES)
    app = make_app(assets=assets, data={"tiny": tiny, "cifar10": (cifar_like(60, 0), test)})
    with TestClient(app, base_url="http://127.0.0.1") as c:
        yield c
        job = app.state.web.jobs.job
        if job is not None and not job.terminal:
            job.control.stop()
            job.join(10)


def test_shipped_cifar_checkpoint_is_offered_and_used(cifar_client):
    c = cifar_client
    cks = c.get("/api/checkpoints").json()
    assert [k["name"] for k in cks["checkpoints"]] == ["convnetjs-cifar10"]
    assert cks["checkpoints"][0]["dataset"] == "cifar10" and cks["checkpoints"][0]["active"] is False
    assert c.post("/api/model/use", json={"checkpoint": "nope"}).status_code == 422
    r = c.post("/api/model/use", json={"checkpoint": "convnetjs-cifar10"})
    assert r.status_code == 200 and r.json()["model"].startswith("convnetjs-cifar10/")
    m = c.get("/api/model").json()
    assert m["input_shape"] == [3, 32, 32] and m["classes"] == CIFAR_CLASSES and m["source"] == "shipped"
    assert m["digit_model"] is False and m["samples"] == "cifar10"
    s = c.get("/api/samples?count=12").json()
    assert s["dataset"] == "cifar10" and s["part"] == "test" and s["total"] == 30 and len(s["samples"]) == 12
    # the classes take turns on a page, though the data set is stored class by class
    assert [x["label"] for x in s["samples"]] == CIFAR_CLASSES + CIFAR_CLASSES[:2]
    assert sorted(x["index"] for x in c.get("/api/samples?count=200").json()["samples"]) == list(range(30))
    e = c.post("/api/explain", json={"sample": 3}).json()
    assert e["input"]["shape"] == [3, 32, 32] and len(e["output"]["probabilities"]) == 10
    assert c.post("/api/shift", json={"sample": 3, "dx": 2, "dy": 0}).status_code == 200
    assert c.get("/api/checkpoints").json()["checkpoints"][0]["active"] is True
    r = c.post("/api/model/reset", json={})
    assert r.status_code == 200 and "lenet5-mnist-mini" in r.json()["model"]
    assert c.get("/api/model").json()["input_shape"] == [1, 28, 28]


def test_shipped_checkpoints_scan(tmp_path):
    from convlens.web.state import shipped_checkpoints

    assert "lenet5-mnist-mini" in shipped_checkpoints()  # the package's own
    write_cifar_checkpoint(tmp_path / "convnetjs-cifar10")
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "best.safetensors").write_bytes(b"x")  # no best.json: not offered
    assert list(shipped_checkpoints(tmp_path)) == ["convnetjs-cifar10"]
    assert shipped_checkpoints(tmp_path / "missing") == {}


@pytest.mark.parametrize("model,dataset,words", [
    ("convnetjs-cifar10", "tiny", "takes 3×32×32 images (3 channels), but data set tiny has 1×28×28"),
    ("lenet5", "cifar10", "takes 1×28×28 images (1 channel), but data set cifar10 has 3×32×32"),
])
def test_model_that_does_not_fit_the_data_is_refused(cifar_client, model, dataset, words):
    r = cifar_client.post("/api/train/start", json={"model": model, "dataset": dataset, "epochs": 1})
    assert r.status_code == 422 and words in r.json()["error"], r.text
    assert "pick a model made for" in r.json()["error"]
    assert cifar_client.get("/api/train/status").json()["state"] == "idle"


def test_cifar_model_trains_on_cifar_data(cifar_client):
    r = cifar_client.post("/api/train/start", json={"model": "convnetjs-cifar10", "dataset": "cifar10", "epochs": 1,
                                                    "batch_size": 16, "val_split": 0.2, "optimizer": "adam",
                                                    "lr": 0.001, "schedule": "none", "augment": ""})
    assert r.status_code == 201, r.text
    s = wait_state(cifar_client, ("finished", "failed"), timeout=120)
    assert s["state"] == "finished" and s["input_shape"] == [3, 32, 32]


# ---- data sets found on disk and loaded in the background ---------------------------------------------------
def write_image_folder(root, parts=("train", "test"), n=3):
    from PIL import Image

    rng = np.random.default_rng(0)
    for part in parts:
        for cls in ("cat", "dog"):
            d = root / part / cls
            d.mkdir(parents=True)
            for i in range(n):
                Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(d / f"{i}.png")
    return root


def wait_loaded(client, name, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        d = next(x for x in client.get("/api/datasets").json()["datasets"] if x["name"] == name)
        if d["state"] in ("ready", "failed"):
            return d
        assert d["state"] == "loading" and d["phase"] and d["seconds"] >= 0
        time.sleep(0.05)
    raise AssertionError(f"{name} did not load")


def test_archive_data_set_keeps_its_test_part(make_app, tmp_path, monkeypatch):
    from starlette.testclient import TestClient

    monkeypatch.setenv("CONVLENS_DATA", str(tmp_path / "cache"))
    folder = write_image_folder(tmp_path / "pets", n=4)
    (tmp_path / "pets" / "test" / "cat" / "3.png").unlink()  # 7 test images, 8 training images
    archive = tmp_path / "pets.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        tf.add(folder, arcname="pets")
    flat = write_image_folder(tmp_path / "flat", parts=("",), n=2)
    app = make_app(data={"pets": str(archive), "flat": str(flat)})
    with TestClient(app, base_url="http://127.0.0.1") as c:
        d = next(x for x in c.get("/api/datasets").json()["datasets"] if x["name"] == "pets")
        assert d["state"] == "unloaded"
        r = c.post("/api/datasets/load", json={"name": "pets"})
        assert r.status_code in (200, 202) and r.json()["state"] in ("loading", "ready")
        d = wait_loaded(c, "pets")
        assert d["state"] == "ready" and d["train"] == 8 and d["test"] == 7 and d["test_part"] == "test"
        c.post("/api/datasets/load", json={"name": "flat"})
        d = wait_loaded(c, "flat")
        assert d["train"] == 4 and d["test_part"] == "train"  # no test/: the training images stand in, and say so
        assert c.post("/api/datasets/load", json={"name": "nope"}).status_code == 422


def test_start_while_the_data_set_loads_says_so(make_app, monkeypatch, tiny):
    import threading

    from starlette.testclient import TestClient

    from convlens.web.state import DataRegistry

    gate = threading.Event()
    original = DataRegistry._load

    def slow(name, source, phase=lambda text: None):
        if name == "slow":
            phase("decoding the training images")
            gate.wait(20)
            return tiny[0], tiny[1], True
        return original(name, source, phase)

    monkeypatch.setattr(DataRegistry, "_load", staticmethod(slow))
    app = make_app(data={"tiny": tiny, "slow": "/not/read/here"})
    with TestClient(app, base_url="http://127.0.0.1") as c:
        r = c.post("/api/train/start", json={"dataset": "slow", "epochs": 1})
        assert r.status_code == 409 and "still loading (decoding the training images" in r.json()["error"]
        gate.set()
        assert wait_loaded(c, "slow")["state"] == "ready"
        r = c.post("/api/train/start", json={"dataset": "slow", "epochs": 1, "batch_size": 32, "val_split": 0.25})
        assert r.status_code == 201, r.text
        wait_state(c, ("finished", "failed"))


def test_discover_datasets(tmp_path):
    from convlens.web.state import discover_datasets

    (tmp_path / "a" / "mnist").mkdir(parents=True)
    (tmp_path / "a" / "mnist" / "train-images-idx3-ubyte.gz").write_bytes(b"")
    (tmp_path / "a" / "cifar10-jpeg.tar.gz").write_bytes(b"")
    (tmp_path / "b" / "cifar-10-batches-bin").mkdir(parents=True)
    (tmp_path / "b" / "cifar-10-batches-bin" / "data_batch_1.bin").write_bytes(b"")
    found = discover_datasets([tmp_path / "missing", tmp_path / "b", tmp_path / "a"])
    assert found == {"mnist": str(tmp_path / "a" / "mnist"), "cifar10": str(tmp_path / "b" / "cifar-10-batches-bin")}
    assert discover_datasets([]) == {}


# ---- explanations: fully connected, 1×1 convolutions, receptive fields ----------------------------------------
def _traces(client, index=0):
    from convlens.data import load
    from convlens.web import explain as X

    h = client.app.state.web.handle
    pixels = load("mnist-mini", train=False).images[index]
    return h, pixels, X.trace(h.model, h.normalise(pixels), h.input_shape)


@pytest.mark.parametrize("layer,unit", [("fc1", 0), ("fc1", 83), ("fc2", 7)])
def test_fc_unit_is_a_dot_product_plus_bias(client, layer, unit):
    iid = client.post("/api/explain", json={"sample": 4}).json()["input_id"]
    d = client.post("/api/explain/fc", json={"input_id": iid, "layer": layer, "unit": unit}).json()
    h, _, traces = _traces(client, 4)
    t = next(t for t in traces if t.name == layer)
    x = t.input.astype(np.float64).reshape(-1)
    w = t.module.weight._data[unit].astype(np.float64)
    b = float(t.module.bias._data[unit])
    assert d["value"] == pytest.approx(float(x @ w) + b, rel=1e-9, abs=1e-9)
    assert d["value"] == pytest.approx(float(t.output[unit]), rel=1e-5, abs=1e-5)
    assert d["engine"] == pytest.approx(float(t.output[unit]), rel=1e-7)
    assert d["positive"] + d["negative"] == pytest.approx(d["sum"], rel=1e-9, abs=1e-12)
    assert len(d["x"]) == t.input.size and abs(d["top"][0]["product"]) >= abs(d["top"][-1]["product"])
    if layer == "fc2":
        assert d["softmax"]["probabilities"][unit] == pytest.approx(
            float(np.exp(t.output[unit] - t.output.max()) / np.exp(t.output - t.output.max()).sum()), rel=1e-6)
        assert d["activation"] is None
    else:
        assert d["activation"]["type"] == "ReLU" and d["activation"]["value"] == max(0.0, d["value"])


def test_fc_errors(client):
    iid = client.post("/api/explain", json={"sample": 0}).json()["input_id"]
    for body, words in (({"layer": "fc1", "unit": 84}, "0..83"), ({"layer": "conv1", "unit": 0}, "not a fully connected"),
                        ({"layer": "fc1"}, "unit is required"), ({"unit": 0}, "layer is required")):
        r = client.post("/api/explain/fc", json={"input_id": iid, **body})
        assert r.status_code == 422 and words in r.json()["error"], r.text


def test_one_by_one_conv_is_explained(client):
    """LeNet-5's conv3 gives 120 maps of 1×1: each is a 16×5×5 patch ⊙ kernel + bias."""
    iid = client.post("/api/explain", json={"sample": 2}).json()["input_id"]
    d = client.post("/api/explain/conv", json={"input_id": iid, "layer": "conv3", "channel": 17, "y": 0, "x": 0}).json()
    _, _, traces = _traces(client, 2)
    t = next(t for t in traces if t.name == "conv3")
    assert d["value"] == pytest.approx(float(t.output[17, 0, 0]), rel=1e-5, abs=1e-6)
    assert len(d["patch"]) == 16 and d["receptive_field"]["rows"] == [0, 27]


@pytest.mark.parametrize("layer,channel,y,x", [("conv1", 2, 0, 0), ("conv1", 0, 13, 20), ("pool1", 3, 4, 9),
                                               ("conv2", 5, 6, 2), ("pool2", 1, 2, 3)])
def test_receptive_field_is_exactly_what_the_value_depends_on(client, layer, channel, y, x):
    """Change every input pixel outside the field: the value stays; change one inside: it moves."""
    from convlens.web import explain as X

    iid = client.post("/api/explain", json={"sample": 1}).json()["input_id"]
    kind = "pool" if layer.startswith("pool") else "conv"
    d = client.post(f"/api/explain/{kind}", json={"input_id": iid, "layer": layer, "channel": channel, "y": y, "x": x}).json()
    rf = d["receptive_field"]
    (r0, r1), (c0, c1) = rf["rows"], rf["cols"]
    h, pixels, traces = _traces(client, 1)
    value = float(next(t for t in traces if t.name == layer).output[channel, y, x])
    outside = pixels.copy()
    mask = np.ones(outside.shape[1:], bool)
    mask[r0:r1 + 1, c0:c1 + 1] = False
    outside[0][mask] = 255 - outside[0][mask]
    moved = X.trace(h.model, h.normalise(outside), h.input_shape)
    assert float(next(t for t in moved if t.name == layer).output[channel, y, x]) == pytest.approx(value, abs=1e-6)
    if layer == "conv1":
        assert rf["size"] == [5, 5]
    inside = pixels.copy()
    inside[0, r0:r1 + 1, c0:c1 + 1] = 255 - inside[0, r0:r1 + 1, c0:c1 + 1]
    moved = X.trace(h.model, h.normalise(inside), h.input_shape)
    assert float(next(t for t in moved if t.name == layer).output[channel, y, x]) != pytest.approx(value, abs=1e-6)


# ---- the shift demo -----------------------------------------------------------------------------------------
def test_shift_demo_measures_equivariance_and_invariance(client):
    r = client.post("/api/shift", json={"sample": 0, "dx": 4, "dy": 0})
    assert r.status_code == 200
    d = r.json()
    by = {entry["name"]: entry for entry in d["layers"]}
    conv1 = by["conv1"]
    assert conv1["stride"] == [1, 1] and conv1["exact"] is True
    assert conv1["moved_error"] < 1e-5  # the conv's maps moved with the input, exactly
    assert conv1["in_place_change"] > 0.3  # ... and are far from where they were
    assert by["pool2"]["stride"] == [4, 4] and by["pool2"]["map_shift"] == [0.0, 1.0]
    assert by["conv3"]["in_place_change"] < conv1["in_place_change"]
    assert 0 <= d["probability_change"] <= 1
    small = client.post("/api/shift", json={"sample": 0, "dx": 1, "dy": -1}).json()
    assert small["original"]["label"] == small["shifted"]["label"]  # a 1-pixel move keeps the prediction
    assert small["layers"][0]["exact"] is True and small["layers"][0]["moved_error"] < 1e-5
    zero = client.post("/api/shift", json={"sample": 0, "dx": 0, "dy": 0}).json()
    assert all(entry["moved_error"] in (0, None) and entry["in_place_change"] == 0 for entry in zero["layers"])
    # conv2 (total stride 2, so a 4-pixel move is 2 cells) is still exactly equivariant where its field
    # stays inside the image; conv3's 1×1 output sees the whole image: nothing to compare
    assert by["conv2"]["exact"] and by["conv2"]["compared"][1] > 0 and by["conv2"]["moved_error"] < 1e-5
    assert by["conv3"]["moved_error"] is None and by["conv3"]["compared"] == [0, 0]
    for body in ({"sample": 0, "dx": 9}, {"sample": 0, "dy": -9}, {"dx": 1}, {"sample": 0, "dx": "a"}):
        assert client.post("/api/shift", json=body).status_code == 422


# ---- training: live hyper-parameters, weights and gradients, the prediction grid, smooth curves ----------------
def test_live_hyper_parameters_and_params(client):
    r = client.post("/api/train/start", json={"dataset": "tiny", "epochs": 200, "batch_size": 8, "val_split": 0.25,
                                              "optimizer": "sgd", "lr": 0.01, "momentum": 0.9, "schedule": "cosine"})
    assert r.status_code == 201
    assert client.post("/api/train/pause").json()["state"] == "paused"
    job = client.app.state.web.jobs.job
    r = client.post("/api/train/hyper", json={"lr": 0.05, "momentum": 0.5, "weight_decay": 0.001, "batch_size": 16})
    assert r.status_code == 200, r.text
    assert r.json()["lr"] == 0.05 and r.json()["batch_size"] == 16
    g = job.optimizer.param_groups[0]
    assert g["lr"] == 0.05 and g["momentum"] == 0.5 and g["weight_decay"] == 0.001
    assert job._scheduler.frozen is True and job._pending_batch_size == 16
    assert client.get("/api/train/status").json()["hyper"]["lr"] == 0.05
    for body, words in (({"lr": -1}, "lr must be"), ({"momentum": 1.5}, "momentum"), ({"epochs": 3}, "cannot change epochs"),
                        ({}, "nothing to change"), ({"batch_size": 0}, "batch_size")):
        r = client.post("/api/train/hyper", json=body)
        assert r.status_code == 422 and words in r.json()["error"], r.text
    p = client.get("/api/train/params").json()
    names = [entry["name"] for entry in p["layers"]]
    assert names[:2] == ["conv1", "conv2"] and "fc2" in names or "fc" in names[-1]
    assert all(entry["grad_rms"] is not None and entry["grad_rms"] >= 0 for entry in p["layers"])
    assert p["selected"]["name"] == "conv1" and p["selected"]["weight"]["shape"] == [6, 1, 5, 5]
    assert p["selected"]["grad"]["shape"] == [6, 1, 5, 5]
    p = client.get(f"/api/train/params?layer={names[-1]}").json()
    assert p["selected"]["name"] == names[-1] and len(p["selected"]["weight"]["shape"]) == 2
    assert client.get("/api/train/params?layer=nope").status_code == 422
    client.post("/api/train/resume")
    deadline = time.time() + 30
    while job.train_loader_batch_size() != 16 and time.time() < deadline:
        time.sleep(0.05)
    assert job.train_loader_batch_size() == 16  # applied at the next epoch
    client.post("/api/train/stop")
    assert client.post("/api/train/hyper", json={"lr": 0.1}).status_code == 409


def test_smooth_curves_and_the_prediction_grid(make_app):
    from starlette.testclient import TestClient

    app = make_app(data={"ten": (tiny_dataset(80, 0), tiny_dataset(60, 1))})
    with TestClient(app, base_url="http://127.0.0.1") as c:
        r = c.post("/api/train/start", json={"dataset": "ten", "epochs": 3, "batch_size": 8, "val_split": 0.25,
                                             "optimizer": "adam", "lr": 0.003, "schedule": "none"})
        assert r.status_code == 201
        s = wait_state(c, ("finished", "failed"))
        job = app.state.web.jobs.job
        pts = job.points
        assert all(np.isfinite(p["smooth_loss"]) and 0 <= p["smooth_accuracy"] <= 1 for p in pts)
        # the epoch's running mean restarts at each epoch; the moving average runs on
        firsts = [i for i, p in enumerate(pts) if p["batch"] == 1 and i > 0]
        assert firsts
        for i in firsts:
            assert pts[i]["smooth_loss"] == pytest.approx(pts[i - 1]["smooth_loss"], rel=0.5)
        assert [h["examples_seen"] for h in s["history"]] == [60, 120, 180]
        labels = [int(v) for v in job.strip_labels]
        assert len(labels) == 40 and np.bincount(labels).tolist() == [4] * 10


# ---- checkpoints from the page, samples by page and class -----------------------------------------------------
def test_checkpoint_upload(client, tmp_path):
    st = write_cifar_checkpoint(tmp_path / "run")
    files = {"weights": ("best.safetensors", st.read_bytes(), "application/octet-stream"),
             "meta": ("best.json", st.with_suffix(".json").read_bytes(), "application/json")}
    r = client.post("/api/model/upload", files=files)
    assert r.status_code == 200, r.text
    assert r.json()["input_shape"] == [3, 32, 32] and client.get("/api/model").json()["source"] == "upload"
    assert "uploaded: best.safetensors" in client.get("/api/model").json()["label"]
    bad = dict(files, weights=("x.safetensors", b"\x00" * 64, "application/octet-stream"))
    r = client.post("/api/model/upload", files=bad)
    assert r.status_code == 422 and "not a usable convlens checkpoint" in r.json()["error"]
    other = write_cifar_checkpoint(tmp_path / "other")
    mixed = dict(files, meta=("best.json", other.with_suffix(".json").read_bytes(), "application/json"))
    assert client.post("/api/model/upload", files=mixed).status_code == 422  # a mismatched pair
    r = client.post("/api/model/upload", files={"weights": files["weights"]})
    assert r.status_code == 422 and "meta" in r.json()["error"]
    assert client.post("/api/model/upload", json={}).status_code == 415
    assert "uploaded" in client.get("/api/model").json()["label"]  # the refused ones changed nothing
    assert len(list((client.app.state.web.runs_dir / "uploads").iterdir())) == 1  # and left no files
    client.post("/api/model/reset", json={})


def test_samples_by_page_and_class(client):
    s = client.get("/api/samples?count=5&label=3").json()
    assert len(s["samples"]) == 5 and {x["label"] for x in s["samples"]} == {"3"}
    assert s["total"] == s["counts"][3] and s["part"] == "test"
    nxt = client.get("/api/samples?count=5&label=3&offset=5").json()
    assert not {x["index"] for x in s["samples"]} & {x["index"] for x in nxt["samples"]}
    assert client.get("/api/samples?label=7").json()["samples"][0]["label"] == "7"
    assert client.get("/api/samples?label=99").status_code == 422
    assert client.get("/api/samples?offset=-1").status_code == 422
