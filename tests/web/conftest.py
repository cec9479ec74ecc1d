"""Fixtures for the web app's tests: a tiny learnable data set, the app, a TestClient."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("starlette", reason="the web extra (starlette, uvicorn, python-multipart) is not installed")
pytest.importorskip("httpx", reason="Starlette's TestClient needs httpx")


def tiny_dataset(n: int = 96, seed: int = 0):
    """1×28×28 images of 10 classes, class k a bright bar at row band k plus noise: learnable in one epoch."""
    from convlens.data import TensorDataset

    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 10
    images = rng.integers(0, 40, size=(n, 1, 28, 28)).astype(np.uint8)
    for k in range(10):
        images[labels == k, 0, 2 + 2 * k : 5 + 2 * k, 4:24] = 230
    return TensorDataset(images, labels, classes=[str(i) for i in range(10)], name="tiny")


def wait_state(client, states, timeout=30.0) -> dict:
    """Poll /api/train/status until the job is in one of ``states`` (an AssertionError after ``timeout`` s)."""
    import time

    deadline = time.time() + timeout
    while time.time() < deadline:
        s = client.get("/api/train/status").json()
        if s["state"] in states:
            return s
        time.sleep(0.02)
    raise AssertionError(f"job did not reach {states}: {s}")


@pytest.fixture(scope="session")
def tiny():
    return tiny_dataset(96, 0), tiny_dataset(20, 1)


@pytest.fixture
def make_app(tiny, tmp_path):
    from convlens.web import create_app

    def make(**kwargs):
        kwargs.setdefault("data", {"tiny": tiny})
        kwargs.setdefault("runs_dir", tmp_path / "runs")
        kwargs.setdefault("snapshot_interval", 0.05)
        kwargs.setdefault("data_roots", [])  # not the data sets on this machine: the tests see only theirs
        return create_app(**kwargs)

    return make


@pytest.fixture
def client(make_app):
    from starlette.testclient import TestClient

    app = make_app()
    with TestClient(app, base_url="http://127.0.0.1") as c:
        yield c
        job = app.state.web.jobs.job
        if job is not None and not job.terminal:
            job.control.stop()
            job.join(10)
