"""The web app's JSON API through Starlette's TestClient: catalogue, explanations equal to the engine's
numbers, prediction, playground, training jobs, and every limit (uploads, bad settings, hosts)."""

from __future__ import annotations

import base64
import io
import json
import struct
import time
import zlib

import numpy as np
import pytest
from PIL import Image

from convlens.web import explain as X
from tests.web.conftest import wait_state


def png_bytes(a: np.ndarray, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format=fmt)
    return buf.getvalue()


def data_url(raw: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64," + base64.b64encode(raw).decode()


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width×height (no pixel data): for limits checked before decoding."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IEND", b""))


def engine_traces(app, pixels: np.ndarray):
    h = app.state.web.handle
    return X.trace(h.model, h.normalise(pixels), h.input_shape)


def rel_close(a: float, b: float, rtol: float = 1e-5, atol: float = 1e-6) -> bool:
    return abs(a - b) <= atol + rtol * abs(b)


# ---- pages and catalogue ------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/", "/train", "/explain", "/draw", "/playground"])
def test_pages_are_served(client, path):
    r = client.get(path)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "<script src=\"/static/common.js\"" in r.text and "http" not in r.text.split("<main>")[0].replace(
        "http-equiv", "")  # no CDN: every asset is local
    assert r.headers["x-content-type-options"] == "nosniff" and "default-src 'self'" in r.headers["content-security-policy"]


@pytest.mark.parametrize("name", ["style.css", "common.js", "train.js", "explain.js", "draw.js", "playground.js"])
def test_static_assets(client, name):
    r = client.get(f"/static/{name}")
    assert r.status_code == 200 and len(r.text) > 500


def test_catalogue(client):
    models = client.get("/api/models").json()
    assert "lenet5" in [m["name"] for m in models["models"]] and "adam" in models["optimizers"]
    names = [d["name"] for d in client.get("/api/datasets").json()["datasets"]]
    assert names == ["mnist-mini", "tiny"]
    m = client.get("/api/model").json()
    assert m["input_shape"] == [1, 28, 28] and m["classes"] == [str(i) for i in range(10)] and m["digit_model"]
    assert m["summary"]["totals"]["total"] == 61706 and m["info"]["test_accuracy"] > 0.95
    conv1 = next(layer for layer in m["layers"] if layer["name"] == "conv1")
    assert conv1["formula"][0] == "(28 − 5 + 2·2)/1 + 1 = 28" and conv1["params"] == 156
    pool2 = next(layer for layer in m["layers"] if layer["name"] == "pool2")
    assert pool2["formula"][1] == "(10 − 2 + 2·0)/2 + 1 = 5" and pool2["pool"] == "avg"


def test_samples(client):
    r = client.get("/api/samples?count=5&offset=3").json()
    assert r["dataset"] == "mnist-mini" and r["total"] == 2000
    first = client.get("/api/samples?count=8").json()["samples"]
    assert [s["index"] for s in r["samples"]] == [s["index"] for s in first[3:8]]  # offset pages the same order
    assert [s["label"] for s in first] == [str(k) for k in range(8)]  # the classes take turns
    assert all(s["image"].startswith("data:image/png;base64,") for s in r["samples"])
    assert client.get("/api/samples?count=0").status_code == 422


# ---- explain: the numbers are the engine's ------------------------------------------------------------------
def test_explain_sample_matches_engine(client):
    from convlens.data import load

    r = client.post("/api/explain", json={"sample": 11})
    assert r.status_code == 200
    body = r.json()
    pixels = load("mnist-mini", train=False).images[11]
    traces = engine_traces(client.app, pixels)
    assert [layer["name"] for layer in body["layers"]] == [t.name for t in traces]
    for layer, t in zip(body["layers"], traces):
        v = layer["values"]
        got = np.frombuffer(base64.b64decode(v["data"]), "<f4").reshape(v["shape"])
        np.testing.assert_array_equal(got, t.output[: v["shape"][0]])
    out = body["output"]
    assert abs(sum(out["probabilities"]) - 1) < 1e-9
    assert out["predicted"] == int(np.argmax(traces[-1].output)) and out["label"] == str(out["predicted"])


@pytest.mark.parametrize("layer,positions", [
    ("conv1", [(0, 0, 0), (5, 27, 27), (2, 13, 0), (3, 14, 9)]),  # corners read the zero padding
    ("conv2", [(0, 0, 0), (15, 9, 9), (7, 4, 6)]),
    ("conv3", [(0, 0, 0), (119, 0, 0), (57, 0, 0)]),
])
def test_explain_conv_equals_engine(client, layer, positions):
    body = client.post("/api/explain", json={"sample": 7}).json()
    traces = engine_traces(client.app, client.app.state.web.inputs.get(body["input_id"]))
    i, t = next((i, t) for i, t in enumerate(traces) if t.name == layer)
    for c, y, x in positions:
        d = client.post("/api/explain/conv", json={"input_id": body["input_id"], "layer": layer, "channel": c,
                                                   "y": y, "x": x}).json()
        engine = float(t.output[c, y, x])
        assert rel_close(d["sum"] + d["bias"], engine) and rel_close(d["value"], engine) and d["engine"] == engine
        products = np.array(d["products"])
        np.testing.assert_allclose(products, np.array(d["patch"]) * np.array(d["kernel"]), rtol=1e-12)
        assert abs(products.sum() - d["sum"]) < 1e-9
        np.testing.assert_array_equal(np.array(d["kernel"], np.float32), t.module.weight._data[c])
        assert d["activation"]["type"] == "ReLU" and d["activation"]["engine"] == float(traces[i + 1].output[c, y, x])
        assert rel_close(d["activation"]["value"], max(engine, 0.0))
    corner = client.post("/api/explain/conv", json={"sample": 7, "layer": "conv1", "channel": 0, "y": 0, "x": 0}).json()
    assert corner["origin"] == [-2, -2] and not corner["in_bounds"][0][0] and corner["in_bounds"][2][2]


def test_explain_pool_equals_engine(client):
    body = client.post("/api/explain", json={"sample": 3}).json()
    traces = engine_traces(client.app, client.app.state.web.inputs.get(body["input_id"]))
    for layer, (c, y, x) in (("pool1", (4, 7, 9)), ("pool2", (15, 4, 0))):
        t = next(t for t in traces if t.name == layer)
        d = client.post("/api/explain/pool", json={"input_id": body["input_id"], "layer": layer, "channel": c,
                                                   "y": y, "x": x}).json()
        assert d["pool"] == "avg" and d["divisor"] == 4
        assert rel_close(d["value"], float(t.output[c, y, x])) and rel_close(np.mean(d["window"]), d["value"])


def test_explain_general_conv_and_pools(make_app, tmp_path):
    """Stride, dilation, replicate padding, groups, max and weighted pooling with padding: shown = engine."""
    from starlette.testclient import TestClient

    import convlens
    from convlens import models
    from convlens.checkpoint import save_checkpoint

    convlens.manual_seed(3)
    spec = {"layers": [
        {"type": "conv", "name": "c1", "filters": 6, "size": 3, "stride": 2, "pad": 2, "dilation": 2,
         "padding_mode": "replicate", "activation": "tanh"},
        {"type": "pool", "name": "p1", "kind": "max", "size": 3, "stride": 2, "pad": 1},
        {"type": "conv", "name": "c2", "filters": 4, "size": [3, 2], "groups": 2, "pad": 1, "activation": "relu"},
        {"type": "pool", "name": "p2", "kind": "weighted", "size": 2},
        {"type": "fc", "name": "fc", "units": 3}]}
    model = models.from_spec(spec, input_shape=(3, 21, 19))
    save_checkpoint(tmp_path / "ck" / "best", model, input_shape=[3, 21, 19], classes=["a", "b", "c"],
                    architecture={"spec": models.to_spec(model, (3, 21, 19))})
    app = make_app(checkpoint=tmp_path / "ck")
    rgb = np.random.default_rng(0).integers(0, 255, (30, 26, 3)).astype(np.uint8)
    with TestClient(app, base_url="http://127.0.0.1") as c:
        r = c.post("/api/explain", files={"image": ("x.png", png_bytes(rgb), "image/png")})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["input"]["shape"] == [3, 21, 19] and body["output"]["classes"] == ["a", "b", "c"]
        traces = engine_traces(app, app.state.web.inputs.get(body["input_id"]))
        byname = {t.name: t for t in traces}
        for layer, path in (("c1", "conv"), ("c2", "conv"), ("p1", "pool"), ("p2", "pool")):
            C, H, W = byname[layer].output.shape
            for ch, y, x in ((0, 0, 0), (C - 1, H - 1, W - 1), (C // 2, H // 2, W // 3)):
                d = c.post(f"/api/explain/{path}", json={"input_id": body["input_id"], "layer": layer, "channel": ch,
                                                         "y": y, "x": x}).json()
                assert rel_close(d["value"], float(byname[layer].output[ch, y, x])), (layer, ch, y, x, d)
        g = c.post("/api/explain/conv", json={"input_id": body["input_id"], "layer": "c2", "channel": 3, "y": 0,
                                              "x": 0}).json()
        assert g["input_channels"] == [3, 4, 5] and np.array(g["patch"]).shape == (3, 3, 2)
        t = c.post("/api/explain/conv", json={"input_id": body["input_id"], "layer": "c1", "channel": 1, "y": 2,
                                              "x": 2}).json()
        assert t["activation"]["type"] == "Tanh" and rel_close(t["activation"]["value"], t["activation"]["engine"])


@pytest.mark.parametrize("path,payload,status,words", [
    ("/api/explain/conv", {"sample": 0, "layer": "nope", "channel": 0, "y": 0, "x": 0}, 422, "unknown layer"),
    ("/api/explain/conv", {"sample": 0, "layer": "conv1", "channel": 6, "y": 0, "x": 0}, 422, "channel must be"),
    ("/api/explain/conv", {"sample": 0, "layer": "conv1", "channel": 0, "y": -1, "x": 0}, 422, "y must be"),
    ("/api/explain/conv", {"sample": 0, "layer": "conv1", "channel": 0, "y": 1.5, "x": 0}, 422, "integer"),
    ("/api/explain/conv", {"sample": 0, "layer": "pool1", "channel": 0, "y": 0, "x": 0}, 422, "not a 2-d conv"),
    ("/api/explain/pool", {"sample": 0, "layer": "conv1", "channel": 0, "y": 0, "x": 0}, 422, "not a 2-d max"),
    ("/api/explain/conv", {"sample": 0, "layer": "fc1", "channel": 0, "y": 0, "x": 0}, 422, "not a 2-d conv"),
    ("/api/explain/conv", {"input_id": "deadbeef", "layer": "conv1", "channel": 0, "y": 0, "x": 0}, 404, "expired"),
    ("/api/explain/conv", {"sample": 99999, "layer": "conv1", "channel": 0, "y": 0, "x": 0}, 422, "sample must be"),
    ("/api/explain/conv", {"layer": "conv1", "channel": 0, "y": 0, "x": 0}, 422, "send an image"),
    ("/api/explain", {"sample": "abc"}, 422, "integer"),
])
def test_explain_errors(client, path, payload, status, words):
    r = client.post(path, json=payload)
    assert r.status_code == status and words in r.json()["error"], r.text


def test_bad_bodies(client):
    assert client.post("/api/explain/conv", content=b"{not json", headers={"content-type": "application/json"}
                       ).status_code == 400
    r = client.post("/api/explain/conv", content=b"layer=conv1", headers={"content-type": "text/plain"})
    assert r.status_code == 415 and "JSON" in r.json()["error"]
    assert client.post("/api/explain/conv", json=[1, 2]).status_code == 400
    big = {"sample": 0, "layer": "conv1", "pad": "x" * 300_000}
    assert client.post("/api/explain/conv", json=big).status_code == 413
    r = client.get("/api/nothing")
    assert r.status_code == 404 and "error" in r.json()
    assert client.get("/api/explain").status_code == 405


# ---- uploads: every limit ------------------------------------------------------------------------------------
def test_upload_limits(client):
    def post(raw, mime="image/png", name="x.png"):
        return client.post("/api/explain", files={"image": (name, raw, mime)})

    digit = np.zeros((40, 30), np.uint8)
    digit[8:32, 12:18] = 255
    assert post(png_bytes(digit)).status_code == 200
    assert post(png_bytes(digit, "JPEG"), "image/jpeg", "x.jpg").status_code == 200
    assert post(png_bytes(digit, "GIF"), "image/gif", "x.gif").status_code == 200
    cases = [
        (post(b"x" * (5 * 1024 * 1024 + 1)), 413, "too large"),  # more than 5 MB
        (post(png_header_only(4097, 8)), 413, "4097×8"),  # more than 4096 pixels wide, refused from the header
        (post(png_header_only(16, 5000)), 413, "16×5000"),
        (post(b"hello, world", "text/plain", "x.txt"), 415, "unsupported upload type"),
        (post(png_bytes(digit, "TIFF"), "image/tiff", "x.tif"), 415, "unsupported"),
        (post(png_bytes(digit, "TIFF"), "image/png"), 415, "TIFF"),  # the bytes are sniffed, not the label trusted
        (post(b"\x89PNG\r\n\x1a\n garbage"), 400, "not a readable image"),
        (post(png_bytes(np.random.default_rng(0).integers(0, 255, (64, 64), np.uint8))[:300]), 400, "corrupt"),
        (post(b""), 400, "empty"),
    ]
    for r, status, words in cases:
        assert r.status_code == status and words in r.json()["error"], (status, r.text)
    r = client.post("/api/explain", json={"image": "data:image/png;base64,@@@"})
    assert r.status_code == 400 and "base64" in r.json()["error"]
    r = client.post("/api/explain", json={"image": "data:text/html;base64,PGI+"})
    assert r.status_code == 415
    r = client.post("/api/explain", json={"image": data_url(b"x" * (5 * 1024 * 1024 + 10))})
    assert r.status_code == 413
    r = client.post("/api/explain", content=b"x" * 10, headers={"content-type": "application/xml"})
    assert r.status_code == 415


def test_decompression_bomb(make_app):
    """With the side limit lifted, Pillow's pixel-count guard still refuses a 20000×20000 header."""
    from starlette.testclient import TestClient

    with TestClient(make_app(max_image_side=100_000), base_url="http://127.0.0.1") as c:
        r = c.post("/api/explain", files={"image": ("b.png", png_header_only(20000, 20000), "image/png")})
        assert r.status_code == 413 and "decompression bomb" in r.json()["error"]


# ---- predict (the Draw page) -------------------------------------------------------------------------------
def test_predict_uses_prepare_digit(client):
    from convlens.data import load
    from convlens.data.digits import prepare_digit

    ink = 255 - np.kron(load("mnist-mini", train=False).images[0][0], np.ones((6, 6), np.uint8))  # dark on white
    canvas = Image.fromarray(ink).convert("RGBA")
    r = client.post("/api/predict", json={"image": data_url(png_bytes(np.asarray(canvas)))})
    assert r.status_code == 200, r.text
    d = r.json()
    expected = prepare_digit(Image.open(io.BytesIO(png_bytes(np.asarray(canvas)))))
    seen = np.asarray(Image.open(io.BytesIO(base64.b64decode(d["prepared"].split(",")[1]))))
    np.testing.assert_array_equal(seen, expected[0])
    traces = engine_traces(client.app, expected)
    np.testing.assert_allclose(d["logits"], traces[-1].output, rtol=1e-6)
    assert d["predicted"] == int(np.argmax(traces[-1].output)) and not d["blank"] and abs(sum(d["probabilities"]) - 1) < 1e-9
    assert [layer["name"] for layer in d["layers"]][:3] == ["conv1", "conv1_relu", "pool1"]
    blank = client.post("/api/predict", json={"image": data_url(png_bytes(np.zeros((50, 50), np.uint8)))}).json()
    assert blank["blank"]
    assert client.post("/api/predict", json={}).status_code == 422


# ---- playground --------------------------------------------------------------------------------------------
def test_playground_matches_apply_kernel(client):
    from convlens.filters import KERNELS, apply_kernel
    from convlens.web.api import sample_shapes

    r = client.post("/api/playground", json={"kernel": "sobel-x", "padding": 1, "stride": 2, "padding_mode": "replicate"})
    assert r.status_code == 200, r.text
    d = r.json()
    assert d["output_shape"] == [64, 64] and d["formula"]["width"] == "(128 − 3 + 2·1)/2 + 1 = 64 (rounded down from 64.5)"
    got = np.frombuffer(base64.b64decode(d["output"]["data"]), "<f4").reshape(64, 64)
    want = apply_kernel(sample_shapes() / np.float32(255), KERNELS["sobel-x"], 2, 1, "replicate")
    np.testing.assert_array_equal(got, want)
    relu = np.frombuffer(base64.b64decode(d["relu"]["data"]), "<f4").reshape(64, 64)
    np.testing.assert_array_equal(relu, np.maximum(want, 0))
    custom = client.post("/api/playground", json={"kernel": [[0, 0, 0, 0], [0, 1, 0, 0]], "sample": "digit"}).json()
    assert custom["kernel_name"] == "custom" and custom["output_shape"] == [27, 25]
    img = np.random.default_rng(1).integers(0, 255, (600, 300, 3)).astype(np.uint8)
    up = client.post("/api/playground", files={"image": ("p.png", png_bytes(img), "image/png")},
                     data={"kernel": "[[1, 2], [3, 4]]", "padding": "0", "stride": "3"}).json()
    assert up["input"]["shape"] == [256, 128] and "resized" in up["note"] and up["output_shape"] == [85, 43]
    small = client.post("/api/playground", files={"image": ("s.png", png_bytes(img[:4, :4]), "image/png")},
                        data={"kernel": json.dumps(np.ones((5, 5)).tolist())})
    assert small.status_code == 422 and "does not fit" in small.json()["error"]


@pytest.mark.parametrize("payload,words", [
    ({"kernel": [[1, 2], [3]]}, "rectangular"),
    ({"kernel": np.ones((16, 3)).tolist()}, "at most 15"),
    ({"kernel": "emboss"}, "one of sobel-x"),
    ({"kernel": [[1, None]]}, "finite"),
    ({"kernel": "blur", "padding_mode": "reflect"}, "padding_mode"),
    ({"kernel": "blur", "stride": 0}, "stride must be in 1..32"),
    ({"kernel": "blur", "padding": 99}, "padding must be"),
    ({"sample": "../../etc/passwd"}, "sample must be"),
])
def test_playground_errors(client, payload, words):
    r = client.post("/api/playground", json=payload)
    assert r.status_code == 422 and words in r.json()["error"], r.text


# ---- training jobs -----------------------------------------------------------------------------------------
def read_events(client) -> list[tuple[str, dict]]:
    out = []
    with client.stream("GET", "/api/train/events") as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        event = None
        for line in r.iter_lines():
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                out.append((event, json.loads(line[6:])))
    return out


def test_training_job_end_to_end(client, tmp_path):
    from convlens.checkpoint import load_checkpoint

    assert client.get("/api/train/status").json()["state"] == "idle"
    assert [e for e, _ in read_events(client)] == ["state", "end"]
    r = client.post("/api/train/start", json={"model": "lenet5", "dataset": "tiny", "epochs": 1, "batch_size": 16,
                                              "val_split": 0.25, "optimizer": "sgd", "lr": 0.05, "schedule": "none"})
    assert r.status_code == 201, r.text
    s = wait_state(client, ("finished", "failed"))
    assert s["state"] == "finished", s
    assert s["train_images"] == 72 and s["val_images"] == 24 and len(s["history"]) == 1
    assert s["last"]["examples_seen"] == 72 and s["history"][0]["val_accuracy"] is not None
    events = read_events(client)
    kinds = [e for e, _ in events]
    assert kinds[0] == "state" and kinds[-1] == "end" and "snapshot" in kinds
    state = events[0][1]
    assert len(state["points"]) >= 1 and len(state["strip"]["images"]) == 20  # all 20 (≤ STRIP)
    snap = next(d for e, d in events if e == "snapshot")
    assert snap["kernels"]["shape"] == [6, 1, 5, 5] and len(snap["strip"]) == 20 and len(snap["strip"][0]) == 3
    assert [layer["name"] for layer in snap["layers"]][:2] == ["conv1", "conv1_relu"]

    saved = client.post("/api/train/save").json()
    path = tmp_path / "runs" / saved["run"] / "last.safetensors"
    assert path.is_file() and saved["epoch"] == 1
    model, info = load_checkpoint(path)
    assert info["dataset"] == "tiny" and info["input_shape"] == [1, 28, 28] and info["optimizer_state"] is not None

    assert client.post("/api/train/use").json()["model"].startswith("training job 1")
    m = client.get("/api/model").json()
    assert m["label"].startswith("training job 1") and m["samples"] == "tiny"
    d = client.post("/api/explain", json={"sample": 2}).json()
    assert d["model"].startswith("training job 1")
    assert client.post("/api/model/reset").json()["model"].startswith("lenet5-mnist-mini")
    assert client.post("/api/train/pause").status_code == 409


def test_pause_resume_stop_and_one_job_at_a_time(client):
    r = client.post("/api/train/start", json={"dataset": "tiny", "epochs": 200, "batch_size": 8, "val_split": 0,
                                              "schedule": "none"})
    assert r.status_code == 201, r.text
    wait_state(client, ("running",))
    again = client.post("/api/train/start", json={"dataset": "tiny"})
    assert again.status_code == 409 and "already" in again.json()["error"]
    assert client.post("/api/train/resume").status_code == 409
    assert client.post("/api/train/pause").json()["state"] == "paused"
    seen = client.get("/api/train/status").json()["last"]["examples_seen"]
    time.sleep(0.2)
    assert client.get("/api/train/status").json()["last"]["examples_seen"] == seen  # really paused
    assert client.post("/api/train/save").status_code == 200  # saved while paused, from the request thread
    assert client.post("/api/train/resume").json()["state"] == "running"
    saved = client.post("/api/train/save")  # while running: done between two batches
    assert saved.status_code == 200, saved.text
    assert client.post("/api/train/stop").json()["state"] == "stopped"
    assert client.post("/api/train/stop").status_code == 409
    assert client.post("/api/train/start", json={"dataset": "tiny", "epochs": 1, "val_split": 0}).status_code == 201
    wait_state(client, ("finished",))


@pytest.mark.parametrize("payload,words", [
    ({"model": "spec", "spec": "{not json"}, "not valid JSON"),
    ({"model": "spec", "spec": "convlens/assets/lenet5-mnist-mini/best.json"}, "not valid JSON"),
    ({"model": "spec", "spec": 5}, "expected a JSON object"),
    ({"model": "spec", "spec": {"layers": [{"type": "conv", "filters": 4}]}}, "size"),
    ({"model": "spec", "spec": {"layers": [{"type": "fc", "units": 5}]}}, "needs 10 units"),
    ({"model": "spec", "spec": {"layers": [{"type": "conv", "filters": 5000, "size": 9}, {"type": "fc", "units": 10}]}},
     "too large"),
    ({"model": "resnet152"}, "unknown model"),
    ({"model": "spec", "spec": {"layers": [{"type": "pool", "size": 64}, {"type": "fc", "units": 10}]}}, "spec"),
    ({"dataset": "../../etc"}, "unknown data set"),
    ({"dataset": "tiny", "lr": "abc"}, "lr must be a number"),
    ({"dataset": "tiny", "lr": -1}, "lr must be > 0"),
    ({"dataset": "tiny", "lr": True}, "lr must be a number"),
    ({"dataset": "tiny", "epochs": 0}, "epochs must be in"),
    ({"dataset": "tiny", "epochs": 2.5}, "integer"),
    ({"dataset": "tiny", "batch_size": 10**6}, "batch_size must be in"),
    ({"dataset": "tiny", "optimizer": "lbfgs"}, "optimizer must be one of"),
    ({"dataset": "tiny", "optimizer": 3}, "optimizer must be a string"),
    ({"dataset": "tiny", "val_split": 0.999}, "val_split"),
    ({"dataset": "tiny", "limit": 1}, "limit"),
    ({"dataset": "tiny", "run_dir": "/tmp/x"}, "unknown setting"),
])
def test_bad_training_settings(client, payload, words):
    r = client.post("/api/train/start", json=payload)
    assert r.status_code == 422 and words in r.json()["error"], r.text
    assert client.get("/api/train/status").json()["state"] == "idle"


def test_diverging_job_fails_cleanly(client):
    r = client.post("/api/train/start", json={"dataset": "tiny", "epochs": 3, "optimizer": "sgd", "lr": 1e6,
                                              "schedule": "none", "val_split": 0, "normalize": False})
    assert r.status_code == 201
    s = wait_state(client, ("failed", "finished"))
    assert s["state"] == "failed" and "training stopped" in s["error"]
    assert client.get("/api/model").status_code == 200  # the server is fine


def test_actions_without_a_job(client):
    for action in ("pause", "resume", "stop", "save", "use"):
        r = client.post(f"/api/train/{action}")
        assert r.status_code == 409 and "no training job" in r.json()["error"]


# ---- hosts and origins ---------------------------------------------------------------------------------------
def test_host_and_origin_checks(client):
    assert client.get("/api/model", headers={"host": "evil.example"}).status_code == 400
    assert client.get("/api/model", headers={"host": "localhost:8000"}).status_code == 200
    r = client.post("/api/train/stop", headers={"origin": "http://evil.example"})
    assert r.status_code == 403 and "cross-origin" in r.json()["error"]
    r = client.post("/api/train/stop", headers={"sec-fetch-site": "cross-site"})
    assert r.status_code == 403
    assert client.post("/api/train/stop", headers={"origin": "http://127.0.0.1"}).status_code == 409


# ---- the command ---------------------------------------------------------------------------------------------
def test_serve_command_options(tmp_path, capsys):
    from convlens.cli import main
    from convlens.cli.serve import build_parser, parse_data

    assert main(["serve", "--help"]) == 0
    assert "--data NAME=DIR" in capsys.readouterr().out
    args = build_parser().parse_args([])
    assert args.host == "127.0.0.1" and args.port == 8000
    assert parse_data([f"shapes={tmp_path}"]) == {"shapes": str(tmp_path)}
    assert main(["serve", "--data", "shapes"]) == 1
    assert "expected NAME=DIR" in capsys.readouterr().err
    assert main(["serve", "--data", f"x={tmp_path / 'missing'}"]) == 1
    assert main(["serve", "--port", "70000"]) == 1
