"""Screenshots of the web app for docs/screenshots/: every page on a desktop (1440 px) and on a phone (390 px).

    python scripts/screenshots.py [--out docs/screenshots] [--chromium /usr/bin/chromium] [--data-root DIR]

Starts the app (the shipped checkpoint; training runs go to a temporary folder; no data sets from disk)
on a free port, drives Chromium headless with Playwright and saves PNGs after exercising each page: the
Train page's default first run (its wall time and validation accuracy are printed), a clicked
feature-map pixel, a drawn digit, the Sobel-x kernel, a 3-pixel shift. While the digit is drawn it
also records the browser's long tasks (main-thread work over 50 ms) and prints them. With
``--data-root`` holding CIFAR-10 and the shipped ``convnetjs-cifar10`` checkpoint, it also shoots the
Explain page with that model (``explain-cifar10.png``).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
LONG_TASKS = """window.__long = [];
new PerformanceObserver((l) => { for (const e of l.getEntries()) window.__long.push(e.duration); })
  .observe({ type: "longtask", buffered: false });"""


def draw_digit(page, selector: str = "#pad") -> None:
    """A '3'-like stroke with the mouse, at about a person's speed."""
    page.locator(selector).scroll_into_view_if_needed()
    box = page.locator(selector).bounding_box()
    x0, y0, w = box["x"], box["y"], box["width"]
    pts = [(0.3, 0.22), (0.5, 0.16), (0.68, 0.25), (0.62, 0.42), (0.45, 0.5), (0.64, 0.58), (0.7, 0.75),
           (0.52, 0.86), (0.3, 0.8)]
    page.mouse.move(x0 + pts[0][0] * w, y0 + pts[0][1] * w)
    page.mouse.down()
    for px, py in pts[1:]:
        page.mouse.move(x0 + px * w, y0 + py * w, steps=8)
        page.wait_for_timeout(60)
    page.mouse.up()


def shoot(page, url: str, out: Path, suffix: str, first_run: bool) -> None:
    page.goto(url + "/train")
    page.wait_for_selector("#model option", state="attached")
    if first_run:  # the defaults as a first-time user gets them: press Start
        t0 = time.time()
        page.click("#start")
        page.wait_for_function("document.querySelector('#state').textContent === 'finished'", timeout=300_000)
        print(f"first run: {time.time() - t0:.1f} s wall to 'finished', validation {page.inner_text('#s-val')}")
        page.wait_for_timeout(1600)  # the weights-and-gradients view refreshes
    page.screenshot(path=str(out / f"train{suffix}.png"), full_page=True)

    page.goto(url + "/explain")
    page.wait_for_selector("#calc-z")
    page.click("#layers canvas[data-layer='conv2'][data-channel='3']")
    page.wait_for_function("document.querySelector('#detail-title').textContent.startsWith('conv2')")
    page.wait_for_selector("#calc-z")
    page.wait_for_timeout(300)
    page.screenshot(path=str(out / f"explain{suffix}.png"), full_page=True)

    page.goto(url + "/draw")
    page.wait_for_selector("#pad")
    page.wait_for_timeout(400)
    page.evaluate(LONG_TASKS)
    draw_digit(page)
    page.wait_for_function("document.querySelector('#pred').textContent !== '–'")
    page.wait_for_timeout(600)
    long = page.evaluate("window.__long")
    print(f"draw{suffix}: long tasks while drawing: {len(long)}, longest {max(long, default=0):.0f} ms")
    page.screenshot(path=str(out / f"draw{suffix}.png"), full_page=True)

    page.goto(url + "/playground")
    page.wait_for_selector("#out-size")
    page.wait_for_timeout(300)
    page.screenshot(path=str(out / f"playground{suffix}.png"), full_page=True)

    page.goto(url + "/shift")
    page.wait_for_selector("#shift-table tr[data-layer]")
    page.fill("#dx", "3")
    page.dispatch_event("#dx", "input")
    page.wait_for_function("document.querySelector('#shift-note').textContent.includes('moved 3 px')")
    page.wait_for_timeout(600)
    page.screenshot(path=str(out / f"shift{suffix}.png"), full_page=True)


def cifar(page, url: str, out: Path) -> None:
    """The Explain page with the shipped CIFAR-10 network on a CIFAR-10 test image."""
    page.goto(url + "/explain")
    page.wait_for_selector("#ckpt option[value=convnetjs-cifar10]", state="attached")
    page.select_option("#ckpt", "convnetjs-cifar10")
    page.click("#ckpt-use")
    page.wait_for_function("document.querySelector('#input-kv').textContent.includes('3×32×32')", timeout=600_000)
    page.wait_for_selector("#calc-z")
    page.click("#samples img:nth-child(4)")
    page.wait_for_timeout(1500)
    page.screenshot(path=str(out / "explain-cifar10.png"), full_page=True)
    page.click("#reset")
    page.wait_for_timeout(500)


def main(argv=None) -> int:
    from playwright.sync_api import sync_playwright

    from convlens.web.app import create_app
    from convlens.web.server import BackgroundServer

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(REPO / "docs" / "screenshots"))
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--data-root", action="append", default=[], help="where to find CIFAR-10 for explain-cifar10.png")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as runs, \
            BackgroundServer(create_app(runs_dir=runs, snapshot_interval=0.75, data_roots=args.data_root)) as url, \
            sync_playwright() as p:
        browser = p.chromium.launch(executable_path=args.chromium, args=ARGS)
        desktop = browser.new_page(viewport={"width": 1440, "height": 1000}, device_scale_factor=1, bypass_csp=True)
        shoot(desktop, url, out, "", first_run=True)
        phone = browser.new_page(viewport={"width": 390, "height": 844}, device_scale_factor=1, is_mobile=True,
                                 has_touch=True, bypass_csp=True)
        shoot(phone, url, out, "-phone", first_run=False)
        if args.data_root:
            cifar(desktop, url, out)
        browser.close()
    for f in sorted(out.glob("*.png")):
        print(f)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
