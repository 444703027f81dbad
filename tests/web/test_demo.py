"""``make demo-serve`` works for a newcomer: a page URL, a demo key, calls placed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def test_demo_serve_prints_the_page_and_a_key_and_places_calls(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "gcdial.serve.web.demo", "--port", "0", "--every", "0.2",
         "--calls", "2"],
        capture_output=True, text=True, timeout=50, check=False,
        env={**os.environ, "GCDIAL_SANDBOX_SPEED": "50", "TMPDIR": str(tmp_path)},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "The page: http://127.0.0.1:" in result.stdout
    assert "Demo key (watch, dial, campaigns): gcd_" in result.stdout
    assert "demo campaign: created" in result.stdout
    assert "demo call 2:" in result.stdout
    assert result.stdout.count(": placed") == 2, result.stdout
    assert "Traceback" not in result.stderr
    assert not list(tmp_path.glob("gcdial-demo-*")), "the demo leaves nothing behind"
