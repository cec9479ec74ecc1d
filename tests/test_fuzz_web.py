"""Property-based fuzzing of the web API as it is: every POST endpoint gets random JSON bodies, random
bytes with assorted content types, and uploads (multipart, raw image bodies, data URLs) made of random
bytes and mutated real images. The server must answer 2xx or 4xx with a JSON error, never 5xx."""

from __future__ import annotations

import base64
import io
import json

import numpy as np
import pytest

pytest.importorskip("starlette", reason="the web extra (starlette, uvicorn, python-multipart) is not installed")
pytest.importorskip("httpx", reason="Starlette's TestClient needs httpx")
pytest.importorskip("hypothesis", reason="the fuzz tests need hypothesis (pip install -e .[test])")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from tests.web.conftest import tiny_dataset  # noqa: E402  (the web tests' learnable 10-class images)

POSTS = ["/api/explain", "/api/explain/conv", "/api/explain/pool", "/api/predict", "/api/playground",
         "/api/model/reset", "/api/train/start", "/api/train/pause", "/api/train/resume", "/api/train/stop",
         "/api/train/save", "/api/train/use"]
IMAGE_POSTS = ["/api/explain", "/api/predict", "/api/playground"]
SETTINGS = settings(max_examples=60, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def web(tmp_path_factory):
    from starlette.testclient import TestClient

    from convlens.web import create_app

    app = create_app(data={"tiny": (tiny_dataset(96, 0), tiny_dataset(20, 1))},
                     runs_dir=tmp_path_factory.mktemp("runs"), snapshot_interval=0.05)
    with TestClient(app, base_url="http://127.0.0.1", raise_server_exceptions=False) as client:
        yield client
        client.post("/api/train/stop")
        job = app.state.web.jobs.job
        if job is not None and not job.terminal:
            job.control.stop()
            job.join(10)


def _png(w=8, h=8, mode="L") -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(w * h).integers(0, 256, (h, w, 3) if mode == "RGB" else (h, w),
                                                         dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def _check(response) -> None:
    assert response.status_code < 500, (response.status_code, response.text[:300])
    if response.status_code >= 400:
        body = response.json()  # errors are JSON with a message
        assert isinstance(body, dict) and body, body


def _stop_training(web) -> None:
    web.post("/api/train/stop")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats() | st.text(max_size=20)
    | st.sampled_from(["lenet5", "tiny", "conv1", "max", "sobel-x", "data:image/png;base64,", "relu"]),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=12), inner, max_size=5),
    max_leaves=15)
KEYS = ["image", "model", "dataset", "layer", "channel", "row", "col", "x", "y", "kernel", "padding", "stride",
        "epochs", "lr", "batch_size", "optimizer", "input_id", "index", "top_k", "mode", "size", "name"]
bodies = st.dictionaries(st.sampled_from(KEYS), json_values, max_size=6) | json_values


@SETTINGS
@given(path=st.sampled_from(POSTS), body=bodies)
def test_json_bodies(web, path, body):
    _check(web.post(path, content=json.dumps(body).encode(), headers={"content-type": "application/json"}))
    _stop_training(web)


@SETTINGS
@given(path=st.sampled_from(POSTS), raw=st.binary(max_size=300),
       ctype=st.sampled_from(["application/json", "text/plain", "image/png", "application/octet-stream",
                              "multipart/form-data", "multipart/form-data; boundary=xyz", ""]))
def test_raw_bodies(web, path, raw, ctype):
    _check(web.post(path, content=raw, headers={"content-type": ctype} if ctype else {}))
    _stop_training(web)


def _mutate(data: bytes, flips: list[tuple[int, int]], cut: int) -> bytes:
    b = bytearray(data)
    for pos, bit in flips:
        if b:
            b[pos % len(b)] ^= 1 << (bit % 8)
    return bytes(b[: max(0, len(b) - cut)])


images = st.builds(_mutate, st.sampled_from([_png(), _png(28, 28), _png(5, 300, "RGB"), _png(1, 1)]),
                   st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 7)), max_size=4),
                   st.sampled_from([0, 0, 0, 1, 10, 100])) | st.binary(max_size=200)


@SETTINGS
@given(path=st.sampled_from(IMAGE_POSTS), data=images, how=st.sampled_from(["multipart", "raw", "data_url"]),
       fields=st.dictionaries(st.sampled_from(["layer", "channel", "kernel", "top_k", "padding"]),
                              st.text(max_size=8), max_size=3))
def test_image_uploads(web, path, data, how, fields):
    if how == "multipart":
        r = web.post(path, files={"image": ("x.png", data, "image/png")}, data=fields)
    elif how == "raw":
        r = web.post(path, content=data, headers={"content-type": "image/png"})
    else:
        body = dict(fields, image="data:image/png;base64," + base64.b64encode(data).decode())
        r = web.post(path, content=json.dumps(body).encode(), headers={"content-type": "application/json"})
    _check(r)
