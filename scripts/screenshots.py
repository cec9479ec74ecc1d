"""Screenshots of the four pages of the web app, for docs/screenshots/ (train, explain, draw, playground).

    python scripts/screenshots.py [--out docs/screenshots] [--chromium /usr/bin/chromium]

Starts the app (the shipped checkpoint; training runs go to a temporary folder) on a free port, drives
Chromium headless with Playwright and saves one PNG per page after exercising it: a short LeNet-5
training run, a clicked feature-map pixel, a drawn digit, the Sobel-x kernel.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


def draw_digit(page, selector: str = "#pad") -> None:
    """A '3'-like stroke with the mouse."""
    box = page.locator(selector).bounding_box()
    x0, y0, w = box["x"], box["y"], box["width"]
    pts = [(0.3, 0.22), (0.5, 0.16), (0.68, 0.25), (0.62, 0.42), (0.45, 0.5), (0.64, 0.58), (0.7, 0.75),
           (0.52, 0.86), (0.3, 0.8)]
    page.mouse.move(x0 + pts[0][0] * w, y0 + pts[0][1] * w)
    page.mouse.down()
    for px, py in pts[1:]:
        page.mouse.move(x0 + px * w, y0 + py * w, steps=6)
    page.mouse.up()


def main(argv=None) -> int:
    from playwright.sync_api import sync_playwright

    from convlens.web.app import create_app
    from convlens.web.server import BackgroundServer

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(REPO / "docs" / "screenshots"))
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--images", type=int, default=1500, help="training images for the Train screenshot")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as runs, BackgroundServer(create_app(runs_dir=runs, snapshot_interval=0.5)) as url, \
            sync_playwright() as p:
        browser = p.chromium.launch(executable_path=args.chromium, args=ARGS)
        page = browser.new_page(viewport={"width": 1440, "height": 1000}, device_scale_factor=1, bypass_csp=True)

        page.goto(url + "/train")
        page.wait_for_selector("#model option", state="attached")
        page.fill("#limit", str(args.images))
        page.fill("#epochs", "2")
        page.click("#start")
        page.wait_for_function("document.querySelector('#state').textContent === 'finished'", timeout=180_000)
        page.wait_for_timeout(600)
        page.screenshot(path=str(out / "train.png"), full_page=True)

        page.goto(url + "/explain")
        page.wait_for_selector("#calc-z")
        page.click("#layers canvas[data-layer='conv2'][data-channel='3']")
        page.wait_for_function("document.querySelector('#detail-title').textContent.startsWith('conv2')")
        page.wait_for_selector("#calc-z")
        page.wait_for_timeout(300)
        page.screenshot(path=str(out / "explain.png"), full_page=True)

        page.goto(url + "/draw")
        page.wait_for_selector("#pad")
        page.wait_for_timeout(400)
        draw_digit(page)
        page.wait_for_function("document.querySelector('#pred').textContent !== '–'")
        page.wait_for_timeout(500)
        page.screenshot(path=str(out / "draw.png"), full_page=True)

        page.goto(url + "/playground")
        page.wait_for_selector("#out-size")
        page.wait_for_timeout(300)
        page.screenshot(path=str(out / "playground.png"), full_page=True)
        browser.close()
    for name in ("train", "explain", "draw", "playground"):
        print(out / f"{name}.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
