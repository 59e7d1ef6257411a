"""The report as a browser shows it: a headless-Chromium check and screenshot (issue 15).

:func:`render_page` opens a report in headless Chromium with JavaScript **off** and the
network **blocked** (any request that is not the file itself or a ``data:`` URI is
recorded and refused), waits for it to load, and returns what it saw: each image's
decoded size and how much its pixels vary (an empty or blank figure shows up as 0), the
section headings, the requests it refused, and a full-page PNG screenshot. The test of
the report (``tests/test_audit_report.py``) asserts on it, and
``python -m miakit.audit.browser REPORT.html SHOT.png`` makes the screenshot the README
shows.

It needs Playwright's Python package (``pip install playwright``, in the ``dev`` extra)
and a Chromium: ``$MIAKIT_CHROMIUM``, else ``chromium`` / ``chromium-browser`` /
``google-chrome`` on the ``PATH`` (Debian: ``apt-get install chromium``), else the one
``playwright install chromium`` downloads.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["BrowserMissing", "PageView", "find_chromium", "render_page"]

#: Chromium flags for a headless run on a machine with a closed network.
FLAGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)

NAMES = ("chromium", "chromium-browser", "google-chrome", "chrome")


class BrowserMissing(RuntimeError):
    """Playwright or a Chromium is not installed (the message says how to install them)."""


@dataclass(frozen=True)
class PageView:
    """What headless Chromium showed of a page.

    Attributes:
        title: the page's title.
        headings: the text of every ``h1`` / ``h2``, in order.
        images: per ``<img>``: ``alt``, decoded ``width`` and ``height`` (0 when it did
            not decode) and ``spread``, the standard deviation of its rendered pixels
            (0 for a blank image).
        refused: URLs of requests the page tried beyond itself and ``data:`` URIs.
        screenshot: the full page as PNG bytes.
    """

    title: str
    headings: list[str]
    images: list[dict[str, object]]
    refused: list[str]
    screenshot: bytes


def find_chromium() -> str | None:
    """The Chromium to use (see the module docstring), or ``None`` (then Playwright's)."""
    given = os.environ.get("MIAKIT_CHROMIUM")
    if given:
        return given
    return next((found for name in NAMES if (found := shutil.which(name))), None)


def _spread(png: bytes) -> float:
    from PIL import Image

    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("L"), dtype=np.float64)
    return float(pixels.std())


def render_page(path: str | Path, *, width: int = 1100) -> PageView:
    """Open ``path`` in headless Chromium, JavaScript off and network blocked.

    Raises:
        BrowserMissing: Playwright or Chromium is not installed.
        FileNotFoundError: ``path`` does not exist.
    """
    page_path = Path(path).resolve()
    if not page_path.is_file():
        raise FileNotFoundError(f"no report at {page_path}")
    try:
        from playwright.sync_api import Error, sync_playwright
    except ImportError as exc:
        raise BrowserMissing(
            "rendering the report needs Playwright: pip install playwright"
        ) from exc
    url = page_path.as_uri()
    refused: list[str] = []

    def route(r: Any) -> Any:  # a Playwright Route
        if r.request.url == url or r.request.url.startswith("data:"):
            return r.continue_()
        refused.append(r.request.url)
        return r.abort()

    with sync_playwright() as p:
        try:
            browser = p.chromium.launch(executable_path=find_chromium(), args=list(FLAGS))
        except Error as exc:
            raise BrowserMissing(
                "no Chromium found: install one (Debian: apt-get install chromium), set "
                f"MIAKIT_CHROMIUM to its path, or run `playwright install chromium` ({exc})"
            ) from exc
        try:
            page = browser.new_page(
                viewport={"width": width, "height": 900}, java_script_enabled=False
            )
            page.route("**/*", route)
            page.goto(url, wait_until="load")
            images = []
            for element in page.locator("img").all():
                size = element.evaluate("i => [i.complete, i.naturalWidth, i.naturalHeight]")
                shot = element.screenshot() if size[1] else b""
                images.append(
                    {
                        "alt": element.get_attribute("alt") or "",
                        "width": int(size[1]),
                        "height": int(size[2]),
                        "spread": _spread(shot) if shot else 0.0,
                    }
                )
            return PageView(
                title=page.title(),
                headings=[h.strip() for h in page.locator("h1, h2").all_inner_texts()],
                images=images,
                refused=refused,
                screenshot=page.screenshot(full_page=True),
            )
        finally:
            browser.close()


def main(argv: list[str] | None = None) -> int:
    """``python -m miakit.audit.browser REPORT.html SHOT.png [--width W] [--height H]``."""
    parser = argparse.ArgumentParser(description="screenshot an audit report")
    parser.add_argument("report")
    parser.add_argument("png")
    parser.add_argument("--width", type=int, default=1100)
    parser.add_argument("--height", type=int, help="crop the page to this many pixels")
    args = parser.parse_args(argv)
    view = render_page(args.report, width=args.width)
    shot = view.screenshot
    if args.height:
        from PIL import Image

        image = Image.open(io.BytesIO(shot))
        buffer = io.BytesIO()
        image.crop((0, 0, image.width, min(args.height, image.height))).save(buffer, "PNG")
        shot = buffer.getvalue()
    Path(args.png).write_bytes(shot)
    print(f"{args.png}: {len(view.images)} figures, {len(view.refused)} requests refused")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
