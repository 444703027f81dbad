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
