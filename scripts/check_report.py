#!/usr/bin/env python3
"""Open an ``atlasgrn report`` page in headless Chromium and check that its figures render.

    python scripts/check_report.py report.html [--screenshot shot.png] [--window 1280,4000]

Three checks, exit 0 when all pass, 1 with one line per failure otherwise (2: Chromium absent
or the file unreadable):

1. the page is self-contained: it has figures (``<img src="data:image/png;base64,...">``) and no
   ``src=``/``href=`` pointing at ``http(s)://`` (Chromium also runs with every host name
   unresolvable, so nothing could be fetched anyway);
2. Chromium decoded every figure: a copy of the page (in a temporary directory; the report
   itself has no script) gets a few lines of JavaScript that, after ``load``, record each
   image's natural size and its position on the page; ``--dump-dom`` prints them;
3. the figures are visible: a screenshot at the same window size is cut at those positions and
   each figure inside the window must be neither blank nor one flat colour (pixel spread and
   share of non-white pixels above a floor).
"""

from __future__ import annotations

import argparse
import html
import json
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--force-device-scale-factor=1",
         "--host-resolver-rules=MAP * ~NOTFOUND")
FIGURE = '<img src="data:image/png;base64,'
EXTERNAL = re.compile(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", re.IGNORECASE)
#: A rendered figure: pixel standard deviation (0-1 scale) and share of non-white pixels.
MIN_STD = 0.03
MIN_INK = 0.01
PROBE = """
<script>
window.addEventListener("load", function () {
  var out = [];
  document.querySelectorAll("img").forEach(function (im) {
    var r = im.getBoundingClientRect();
    out.push({complete: im.complete, w: im.naturalWidth, h: im.naturalHeight,
              x: r.left + window.scrollX, y: r.top + window.scrollY,
              width: r.width, height: r.height});
  });
  var pre = document.createElement("pre");
  pre.id = ["atlasgrn", "probe"].join("-");
  pre.textContent = JSON.stringify({images: out,
                                    height: document.documentElement.scrollHeight});
  pre.style.display = "none";
  document.body.appendChild(pre);
});
</script>
"""


def chromium(binary: str, window: str, profile: Path, *args: str, timeout: float = 120.0
             ) -> subprocess.CompletedProcess:
    cmd = [binary, *FLAGS, f"--user-data-dir={profile}", f"--window-size={window}", *args]
    return subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=timeout)


def probe_images(binary: str, page: str, window: str, work: Path) -> dict:
    """Each image's decode state and page rectangle (``images``) and the page's height, from a
    probed copy of the page."""
    probed = work / "probed.html"
    probed.write_text(page.replace("</body>", PROBE + "</body>", 1), encoding="utf-8")
    done = chromium(binary, window, work / "profile-dom", "--dump-dom", probed.as_uri())
    found = re.search(r'<pre id="atlasgrn-probe"[^>]*>(.*?)</pre>', done.stdout, re.DOTALL)
    if not found:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"chromium --dump-dom gave no probe result (exit "
                           f"{done.returncode}: {tail})")
    return json.loads(html.unescape(found.group(1)))


def screenshot(binary: str, report: Path, window: str, shot: Path, work: Path) -> None:
    done = chromium(binary, window, work / "profile-shot", f"--screenshot={shot}",
                    report.resolve().as_uri())
    if not shot.is_file():
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"chromium wrote no screenshot (exit {done.returncode}: {tail})")


def load_rgb(path: Path):
    """The screenshot as a float array (height, width, 3) in [0, 1]."""
    import matplotlib.image as mpimg

    pixels = mpimg.imread(str(path))
    if pixels.dtype.kind in "ui":
        pixels = pixels / 255.0
    return pixels[..., :3]


def check_regions(pixels, images: list[dict]) -> tuple[list[str], int]:
    """Failures for figures inside the screenshot that look blank; and how many were seen."""
    height, width = pixels.shape[:2]
    failures, seen = [], 0
    for i, im in enumerate(images, 1):
        top, left = round(im["y"]), round(im["x"])
        bottom = min(height, round(im["y"] + im["height"]))
        right = min(width, round(im["x"] + im["width"]))
        if top >= height or bottom - top < 20 or right - left < 20:
            continue  # below the window: decoded (checked) but not in the picture
        seen += 1
        region = pixels[top:bottom, left:right]
        spread = float(region.std())
        ink = float((region.min(axis=2) < 0.9).mean())
        if spread < MIN_STD or ink < MIN_INK:
            failures.append(f"figure {i} at y={top} looks blank in the screenshot "
                            f"(pixel std {spread:.3f}, non-white {ink:.1%})")
    return failures, seen


def quantize(path: Path) -> None:
    """Rewrite a PNG with a 256-colour palette (a screenshot for docs: a few hundred KB)."""
    from PIL import Image

    with Image.open(path) as im:
        small = im.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    small.save(path, optimize=True)


@dataclass
class Result:
    failures: list[str]
    figures: int = 0          # embedded in the page
    in_window: int = 0        # inside the screenshot, checked for pixels
    page_height: int = 0


def check(report: Path, *, window: str = "1280,4000", shot: Path | None = None,
          binary: str = CHROMIUM, small: bool = False) -> Result:
    """What failed (nothing: the report renders), and what was seen; see the module
    docstring."""
    page = report.read_text(encoding="utf-8")
    failures = []
    n_figures = page.count(FIGURE)
    if n_figures == 0:
        failures.append("the page has no embedded PNG figure")
    external = EXTERNAL.findall(page)
    if external:
        failures.append(f"the page references {len(external)} external resource(s), e.g. "
                        f"{external[0]!r}")
    with tempfile.TemporaryDirectory(prefix="atlasgrn-check-") as tmp:
        work = Path(tmp)
        probed = probe_images(binary, page, window, work)
        images = probed["images"]
        if len(images) != n_figures:
            failures.append(f"chromium saw {len(images)} image(s), the page embeds {n_figures}")
        for i, im in enumerate(images, 1):
            if not im["complete"] or im["w"] < 50 or im["h"] < 50:
                failures.append(f"figure {i} did not decode (natural size {im['w']}x{im['h']})")
        target = shot or work / "screenshot.png"
        screenshot(binary, report, window, target, work)
        region_failures, seen = check_regions(load_rgb(target), images)
        failures += region_failures
        if n_figures and seen == 0:
            failures.append(f"no figure lies inside the {window} window")
        if small and shot is not None:
            quantize(shot)
    return Result(failures, n_figures, seen, int(probed.get("height", 0)))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("report", type=Path, help="the report.html to open")
    ap.add_argument("--screenshot", type=Path, default=None,
                    help="keep the screenshot here (default: a temporary file)")
    ap.add_argument("--window", default="1280,4000", help="WIDTH,HEIGHT of the window")
    ap.add_argument("--chromium", default=CHROMIUM, help="the Chromium binary")
    ap.add_argument("--small", action="store_true",
                    help="save the screenshot with a 256-colour palette (for docs)")
    args = ap.parse_args(argv)
    if not (Path(args.chromium).is_file() or shutil.which(args.chromium)):
        print(f"check_report: {args.chromium} not found (install Debian's chromium)",
              file=sys.stderr)
        return 2
    if not args.report.is_file():
        print(f"check_report: {args.report}: no such file", file=sys.stderr)
        return 2
    try:
        result = check(args.report, window=args.window, shot=args.screenshot,
                         binary=args.chromium, small=args.small)
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        print(f"check_report: FAIL: {exc}", file=sys.stderr)
        return 1
    if result.failures:
        for f in result.failures:
            print(f"check_report: FAIL: {f}", file=sys.stderr)
        return 1
    where = f"; screenshot {args.screenshot}" if args.screenshot else ""
    below = result.figures - result.in_window
    print(f"check_report: OK: {result.figures} figure(s) decoded by Chromium, "
          f"{result.in_window} inside the {args.window} window and not blank"
          + (f" ({below} below it: the page is {result.page_height} px tall)" if below else "")
          + where)
    return 0


if __name__ == "__main__":
    sys.exit(main())
