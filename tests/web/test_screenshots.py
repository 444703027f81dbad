"""``make screenshots`` (the README's pictures of the page) keeps working: the demo, run as a
user runs it, signs in with headless Chromium and saves both pictures at their sizes."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
from pathlib import Path

from .browser import require_chromium


def _png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    width, height = struct.unpack(">II", header[16:24])
    return width, height


def test_the_demo_takes_the_readmes_screenshots(tmp_path: Path) -> None:
    require_chromium()
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "config")}
    done = subprocess.run(
        [sys.executable, "-m", "gcdial.serve.web.demo", "--port", "0",
         "--screenshots", str(tmp_path / "shots")],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    desktop = _png_size(tmp_path / "shots" / "page.png")
    phone = _png_size(tmp_path / "shots" / "page-phone.png")
    assert desktop[0] == 1280
    assert desktop[1] >= 800
    assert phone[0] == 390
    assert phone[1] >= 844
