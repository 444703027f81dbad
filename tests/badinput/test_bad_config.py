"""Settings from hostile files and environments: Settings, or a ConfigError; never the secret."""

from __future__ import annotations

import json
import math
import os
import tempfile
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from gcdial.config import ENV_VARS, InsecureSettingWarning, Settings, load_settings
from gcdial.errors import ConfigError, GcdialError

from .props import QUICK, assert_clear

SECRET = "Zq7-hypothesis-SECRET-4c1f"
TOKEN = "tok-hypothesis-ACCESS-9b2e"
SETTING_KEYS = sorted(set(ENV_VARS.values()))


def toml_value(value: Any) -> str:
    """A TOML literal for the generated value (the stdlib has a reader only)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # JSON escapes are valid TOML basic-string escapes
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    assert isinstance(value, dict)
    return "{" + ", ".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items()) + "}"


scalars = st.one_of(
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(),
    st.text(max_size=30),
    st.sampled_from(
        [
            "eu_west_1",
            "mypurecloud.ie",
            "http://127.0.0.1:8765",
            "http://evil.example.com",
            "https://api.mypurecloud.de",
            "on_behalf",
            "user",
            "sideways",
            "GB",
            "XX",
            "0",
            "-5",
            "1e309",
            "nan",
            "yes",
            "maybe",
            "~/secret.txt",
            "/dev/null",
            "/nonexistent/secret",
        ]
    ),
)
values = st.one_of(
    scalars,
    st.lists(scalars, max_size=3),
    st.dictionaries(st.text(max_size=5), scalars, max_size=2),
)
keys = st.one_of(
    st.sampled_from([*SETTING_KEYS, "client_secret", "unknown_key"]), st.text(max_size=10)
)
# The secret and the token only ever go where secrets belong: a wrong value put in, say,
# verify_tls is not a secret to gcdial, and quoting it back is how the user finds the mistake.
secret_entries = st.dictionaries(
    st.sampled_from(["client_secret", "access_token"]),
    st.sampled_from([SECRET, TOKEN]),
    max_size=2,
)
profiles = st.builds(
    lambda plain, secret: {**plain, **secret},
    st.dictionaries(keys, values, max_size=5),
    secret_entries,
)
env_values = st.one_of(scalars.map(str), st.text(max_size=20))
environs = st.builds(
    lambda plain, secret: {**plain, **secret},
    st.dictionaries(
        st.sampled_from([*ENV_VARS, "GCDIAL_PROFILE", "GCDIAL_CONFIG_FILE"]), env_values, max_size=6
    ),
    st.dictionaries(
        st.sampled_from(["GENESYSCLOUD_OAUTHCLIENT_SECRET", "GENESYSCLOUD_ACCESS_TOKEN"]),
        st.sampled_from([SECRET, TOKEN]),
        max_size=2,
    ),
)


def config_text(default: str | None, tables: Mapping[str, Mapping[str, Any]]) -> str:
    lines = [f"default_profile = {json.dumps(default)}"] if default is not None else []
    for name, table in tables.items():
        lines.append(f"[profiles.{json.dumps(name)}]")
        lines += [f"{json.dumps(k)} = {toml_value(v)}" for k, v in table.items()]
    return "\n".join(lines) + "\n"


def load(
    *,
    environ: Mapping[str, str] | None = None,
    config: bytes | None = None,
    dotenv: bytes | None = None,
    profile: str | None = None,
    mode: int = 0o600,
) -> Settings | GcdialError:
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore", InsecureSettingWarning)
        root = Path(tmp)
        config_path = env_path = None
        if config is not None:
            config_path = root / "config.toml"
            config_path.write_bytes(config)
            os.chmod(config_path, mode)
        if dotenv is not None:
            env_path = root / ".env"
            env_path.write_bytes(dotenv)
            os.chmod(env_path, mode)
        env = {"HOME": str(root), **(environ or {})}
        try:
            return load_settings(
                profile=profile, environ=env, env_file=env_path, config_file=config_path, cwd=root
            )
        except GcdialError as exc:
            return exc


def check(result: Settings | GcdialError) -> None:
    if isinstance(result, GcdialError):
        assert isinstance(result, ConfigError), f"{type(result).__name__}: {result}"
        assert_clear(result, secrets=[SECRET, TOKEN])
        return
    assert isinstance(result, Settings)
    shown = f"{result!r} {result!s}"
    assert SECRET not in shown, "the secret in the settings' repr"
    assert TOKEN not in shown, "the token in the settings' repr"
    if result.api_base_url is not None:
        assert result.api_base_url.startswith(("https://", "http://127.", "http://localhost"))


@QUICK
@given(text=st.binary(max_size=300))
@example(text=b"\xff\xfe[profiles.default]\n")
@example(text=b'[profiles.default]\nclient_secret = "' + SECRET.encode() + b"\n")
@example(text=b"profiles = 5\n")
@example(text=b"[profiles]\ndefault = 1\n")
@example(text=b'default_profile = "nope"\n[profiles.a]\n')
def test_any_config_file_bytes(text: bytes) -> None:
    check(load(config=text))


@QUICK
@given(
    tables=st.dictionaries(st.text(min_size=1, max_size=6), profiles, max_size=3),
    default=st.one_of(st.none(), st.text(max_size=6)),
    profile=st.one_of(st.none(), st.text(max_size=6)),
)
def test_any_profile_contents(
    tables: dict[str, dict[str, Any]], default: str | None, profile: str | None
) -> None:
    check(load(config=config_text(default, tables).encode(), profile=profile))


@QUICK
@given(environ=environs)
@example(environ={"GENESYSCLOUD_OAUTHCLIENT_SECRET": SECRET, "GCDIAL_CLIENT_SECRET_FILE": "/x"})
@example(environ={"GENESYSCLOUD_ACCESS_TOKEN": TOKEN, "GCDIAL_VERIFY_TLS": "maybe"})
@example(environ={"GCDIAL_CONFIG_FILE": "\x00"})
def test_any_environment(environ: dict[str, str]) -> None:
    check(load(environ=environ))


@QUICK
@given(
    lines=st.lists(
        st.one_of(
            st.text(max_size=40),
            st.sampled_from(
                [
                    f"GENESYSCLOUD_OAUTHCLIENT_SECRET={SECRET}",
                    f"export GENESYSCLOUD_OAUTHCLIENT_SECRET='{SECRET}",
                    f'GENESYSCLOUD_ACCESS_TOKEN="{TOKEN}" junk',
                    "GCDIAL_BASE_URL=http://evil.example.com",
                    "=novalue",
                    "# comment",
                ]
            ),
        ),
        max_size=6,
    )
)
def test_any_dotenv_text(lines: list[str]) -> None:
    check(load(dotenv="\n".join(lines).encode("utf-8", errors="surrogatepass")))


@QUICK
@given(data=st.binary(max_size=200))
def test_any_dotenv_bytes(data: bytes) -> None:
    check(load(dotenv=data))


def test_a_malformed_secret_line_is_named_by_number_not_shown() -> None:
    result = load(dotenv=f"GENESYSCLOUD_OAUTHCLIENT_SECRET='{SECRET}\n".encode())
    assert isinstance(result, ConfigError)
    assert ".env line 1" in str(result)
    assert_clear(result, secrets=[SECRET])


def test_a_secret_in_a_file_others_can_read_is_refused() -> None:
    text = f'[profiles.default]\nclient_id = "x"\nclient_secret = "{SECRET}"\n'
    result = load(config=text.encode(), mode=0o644)
    assert isinstance(result, ConfigError)
    assert "chmod 600" in str(result)
    assert_clear(result, secrets=[SECRET])
