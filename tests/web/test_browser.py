"""End-to-end tests in a real browser: Playwright (sync API) driving Debian's Chromium, headless, against
uvicorn serving the app on 127.0.0.1 in a background thread."""

from __future__ import annotations

import os
import tempfile

import numpy as np
import pytest

CHROMIUM = "/usr/bin/chromium"
if not os.path.exists(CHROMIUM):
    pytest.skip(f"browser tests need Chromium at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="browser tests need playwright (pip install playwright)")
pytest.importorskip("uvicorn", reason="browser tests need uvicorn")

ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="module")
def server(tiny):
    from pathlib import Path

    from convlens.web import create_app
    from convlens.web.server import BackgroundServer
    from tests.web.test_api_second_pass import cifar_like, write_cifar_checkpoint

    with tempfile.TemporaryDirectory() as runs:
        assets = Path(runs) / "assets"
        write_cifar_checkpoint(assets / "convnetjs-cifar10")  # what the CIFAR-10 run ships, in small
        app = create_app(data={"tiny": tiny, "cifar10": (cifar_like(40, 0), cifar_like(30, 1))}, runs_dir=runs,
                         snapshot_interval=0.05, data_roots=[], assets=assets)
        with BackgroundServer(app) as url:
            yield app, url


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser, server):
    # bypass_csp: Playwright's wait_for_function evaluates strings, which the app's CSP (no eval) forbids
    context = browser.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=True)
    pg = context.new_page()
    pg.set_default_timeout(20_000)
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    pg.errors = errors
    yield pg
    context.close()


@pytest.mark.parametrize("path,ready", [
    ("/", ".tiles"), ("/train", "#model option[value=lenet5]"), ("/explain", "#calc-z"),
    ("/draw", "#pad"), ("/playground", "#out-size"), ("/shift", "#shift-table tr[data-layer]"),
])
def test_pages_load_without_errors(page, server, path, ready):
    page.goto(server[1] + path)
    page.wait_for_selector(ready, state="attached")
    page.wait_for_function("document.querySelector('.model-badge').textContent.includes('lenet5-mnist-mini')")
    assert page.errors == []


def box(page, selector: str) -> dict:
    """The element's box in the viewport, scrolled into view first (mouse clicks go to viewport points)."""
    page.locator(selector).scroll_into_view_if_needed()
    return page.locator(selector).bounding_box()


def chart_ink(page, selector: str) -> int:
    """Pixels of the chart drawn in a series colour (blue-ish): grows as the curve is drawn."""
    return page.evaluate("""sel => {
        const c = document.querySelector(sel), d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0;
        for (let i = 0; i < d.length; i += 4) if (d[i + 2] > 150 && d[i] < 140 && d[i + 3] > 0) n++;
        return n;
    }""", selector)


def test_train_one_epoch_updates_the_page(page, server):
    page.goto(server[1] + "/train")
    page.wait_for_selector("#dataset option[value=tiny]", state="attached")
    before = chart_ink(page, "#loss-chart")
    page.select_option("#dataset", "tiny")
    page.fill("#limit", "")
    page.fill("#epochs", "1")
    page.fill("#batch_size", "8")
    page.fill("#val_split", "0.25")
    page.select_option("#schedule", "none")
    page.click("#start")
    page.wait_for_function("document.querySelector('#state').textContent === 'finished'")
    page.wait_for_function("document.querySelectorAll('#strip .pred div').length === 60")  # 20 images, top-3
    assert page.inner_text("#s-seen") == "72" and page.inner_text("#s-epoch") == "1/1"
    assert page.inner_text("#s-val").endswith("%")
    page.wait_for_timeout(100)  # the chart redraws on the next animation frame
    assert chart_ink(page, "#loss-chart") > before + 50 and chart_ink(page, "#acc-chart") > 50
    assert page.locator("#kernels canvas").count() == 6
    assert page.locator("#activations .lrow").count() >= 10
    assert page.is_disabled("#pause") and page.is_enabled("#start")
    page.wait_for_selector("#params-table tr:nth-child(4)")  # every layer's weights and gradients
    assert page.locator("#w-view canvas").count() >= 1 and page.locator("#g-view canvas").count() >= 1
    page.click("#use")
    page.wait_for_function("document.querySelector('.model-badge').textContent.includes('training job')")
    server[0].state.web.reset_model()  # the other tests expect the shipped LeNet-5
    page.click("#save")
    page.wait_for_function("document.querySelector('#saved').textContent.startsWith('Saved')")
    page.select_option("#model", "spec")
    page.fill("#spec", "{\"layers\": [{\"type\": \"fc\", \"units\": 3}]}")
    page.click("#start")
    page.wait_for_selector("#error.show")
    assert "needs 10 units" in page.inner_text("#error") and page.text_content("#state") == "finished"
    assert [e for e in page.errors if "status of 422" not in e] == []  # the refused start is the only error


def test_draw_a_stroke_shows_probabilities(page, server):
    page.goto(server[1] + "/draw")
    page.wait_for_selector("#pad")
    box = page.locator("#pad").bounding_box()
    page.mouse.move(box["x"] + 0.5 * box["width"], box["y"] + 0.15 * box["height"])
    page.mouse.down()
    for t in np.linspace(0.15, 0.85, 8):  # a vertical stroke: a "1"
        page.mouse.move(box["x"] + 0.52 * box["width"], box["y"] + t * box["height"], steps=3)
    page.mouse.up()
    page.wait_for_function("document.querySelector('#pred').textContent !== '–'")
    probs = [float(v) for v in page.eval_on_selector_all("#probs .bar", "rows => rows.map(r => r.dataset.prob)")]
    assert len(probs) == 10 and abs(sum(probs) - 1) < 1e-6
    assert page.inner_text("#pred") == str(int(np.argmax(probs)))
    assert page.locator("#activations .lrow").count() >= 10
    assert page.get_attribute("#prepared", "src").startswith("data:image/png")
    page.click("#clear")
    assert page.inner_text("#pred") == "–"
    assert page.errors == []


def test_click_a_feature_map_pixel_shows_the_engines_sum(page, server):
    from convlens.data import load
    from convlens.web import explain as X

    app, url = server
    page.goto(url + "/explain")
    page.wait_for_selector("#calc-z")
    page.click("#samples img[data-index='5']")
    page.wait_for_selector("#samples img.selected[data-index='5']")
    page.click("#layers canvas[data-layer='conv2'][data-channel='3']")
    page.wait_for_function("document.querySelector('#detail-title').textContent.startsWith('conv2')")
    big = box(page, "#big-map")
    y, x = 6, 2  # click the centre of cell (6, 2) of the 10×10 map
    page.mouse.click(big["x"] + (x + 0.5) * big["width"] / 10, big["y"] + (y + 0.5) * big["height"] / 10)
    page.wait_for_function("document.querySelector('#calc-head').textContent.includes('(y 6, x 2)')")

    h = app.state.web.handle
    traces = X.trace(h.model, h.normalise(load("mnist-mini", train=False).images[5]), h.input_shape)
    i, conv2 = next((i, t) for i, t in enumerate(traces) if t.name == "conv2")
    engine = float(conv2.output[3, y, x])
    shown = float(page.inner_text("#calc-z").replace("−", "-"))
    assert abs(shown - engine) <= 1e-5 * abs(engine) + 1e-6
    assert abs(float(page.get_attribute("#calc-z", "data-value")) - engine) <= 1e-5 * abs(engine)
    relu = float(page.inner_text("#calc-act").replace("−", "-"))
    assert abs(relu - float(traces[i + 1].output[3, y, x])) <= 1e-5 * abs(engine) + 1e-6
    assert page.locator("#calc .chan").count() == 6  # pool1's six channels, each patch ⊙ kernel = products
    page.click("#layers canvas[data-layer='pool1'][data-channel='1']")
    page.wait_for_function("document.querySelector('#equation').textContent.includes('avg pooling')")
    assert page.errors == []


def test_playground_stride_changes_output_size(page, server):
    page.goto(server[1] + "/playground")
    page.wait_for_selector("#out-size")
    assert page.inner_text("#out-size") == "128×128"
    page.fill("#stride", "2")
    page.dispatch_event("#stride", "change")
    page.wait_for_function("document.querySelector('#out-size').textContent === '64×64'")
    assert "(128 − 3 + 2·1)/2 + 1 = 64" in page.inner_text("#formula-w")
    page.select_option("#kernel", "laplacian")
    page.wait_for_function("document.querySelector('#kernel-view').textContent.includes('−4.000')")
    page.fill("#numbers", "1 2\n3")
    page.wait_for_selector("#error.show")
    assert "rows of equal length" in page.inner_text("#error")
    assert page.errors == []


# ---- issue 18: every screen size, rendering bugs, the new views ----------------------------------------------
READY = {"/": ".tiles", "/train": "#model option[value=lenet5]", "/explain": "#calc-z", "/draw": "#pad",
         "/playground": "#out-size", "/shift": "#shift-table tr[data-layer]", "/no-such-page": "h1"}


@pytest.mark.parametrize("width,height", [(390, 844), (800, 900), (1024, 768), (1440, 900)])
def test_no_page_is_wider_than_the_viewport(browser, server, width, height):
    context = browser.new_context(viewport={"width": width, "height": height}, bypass_csp=True)
    pg = context.new_page()
    pg.set_default_timeout(20_000)
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.on("console", lambda m: errors.append(m.text) if m.type == "error" and "404" not in m.text else None)
    try:
        from convlens.web.app import PAGES

        for path in [*PAGES, "/no-such-page"]:  # every registered page, the others' too
            pg.goto(server[1] + path)
            pg.wait_for_selector(READY.get(path, "main > *"), state="attached")
            pg.wait_for_timeout(150 if path in READY else 600)  # late layout (charts, maps)
            sw, iw = pg.evaluate("[document.documentElement.scrollWidth, innerWidth]")
            assert sw <= iw, f"{path} at {width} px is {sw} px wide"
            # the navigation is not cut off, and (Explain) every layer of the overview is on the page
            right = pg.evaluate("Math.max(...[...document.querySelectorAll('header.top nav a, #layers .layer')]"
                                ".map(e => e.getBoundingClientRect().right))")
            assert right <= iw + 0.5, f"{path} at {width} px: something ends at {right}"
        assert errors == []
    finally:
        context.close()


def test_diverging_run_keeps_the_page_working(page, server):
    page.goto(server[1] + "/train")
    page.wait_for_selector("#dataset option[value=tiny]", state="attached")
    page.select_option("#dataset", "tiny")
    for k, v in (("#limit", ""), ("#epochs", "3"), ("#batch_size", "8"), ("#val_split", "0"), ("#lr", "1000000")):
        page.fill(k, v)
    page.select_option("#optimizer", "sgd")
    page.select_option("#schedule", "none")
    page.click("#start")
    page.wait_for_function("document.querySelector('#state').textContent === 'failed'")
    assert "training stopped" in page.inner_text("#error")
    page.wait_for_timeout(300)
    assert page.errors == []  # no JSON parse error from a NaN in the event stream
    assert page.is_enabled("#start")
    page.fill("#lr", "0.003")
    page.select_option("#optimizer", "adam")
    page.fill("#epochs", "1")
    page.click("#start")
    page.wait_for_function("document.querySelector('#state').textContent === 'finished'")
    assert page.errors == []


def test_live_hyper_parameters_from_the_page(page, server):
    page.goto(server[1] + "/train")
    page.wait_for_selector("#dataset option[value=tiny]", state="attached")
    page.select_option("#dataset", "tiny")
    for k, v in (("#limit", ""), ("#epochs", "300"), ("#batch_size", "8"), ("#val_split", "0.25")):
        page.fill(k, v)
    page.click("#start")
    page.wait_for_function("document.querySelector('#state').textContent === 'running'")
    page.fill("#lr", "0.0005")
    page.wait_for_function("document.querySelector('#live-note').textContent.includes('0.0005')")
    assert server[0].state.web.jobs.job.optimizer.param_groups[0]["lr"] == 0.0005
    page.click("#stop")
    page.wait_for_function("document.querySelector('#state').textContent === 'stopped'")
    assert page.errors == []


def test_explain_views(page, server):
    page.goto(server[1] + "/explain")
    page.wait_for_selector("#calc-z")
    # the receptive field of the picked conv1 value is drawn on the input
    page.wait_for_selector("#rf-box:not(.hidden)")
    assert "Receptive field" in page.inner_text("#rf-note")
    # pooling: no literal "null" under the explanation
    page.click("#layers canvas[data-layer='pool1'][data-channel='1']")
    page.wait_for_function("document.querySelector('#equation').textContent.includes('avg pooling')")
    assert "null" not in page.inner_text("#detail-card")
    # the maps a conv2 value came from are marked in the overview
    page.click("#layers canvas[data-layer='conv2'][data-channel='0']")
    page.wait_for_function("document.querySelectorAll('#layers canvas.source').length === 6")
    assert page.locator("#layers svg.edges path").count() == 6  # an edge from each of pool1's maps
    # the loss axis labels stay short (a diverged loss once showed as '000000', cut off)
    assert page.evaluate("[1234567, 25000, 0.5, 3e12].map(CL.LineChart.tick)") == ["1.2M", "25k", "0.5", "3e+12"]
    # the animated sliding window
    page.click("#animate")
    page.wait_for_function("document.querySelector('#anim-note').textContent.includes('output (y')")
    page.click("#animate")
    # a 1×1 conv (LeNet-5's conv3) and a fully connected layer can be clicked
    strip = box(page, "#layers canvas[data-layer='conv3']")
    # the first 64 of conv3's 120 channels are drawn, one cell each
    page.mouse.click(strip["x"] + strip["width"] * (7.5 / 64), strip["y"] + strip["height"] / 2)
    page.wait_for_function("document.querySelector('#detail-title').textContent.startsWith('conv3 (Conv2d) · channel 7')")
    page.wait_for_selector("#calc-z")
    strip = box(page, "#layers canvas[data-layer='fc2']")
    page.mouse.click(strip["x"] + strip["width"] * (3.5 / 10), strip["y"] + strip["height"] / 2)
    page.wait_for_function("document.querySelector('#detail-title').textContent.startsWith('fc2 (Linear) · unit 3')")
    page.wait_for_selector("#calc-p")
    z, engine = float(page.get_attribute("#calc-z", "data-value")), float(page.get_attribute("#calc-engine", "data-value"))
    assert abs(z - engine) <= 1e-5 * max(1.0, abs(engine))
    # the softmax table's Σ e^(z − m) ≥ 1 (the top class contributes e^0 = 1)
    assert float(page.inner_text("#softmax-sum")) >= 1
    # one class's images at a time, by page
    page.select_option("#class-pick", "4")
    page.wait_for_function("[...document.querySelectorAll('#samples img')].every(i => i.title.endsWith(': 4'))")
    page.click("#next")
    page.wait_for_function("document.querySelector('#page-note').textContent.startsWith('49')")
    assert page.errors == []


def test_cifar_checkpoint_in_explain_and_draw(page, server):
    page.goto(server[1] + "/explain")
    page.wait_for_selector("#calc-z")
    page.select_option("#ckpt", "convnetjs-cifar10")
    page.click("#ckpt-use")
    page.wait_for_function("document.querySelector('.model-badge').textContent.includes('convnetjs-cifar10')")
    page.wait_for_function("document.querySelector('#samples-note').textContent.startsWith('cifar10 test images')")
    page.wait_for_function("document.querySelector('#input-kv').textContent.includes('3×32×32')")
    # the probability bars are relabelled with the new model's classes (they were left as digits)
    page.wait_for_function("document.querySelector('#probs .bar .lbl').textContent === 'airplane'")
    page.goto(server[1] + "/draw")
    page.wait_for_function("document.querySelector('#draw-title').textContent.includes('3×32×32')")
    assert "digit" not in page.inner_text("#draw-title")
    page.goto(server[1] + "/explain")
    page.wait_for_selector("#calc-z")
    page.click("#reset")
    page.wait_for_function("document.querySelector('.model-badge').textContent.includes('lenet5-mnist-mini')")
    assert page.errors == []


def test_draw_has_no_broken_image_before_the_first_stroke(page, server):
    page.goto(server[1] + "/draw")
    page.wait_for_selector("#pad")
    page.wait_for_timeout(200)
    assert page.get_attribute("#prepared", "src") is None
    assert page.evaluate("getComputedStyle(document.querySelector('#prepared')).visibility") == "hidden"
    assert page.inner_text("#draw-title") == "Draw a digit"


def test_shift_page_shows_equivariance(page, server):
    page.goto(server[1] + "/shift")
    page.wait_for_selector("#shift-table tr[data-layer='conv1']")
    page.fill("#dx", "4")
    page.dispatch_event("#dx", "input")
    page.wait_for_function("document.querySelector('#shift-note').textContent.includes('moved 4 px right')")
    page.wait_for_function("document.querySelector('#shift-table tr[data-layer=conv1] .moved').textContent === '0.0%'")
    assert page.locator("#shift-rows .lrow").count() >= 6
    assert page.errors == []


def test_unknown_url_shows_a_page(page, server):
    r = page.goto(server[1] + "/no/such/page")
    assert r.status == 404
    assert page.inner_text("h1") == "Page not found" and page.locator("header.top nav a").count() >= 5


def test_train_page_shows_a_data_set_loading(page, server, monkeypatch, tiny):
    """A data set that takes a while (CIFAR-10's first load): a progress line with the phase, Start
    disabled until it is ready, then its size."""
    import threading

    from convlens.web.state import DataRegistry

    gate = threading.Event()
    original = DataRegistry._load

    def slow(name, source, phase=lambda text: None):
        if name == "slow":
            phase("decoding the training images")
            gate.wait(30)
            return tiny[0], tiny[1], True
        return original(name, source, phase)

    monkeypatch.setattr(DataRegistry, "_load", staticmethod(slow))
    registry = server[0].state.web.registry
    registry._sources["slow"] = "/not/read/here"
    try:
        page.goto(server[1] + "/train")
        page.wait_for_selector("#dataset option[value=slow]", state="attached")
        page.select_option("#dataset", "slow")
        page.wait_for_function("document.querySelector('#ds-note').textContent.startsWith("
                               "'Loading slow: decoding the training images')")
        assert page.is_disabled("#start") and page.is_visible("#ds-progress .progress")
        gate.set()
        page.wait_for_function("document.querySelector('#ds-desc').textContent.includes('1×28×28 images')")
        assert page.is_enabled("#start") and not page.is_visible("#ds-progress")
        assert page.errors == []
    finally:
        gate.set()
        registry._sources.pop("slow", None)
