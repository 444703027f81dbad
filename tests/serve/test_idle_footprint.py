"""What an idle ``gcdial serve`` holds in memory (issue 21, item 12).

Not a timing or RSS figure (``make bench ARGS=serve`` measures those): a structural guard. The
place names of phonenumbers' geocoder are about 100 MB, loaded all at once on import; the service
loads them only when a number preview asks for one.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import httpx

_GEOCODER = "phonenumbers.geocoder"

# Run gcdial's entry point as the console script does; at exit, record what was imported.
_PROBE = textwrap.dedent(
    """
    import atexit, json, os, sys

    def record():
        with open(os.environ["PROBE_REPORT"], "w") as out:
            json.dump(sorted(n for n, m in sys.modules.items() if m is not None), out)

    atexit.register(record)
    sys.argv[0] = "gcdial"
    from gcdial.cli.main import run
    run()
    """
)


def test_an_idle_service_has_not_loaded_the_place_names(tmp_path: Path) -> None:
    report = tmp_path / "modules.json"
    env = {
        **os.environ,
        "GCDIAL_SERVE_STORE": str(tmp_path / "serve.sqlite3"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "HOME": str(tmp_path),
        "NO_COLOR": "1",
        "PROBE_REPORT": str(report),
    }
    process = subprocess.Popen(
        [sys.executable, "-c", _PROBE, "serve", "--sandbox", "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        base_url = process.stdout.readline().split()[4]
        assert httpx.get(f"{base_url}/healthz", timeout=10).status_code == 200
    finally:
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=30)
    assert process.returncode == 130, err  # stopped by Ctrl-C, as a person stops it
    loaded = set(json.loads(report.read_text()))
    assert "gcdial.serve.web.views" in loaded  # the app and its preview code are really there
    assert _GEOCODER not in loaded
    # Nor cryptography (~5 MB): the webhook secrets' Fernet loads on the first secret sealed.
    assert not any(name == "cryptography" or name.startswith("cryptography.") for name in loaded)


def test_the_first_preview_loads_the_place_names() -> None:
    # The counterpart, in a fresh interpreter: the preview still names the place.
    code = textwrap.dedent(
        f"""
        import datetime as dt, json, sys
        from gcdial.serve.web.views import number_preview
        before = {_GEOCODER!r} in sys.modules
        seen = number_preview("(415) 555-0100", "US", dt.datetime.now(dt.UTC))
        print(json.dumps([before, {_GEOCODER!r} in sys.modules, seen["place"]]))
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    before, after, place = json.loads(proc.stdout)
    assert (before, after) == (False, True)
    assert place == "San Francisco, CA"
