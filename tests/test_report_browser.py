"""The report renders in a real browser: scripts/check_report.py opens it in headless Chromium
(skipped with a reason where Debian's chromium is not installed)."""

from __future__ import annotations

import base64
import re
import subprocess
import sys
from pathlib import Path

import pytest

from atlasgrn.cli import main

CHROMIUM = Path("/usr/bin/chromium")
SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "check_report.py"

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(),
                                reason=f"{CHROMIUM} is absent (apt-get install chromium)")


@pytest.fixture(scope="module")
def report(demo_run, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("browser") / "report.html"
    assert main(["report", str(demo_run), "--out", str(out)]) == 0
    return out


def _check(path: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), str(path), *extra], check=False,
                          capture_output=True, text=True, timeout=300)


def test_figures_decode_and_show_in_chromium(report, tmp_path):
    shot = tmp_path / "shot.png"
    done = _check(report, "--screenshot", str(shot))
    assert done.returncode == 0, done.stderr
    assert "check_report: OK: 3 figure(s) decoded by Chromium" in done.stdout
    assert shot.read_bytes().startswith(b"\x89PNG") and shot.stat().st_size > 50_000


def test_a_broken_figure_fails_the_check(report, tmp_path):
    broken = tmp_path / "broken.html"
    page = report.read_text(encoding="utf-8")
    junk = base64.b64encode(b"not a png at all" * 40).decode()
    broken.write_text(re.sub(r"(data:image/png;base64,)[A-Za-z0-9+/=]+", rf"\g<1>{junk}", page,
                             count=1), encoding="utf-8")
    done = _check(broken)
    assert done.returncode == 1
    assert "figure 1 did not decode" in done.stderr
