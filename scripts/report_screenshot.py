#!/usr/bin/env python
"""Regenerate ``docs/report.png``: the report on ``sample_runs/``, as headless Chromium shows it.

Uses the same browser as the tests (Debian's ``chromium`` driven by playwright) with the network
blocked. The PNG is palette-quantised with Pillow when available to keep it small.

Usage::

    python scripts/report_screenshot.py [LOGDIR] [--out docs/report.png] [--run RUN]
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _shrink(png: bytes) -> bytes:
    try:
        from PIL import Image
    except ImportError:
        return png
    image = Image.open(io.BytesIO(png)).convert("RGB")
    quantised = image.quantize(
        colors=128, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE
    )
    out = io.BytesIO()
    quantised.save(out, format="PNG", optimize=True)
    return out.getvalue() if out.tell() < len(png) else png


def _stack(parts: list[bytes]) -> bytes:
    if len(parts) == 1:
        return parts[0]
    from PIL import Image

    images = [Image.open(io.BytesIO(p)).convert("RGB") for p in parts]
    width = max(i.width for i in images)
    canvas = Image.new(
        "RGB", (width, sum(i.height for i in images) + 6 * (len(images) - 1)), (200, 204, 212)
    )
    y = 0
    for image in images:
        canvas.paste(image, (0, y))
        y += image.height + 6
    out = io.BytesIO()
    canvas.save(out, format="PNG")
    return out.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("logdir", nargs="?", default=str(ROOT / "sample_runs"))
    parser.add_argument("--out", default=str(ROOT / "docs" / "report.png"))
    parser.add_argument("--run", default=None, help="also show this run's section (a regex)")
    parser.add_argument("--label", default=None, help="LOGDIR as shown in the report header")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=1000, help="height of the top part")
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    import tbreport
    from tbreport.diagnosis import diagnose
    from tbreport.outputs import atomic_write_bytes
    from tbreport.report import render_report

    result = tbreport.read(args.logdir)
    shown = Path(args.logdir).resolve()
    label = f"{shown.relative_to(ROOT)}/" if shown.is_relative_to(ROOT) else str(args.logdir)
    html = render_report(result, diagnose(result), logdir=args.label or label)
    with tempfile.TemporaryDirectory() as tmp:
        page_path = Path(tmp) / "report.html"
        page_path.write_text(html, encoding="utf-8")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS
            )
            page = browser.new_page(viewport={"width": args.width, "height": args.height})
            page.route(
                "**/*",
                lambda route: (
                    route.continue_()
                    if route.request.url.startswith(("file:", "data:", "about:"))
                    else route.abort()
                ),
            )
            page.goto(page_path.as_uri(), wait_until="load")
            if args.run:
                page.fill("#run-filter", args.run)
            page.evaluate("window.tbreport.renderAll()")
            page.wait_for_timeout(800)
            parts = [page.screenshot(full_page=False)]
            # Then the loss chart of the first run with an error or warning (marks included).
            section = page.query_selector(
                "section.run:has(.badge.error), section.run:has(.badge.warning)"
            )
            if section is not None:
                page.evaluate("document.querySelector('header.top').style.position = 'static'")
                top, bottom = section.evaluate(
                    """s => {
                        const chart = s.querySelector('figure.chart') || s;
                        const y = window.scrollY;
                        return [s.getBoundingClientRect().top + y,
                                chart.getBoundingClientRect().bottom + y];
                    }"""
                )
                parts.append(
                    page.screenshot(
                        full_page=True,
                        clip={
                            "x": 0,
                            "y": top - 8,
                            "width": args.width,
                            "height": min(bottom - top + 16, 900),
                        },
                    )
                )
            browser.close()
    data = _shrink(_stack(parts))
    atomic_write_bytes(args.out, data)
    print(f"wrote {args.out} ({len(data) / 1024:.0f} KB)")


if __name__ == "__main__":
    main()
