"""Private files, no plain http off loopback, and no silent way to turn TLS verification off."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import pytest

from gcdial.client import Client
from gcdial.config import InsecureSettingWarning, Settings, load_settings
from gcdial.emulator import EmulatorServer
from gcdial.errors import ConfigError

from .support import CLIENT_ID, SECRET, leaks, run_cli

ALICE = "alice@example.com"
DOCTOR = ("doctor",)


def write(path: Path, text: str, mode: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    os.chmod(path, mode)
    return path


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604])
def test_files_holding_the_secret_must_be_private(
    user_env: dict[str, str], home: Path, work: Path, sec_emulator: EmulatorServer, mode: int
) -> None:
    env = {
        **user_env,
        "GCDIAL_BASE_URL": sec_emulator.base_url,
        "GENESYSCLOUD_OAUTHCLIENT_ID": CLIENT_ID,
    }
    config_path = home / ".config" / "gcdial" / "config.toml"
    cases = [
        (home / "secret.txt", SECRET, ("--client-secret-file", str(home / "secret.txt"), *DOCTOR)),
        (work / ".env", f"GENESYSCLOUD_OAUTHCLIENT_SECRET={SECRET}\n", DOCTOR),
        (config_path, f'[profiles.default]\nclient_secret = "{SECRET}"\n', DOCTOR),
    ]
    for path, text, args in cases:
        write(path, text, mode)
        run = run_cli(*args, env=env, cwd=work)
        assert run.code == 3, f"{path}: {run.out}{run.err}"
        assert "chmod 600" in run.out + run.err
        assert not leaks(run.out + run.err, [SECRET])
        path.chmod(0o600)
        ok = run_cli(*args, env=env, cwd=work)
        assert ok.code == 0, f"{path} is private now: {ok.out}{ok.err}"
        path.unlink()


def test_a_config_file_others_can_read_is_warned_about(
    user_env: dict[str, str], home: Path, work: Path, sec_emulator: EmulatorServer
) -> None:
    config = write(
        home / ".config" / "gcdial" / "config.toml",
        f'[profiles.default]\nclient_id = "{CLIENT_ID}"\n',
        0o644,
    )
    env = {
        **user_env,
        "GCDIAL_BASE_URL": sec_emulator.base_url,
        "GENESYSCLOUD_OAUTHCLIENT_SECRET": SECRET,
    }
    run = run_cli(*DOCTOR, env=env, cwd=work)
    assert run.code == 0, run.err
    assert f"chmod 600 {config}" in run.out + run.err


@pytest.mark.parametrize(
    "url",
    [
        "http://api.mypurecloud.ie",
        "http://10.0.0.7:8765",
        "http://127.0.0.1.nip.io",
        "http://localhost@evil.example.com",
        "HTTP://EXAMPLE.COM",
    ],
)
def test_plain_http_is_refused_off_loopback(user_env: dict[str, str], work: Path, url: str) -> None:
    env = {
        **user_env,
        "GENESYSCLOUD_OAUTHCLIENT_ID": CLIENT_ID,
        "GENESYSCLOUD_OAUTHCLIENT_SECRET": SECRET,
    }
    for args, extra in (
        (("--base-url", url, *DOCTOR), {}),
        (DOCTOR, {"GENESYSCLOUD_REGION": url}),
        (DOCTOR, {"GCDIAL_BASE_URL": url}),
    ):
        run = run_cli(*args, env={**env, **extra}, cwd=work)
        assert run.code == 3, run.err
        assert "Plain http:// is refused" in run.out + run.err
    with pytest.raises(ConfigError, match="Plain http"):
        Client(base_url=url, client_id=CLIENT_ID, client_secret=SECRET)


@pytest.mark.parametrize("url", ["http://127.0.0.1:1", "http://localhost:1", "http://[::1]:1"])
def test_plain_http_is_allowed_on_loopback(url: str) -> None:
    settings = load_settings(
        overrides={"base_url": url}, environ={}, env_file=None, config_file=None
    )
    assert settings.api_base_url == url


@pytest.mark.parametrize("value", ["false", "0", "no", "off"])
def test_turning_tls_verification_off_is_never_silent(
    creds_env: dict[str, str], work: Path, value: str
) -> None:
    run = run_cli(*DOCTOR, env={**creds_env, "GCDIAL_VERIFY_TLS": value}, cwd=work)
    assert "TLS certificate verification is OFF" in run.err, run.err
    assert "GCDIAL_VERIFY_TLS" in run.err, "the warning says where the setting came from"
    with pytest.warns(InsecureSettingWarning, match="TLS certificate verification is OFF"):
        load_settings(environ={"GCDIAL_VERIFY_TLS": value}, env_file=None, config_file=None)
    with pytest.warns(InsecureSettingWarning):
        Settings(verify_tls=False)


def test_tls_verification_on_is_quiet() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        settings = load_settings(
            environ={"GCDIAL_VERIFY_TLS": "true"}, env_file=None, config_file=None
        )
    assert settings.verify_tls is True
