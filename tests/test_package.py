import os
import subprocess
import sys
from pathlib import Path

import gcdial


def test_public_surface_is_curated() -> None:
    assert gcdial.__all__ == ["__version__"]
    assert gcdial.__version__.count(".") == 2


def test_cli_help_runs_as_a_user_would() -> None:
    out = subprocess.run(
        [str(Path(sys.executable).parent / "gcdial"), "--help"],
        env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert "Genesys Cloud" in out.stdout
