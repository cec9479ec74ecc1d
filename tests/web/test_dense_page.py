"""The Detect & Segment page: its API (test scenes, one scene or an upload through each dense model,
4xx answers) and, in Chromium, picking a scene shows the mask or the boxes and the feature maps."""

from __future__ import annotations

import base64
import io
import os
import tempfile

import numpy as np
import pytest
from PIL import Image


@pytest.fixture(scope="module")
def dense_runs(tmp_path_factory):
    """An (untrained) unet-small and centernet-small saved as checkpoints: the page's plumbing, not accuracy."""
    import convlens
    from convlens import models
    from convlens.checkpoint import save_checkpoint

    base = tmp_path_factory.mktemp("dense-ckpt")
    out = {}
    for name in ("unet-small", "centernet-small"):
        convlens.manual_seed(0)
        m = models.get_model(name, input_shape=(1, 64, 64), num_classes=10)
        info = {"architecture": {"name": name, "kwargs": {"input_shape": [1, 64, 64], "num_classes": 10}},
                "model_name": name, "classes": [str(i) for i in range(10)], "input_shape": [1, 64, 64],
                "dataset": "mnist-scenes-mini", "mean": None, "std": None}
        save_checkpoint(base / name / "best", m, **info)
        out[name] = base / name
    return out


@pytest.fixture
def dense_client(make_app, dense_runs):
    from starlette.testclient import TestClient

    app = make_app(dense={k: str(v) for k, v in dense_runs.items()})
    with TestClient(app, base_url="http://127.0.0.1") as c:
        yield c


def _png(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="PNG")
    return buf.getvalue()


def test_models_scenes_and_runs(dense_client):
    r = dense_client.get("/api/dense/models").json()
    assert [m["task"] for m in r["models"]] == ["segment", "detect"]
    s = dense_client.get("/api/dense/scenes?count=3").json()
    assert s["total"] == 1000 and len(s["scenes"]) == 3 and s["scenes"][0]["image"].startswith("data:image/png")
    seg = dense_client.post("/api/dense/run", json={"model": "unet-small", "scene": 2}).json()
    assert seg["task"] == "segment" and seg["size"] == [64, 64] and sum(seg["pixels"].values()) == 64 * 64
    assert [f["shape"] for f in seg["features"]][:2] == [[8, 64, 64], [16, 32, 32]]
    det = dense_client.post("/api/dense/run", json={"model": "centernet-small", "scene": 2, "score_threshold": 0}).json()
    assert det["task"] == "detect" and all(len(d["box"]) == 4 for d in det["detections"])
    # an upload of another size (fully convolutional): multipart file
    big = np.zeros((80, 120), np.uint8)
    big[10:40, 20:40] = 255
    up = dense_client.post("/api/dense/run", files={"image": ("s.png", _png(big), "image/png")},
                           data={"model": "unet-small"}).json()
    assert up["size"] == [80, 120] and up["overlay"].startswith("data:image/png")
    raw = base64.b64decode(up["overlay"].split(",", 1)[1])
    with Image.open(io.BytesIO(raw)) as im:
        assert im.size[0] / im.size[1] == pytest.approx(120 / 80)


def test_bad_requests_are_4xx(dense_client, make_app):
    assert dense_client.post("/api/dense/run", json={"model": "nope", "scene": 0}).status_code == 404
    assert dense_client.post("/api/dense/run", json={"model": "unet-small", "scene": 10**6}).status_code == 422
    assert dense_client.post("/api/dense/run", json={"model": "unet-small"}).status_code == 422
    r = dense_client.post("/api/dense/run", json={"scene": 0, "score_threshold": "high"})
    assert r.status_code == 422 and "score_threshold" in r.json()["error"]
    huge = np.zeros((600, 20), np.uint8)
    r = dense_client.post("/api/dense/run", files={"image": ("h.png", _png(huge), "image/png")})
    assert r.status_code == 413
    r = dense_client.post("/api/dense/run", files={"image": ("x.png", b"not a png", "image/png")})
    assert r.status_code in (400, 415)
    from starlette.testclient import TestClient

    with TestClient(make_app(), base_url="http://127.0.0.1") as c:  # no dense model loaded
        r = c.post("/api/dense/run", json={"scene": 0})
        assert r.status_code == 404 and "--dense" in r.json()["error"]
        assert c.get("/detect").status_code == 200


def test_a_classifier_checkpoint_is_refused(make_app):
    from convlens.web.state import default_checkpoint

    with pytest.raises(ValueError, match="classifier"):
        make_app(dense=[str(default_checkpoint())])


CHROMIUM = "/usr/bin/chromium"


@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="browser test needs Chromium at /usr/bin/chromium")
def test_page_in_the_browser(dense_runs, tiny):
    sync_api = pytest.importorskip("playwright.sync_api")
    from convlens.web import create_app
    from convlens.web.server import BackgroundServer

    with tempfile.TemporaryDirectory() as runs:
        app = create_app(data={"tiny": tiny}, runs_dir=runs, dense={k: str(v) for k, v in dense_runs.items()})
        with BackgroundServer(app) as url, sync_api.sync_playwright() as p:
            b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--headless", "--disable-gpu"])
            ctx = b.new_context(bypass_csp=True)
            page = ctx.new_page()
            page.set_default_timeout(30_000)
            errors = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(url + "/detect")
            page.wait_for_selector("#dense-scenes img")
            page.click("#dense-scenes img >> nth=1")
            page.wait_for_function("document.querySelector('#dense-result').dataset.task === 'segment'")
            assert page.locator("#dense-features .feature-row").count() == 4
            assert "mask of 64×64" in page.inner_text("#dense-summary")
            page.select_option("#dense-model", "centernet-small")
            page.fill("#dense-threshold", "0")
            page.dispatch_event("#dense-threshold", "change")
            page.wait_for_function("document.querySelector('#dense-result').dataset.task === 'detect'")
            assert "boxes on 64×64" in page.inner_text("#dense-summary")
            assert page.get_attribute("#dense-result", "src").startswith("data:image/png")
            assert page.locator("a[href='/detect']").count() == 1
            assert errors == []
            b.close()


@pytest.mark.parametrize("name", ["unet-small", "centernet-small"])
def test_explain_page_on_the_dense_nets_conv_layers(make_app, dense_runs, name):
    """The Explain page takes a segmentation or detection checkpoint: its layers are listed with the shapes
    its forward gives (skip concatenations included), and a clicked conv value — in the decoder, whose
    input is a concatenation — is patch·kernel + bias of what that layer actually received."""
    from starlette.testclient import TestClient

    from convlens.web import explain as X

    app = make_app(checkpoint=dense_runs[name] / "best.safetensors")
    with TestClient(app, base_url="http://127.0.0.1") as c:
        assert c.get("/api/model").status_code == 200
        a = np.zeros((64, 64), np.uint8)
        a[10:40, 20:28] = 255
        body = c.post("/api/explain", files={"image": ("s.png", _png(a), "image/png")}, data={"prepare": "resize"})
        assert body.status_code == 200, body.text
        body = body.json()
        web = app.state.web
        h = web.handle
        traces = X.trace(h.model, h.normalise(web.inputs.get(body["input_id"])), h.input_shape)
        convs = [t for t in traces if t.type == "Conv2d" and t.output.ndim == 3 and t.output.shape[1] > 2]
        assert len(convs) >= 4
        for t in (convs[0], convs[len(convs) // 2], convs[-1]):
            c_, y, x = t.output.shape[0] - 1, t.output.shape[1] // 2, t.output.shape[2] // 3
            d = c.post("/api/explain/conv", json={"input_id": body["input_id"], "layer": t.name, "channel": c_,
                                                  "y": y, "x": x})
            assert d.status_code == 200, (t.name, d.text)
            d = d.json()
            engine = float(t.output[c_, y, x])
            assert abs(d["sum"] + d["bias"] - engine) <= 1e-4 * max(1.0, abs(engine)), t.name
