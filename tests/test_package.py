import os
import subprocess
import sys
from pathlib import Path

import gcdial

EXPECTED_PUBLIC_NAMES = [
    "AgentNotReadyError",
    "AgentReadiness",
    "ApiConnectionError",
    "ApiError",
    "ApiTimeoutError",
    "AsyncClient",
    "AuthError",
    "AuthenticationError",
    "BadRequestError",
    "CallConversation",
    "CallCreated",
    "CallOutcomeUnknownError",
    "CallParams",
    "CallRulesError",
    "Client",
    "ConfigError",
    "Dial",
    "Evidence",
    "GcdialError",
    "InputError",
    "InvalidClientError",
    "InvalidPhoneNumberError",
    "NotFoundError",
    "Participant",
    "PermissionDeniedError",
    "RateLimitedError",
    "Resolution",
    "ResponseFormatError",
    "ServerError",
    "Settings",
    "User",
    "Verdict",
    "__version__",
    "load_settings",
]


def test_public_surface_is_curated() -> None:
    assert gcdial.__all__ == EXPECTED_PUBLIC_NAMES
    assert gcdial.__version__.count(".") == 2
    for name in gcdial.__all__:
        assert getattr(gcdial, name) is not None, name
    assert issubclass(gcdial.CallOutcomeUnknownError, gcdial.GcdialError)
    assert gcdial.Client.__module__ == "gcdial.client"


def test_import_gcdial_is_light() -> None:
    code = (
        "import sys, gcdial; "
        "heavy = [m for m in ('httpx', 'pydantic', 'phonenumbers', 'rich', 'typer', "
        "'gcdial.emulator', 'gcdial.client') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


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


# Declared because another dependency needs it at run time without importing it for us:
# starlette parses the emulator's OAuth form bodies with python-multipart.
INDIRECT_DEPENDENCIES = {
    "python-multipart": "starlette's form parsing (the emulator's /oauth/token)",
    "sniffio": "httpcore asks for it on every request; without it each request pays a failed "
    "import (bench one_call)",
    "httptools": "uvicorn's HTTP parser for gcdial serve (bench serve)",
}


def test_every_declared_dependency_is_used() -> None:
    """A dependency nothing imports is dead weight in every install (pydantic-settings was one)."""
    import re
    import tomllib

    root = Path(__file__).resolve().parents[1]
    declared = tomllib.loads((root / "pyproject.toml").read_text())["project"]["dependencies"]
    source = "\n".join(p.read_text() for p in (root / "src" / "gcdial").rglob("*.py"))
    imported = set(re.findall(r"^\s*(?:from|import) ([A-Za-z_]\w*)", source, re.MULTILINE))
    for requirement in declared:
        name = re.split(r"[<>=!~ \[]", requirement, maxsplit=1)[0]
        if name in INDIRECT_DEPENDENCIES:
            continue
        module = name.replace("-", "_").lower()
        assert module in imported, f"{name} is declared in pyproject.toml but never imported"
