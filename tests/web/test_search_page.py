"""The Search page: its API through Starlette's TestClient, and the page in Debian's Chromium (Playwright)."""

from __future__ import annotations

import base64
import io
import os
import tempfile

import numpy as np
import pytest
from PIL import Image


@pytest.fixture(autouse=True)
def small_database(monkeypatch):
    from convlens.web import search

    monkeypatch.setattr(search, "MAX_DATABASE", 1500)  # the first 1,500 of mnist-mini's 10,000: fast tests


def _png_data_url(pixels: np.ndarray) -> str:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def test_layers_lists_the_model_and_its_database(client):
    r = client.get("/api/search/layers")
    assert r.status_code == 200
    info = r.json()
    assert info["default"] == "fc2:input" and info["layers"][0] == "input" and "pool2" in info["layers"]
    assert info["dataset"] == "mnist-mini" and info["database"] == 1500 and info["database_total"] == 10000


def test_search_a_test_sample_at_two_layers(client):
    from convlens.data import mnist_mini

    test = mnist_mini(train=False)
    r = client.post("/api/search", json={"sample": 3, "k": 8})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["layer"] == "fc2:input" and out["dim"] == 84 and len(out["neighbours"]) == 8
    assert out["query"]["label"] == str(test.labels[3]) and out["query"]["image"].startswith("data:image/png;base64,")
    d = [n["distance"] for n in out["neighbours"]]
    assert d == sorted(d) and [n["rank"] for n in out["neighbours"]] == list(range(1, 9))
    assert out["precision"] >= 0.75  # the trained LeNet-5's neighbours share the digit
    pool = client.post("/api/search", json={"sample": 3, "k": 8, "layer": "pool2"}).json()
    assert pool["layer"] == "pool2" and pool["dim"] == 400
    pixels = client.post("/api/search", json={"sample": 3, "k": 8, "layer": "input"}).json()
    assert pixels["dim"] == 784
    assert [n["index"] for n in pixels["neighbours"]] != [n["index"] for n in out["neighbours"]]


def test_search_an_uploaded_image(client):
    from convlens.data import mnist_mini

    test = mnist_mini(train=False)
    i = int(np.flatnonzero(test.labels == 2)[0])
    r = client.post("/api/search", json={"image": _png_data_url(test.images[i, 0]), "k": 5})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["query"]["label"] is None and out["precision"] is None
    assert [n["label"] for n in out["neighbours"]].count("2") >= 4
    buf = io.BytesIO()
    Image.fromarray(test.images[i, 0]).save(buf, format="PNG")
    r = client.post("/api/search", files={"image": ("two.png", buf.getvalue(), "image/png")}, data={"k": "3"})
    assert r.status_code == 200 and len(r.json()["neighbours"]) == 3


@pytest.mark.parametrize("body,status,message", [
    ({"sample": 0, "layer": "fc9"}, 422, "layer 'fc9' is not in the model"),
    ({"sample": 0, "k": 0}, 422, "k must be in 1..50"),
    ({"sample": 0, "k": "ten"}, 422, "k must be an integer"),
    ({"sample": 99999}, 422, "sample must be in 0..1999"),
    ({"sample": "x"}, 422, "sample must be an integer"),
    ({}, 422, "send an image"),
    ({"image": "data:image/png;base64,AAAA"}, 422, None),
])
def test_bad_requests_are_4xx(client, body, status, message):
    r = client.post("/api/search", json=body)
    assert 400 <= r.status_code < 500 and "error" in r.json()
    assert r.status_code == status or message is None
    if message:
        assert message in r.json()["error"]


# ---- in the browser -----------------------------------------------------------------------------------
CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
def browser_page():
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"browser tests need Chromium at {CHROMIUM} (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="browser tests need playwright")
    from convlens.web import create_app, search
    from convlens.web.server import BackgroundServer

    old, search.MAX_DATABASE = search.MAX_DATABASE, 1500
    args = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run"]
    try:
        with tempfile.TemporaryDirectory() as runs, BackgroundServer(create_app(runs_dir=runs)) as url, \
                sync_api.sync_playwright() as p:
            b = p.chromium.launch(executable_path=CHROMIUM, args=args)
            context = b.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=True)
            page = context.new_page()
            page.set_default_timeout(30_000)
            page.errors = []
            page.on("pageerror", lambda e: page.errors.append(str(e)))
            page.on("console", lambda m: page.errors.append(m.text) if m.type == "error" else None)
            yield page, url
            b.close()
    finally:
        search.MAX_DATABASE = old


def test_search_page_shows_neighbours_and_follows_the_layer(browser_page):
    page, url = browser_page
    page.goto(url + "/search")
    page.wait_for_selector("#layer option[value='fc2:input']", state="attached")
    assert page.eval_on_selector("#layer", "s => s.value") == "fc2:input"
    assert page.locator("header nav a[href='/search']").count() == 1
    page.wait_for_selector("#samples img")
    page.click("#samples img >> nth=0")
    page.wait_for_selector("#neighbours figure.neighbour")
    assert page.locator("#neighbours figure.neighbour").count() == 10
    same = page.locator("#neighbours figure.neighbour.same").count()
    assert same >= 8  # digit neighbours outlined as the query's class
    first = page.locator("#neighbours figure.neighbour >> nth=0").get_attribute("data-index")
    page.select_option("#layer", "input")
    page.wait_for_function("document.querySelector('#query-kv').textContent.includes('784 features')")
    assert page.locator("#neighbours figure.neighbour").count() == 10
    page.select_option("#k", "5")
    page.wait_for_function("document.querySelectorAll('#neighbours figure.neighbour').length === 5")
    assert page.locator("#query").get_attribute("src").startswith("data:image/png")
    assert first is not None and page.errors == []


def test_search_page_upload_and_error(browser_page, tmp_path):
    from convlens.data import mnist_mini

    page, url = browser_page
    page.goto(url + "/search")
    page.wait_for_selector("#layer option[value='pool2']", state="attached")
    test = mnist_mini(train=False)
    Image.fromarray(test.images[int(np.flatnonzero(test.labels == 0)[0]), 0]).save(tmp_path / "zero.png")
    page.set_input_files("#upload", str(tmp_path / "zero.png"))
    page.wait_for_selector("#neighbours figure.neighbour")
    labels = page.eval_on_selector_all("#neighbours figure.neighbour", "fs => fs.map(f => f.dataset.label)")
    assert labels.count("0") >= 8
    (tmp_path / "bad.png").write_bytes(b"not a png at all")
    page.set_input_files("#upload", str(tmp_path / "bad.png"))
    page.wait_for_selector("#error.show")
    assert page.inner_text("#error")
