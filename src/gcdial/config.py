"""Settings: where gcdial finds its region, credentials and options.

Precedence, highest first: explicit overrides (CLI flags, ``Client(...)`` arguments) > environment
variables > a ``.env`` file in the current directory > a profile in the config file
(``$XDG_CONFIG_HOME/gcdial/config.toml`` or ``~/.config/gcdial/config.toml``). Everything that
reads the outside world (environment, current directory, home, file paths) is a parameter of
``load_settings`` so that tests and embedding programs never touch process globals.
"""

from __future__ import annotations

import enum
import math
import os
import re
import stat
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal, get_args

import phonenumbers
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

from gcdial.errors import ConfigError
from gcdial.readiness import (
    DEFAULT_READY_PRESENCES,
    DEFAULT_READY_ROUTING_STATUSES,
    ReadinessPolicy,
    parse_names,
)
from gcdial.regions import Endpoints, normalize_base_url, resolve_region

__all__ = [
    "AUTO",
    "DEFAULT_CONNECT_TIMEOUT_S",
    "DEFAULT_TIMEOUT_S",
    "ENV_VARS",
    "CallRoute",
    "InsecureSettingWarning",
    "Settings",
    "default_config_dir",
    "describe_env_var",
    "load_settings",
    "parse_env_file",
]

DEFAULT_CONNECT_TIMEOUT_S: Final = 5.0
DEFAULT_TIMEOUT_S: Final = 30.0
DEFAULT_COUNTRY: Final = "US"

CallRoute = Literal["auto", "on_behalf", "user"]
CALL_ROUTES: Final[tuple[str, ...]] = get_args(CallRoute)

# Environment variable -> setting key. The GENESYSCLOUD_* names are the ecosystem's (official
# CLI, Terraform provider); the GCDIAL_* ones are gcdial's own.
ENV_VARS: Final[Mapping[str, str]] = {
    "GENESYSCLOUD_OAUTHCLIENT_ID": "client_id",
    "GENESYSCLOUD_OAUTHCLIENT_SECRET": "client_secret",
    "GENESYSCLOUD_REGION": "region",
    "GENESYSCLOUD_ACCESS_TOKEN": "access_token",
    "GCDIAL_BASE_URL": "base_url",
    "GCDIAL_CLIENT_SECRET_FILE": "client_secret_file",
    "GCDIAL_CALL_ROUTE": "call_route",
    "GCDIAL_DEFAULT_COUNTRY": "default_country",
    "GCDIAL_TIMEOUT_S": "timeout_s",
    "GCDIAL_CONNECT_TIMEOUT_S": "connect_timeout_s",
    "GCDIAL_VERIFY_TLS": "verify_tls",
    "GCDIAL_LOGIN_CLIENT_ID": "login_client_id",
    "GCDIAL_LOGIN_PORT": "login_port",
    "GCDIAL_ATTEMPT_ATTRIBUTE": "attempt_attribute",
    "GCDIAL_ANALYTICS_SETTLE_S": "analytics_settle_s",
    "GCDIAL_QUEUE_ID": "queue_id",
    "GCDIAL_WRAPUP_NON_ACD": "wrapup_non_acd",
    "GCDIAL_READY_PRESENCES": "ready_presences",
    "GCDIAL_READY_ROUTING_STATUSES": "ready_routing_statuses",
}
ENV_PROFILE: Final = "GCDIAL_PROFILE"
DEFAULT_ATTEMPT_ATTRIBUTE: Final = "gcdialAttemptId"
# How long after a call's creation the conversation-details query surely shows it is UNCONFIRMED
# (seconds to minutes): "not found" before this means nothing.
DEFAULT_ANALYTICS_SETTLE_S: Final = 120.0
ENV_CONFIG_FILE: Final = "GCDIAL_CONFIG_FILE"

_SECRET_KEYS: Final = frozenset({"client_secret", "access_token"})
_SETTING_KEYS: Final = frozenset(ENV_VARS.values())
_ENV_NAME_OF: Final = {key: name for name, key in ENV_VARS.items()}


class InsecureSettingWarning(UserWarning):
    """A setting weakens security: TLS verification off, or a config file others can read."""


class _Auto(enum.Enum):
    AUTO = "auto"


AUTO: Final = _Auto.AUTO
"""Default for ``load_settings`` file arguments: find the file in its usual place."""


class Settings(BaseModel):
    """Immutable, validated settings. Secrets are ``SecretStr`` and never shown by ``repr``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    client_id: str | None = None
    client_secret: SecretStr | None = None
    access_token: SecretStr | None = None
    region: str | None = None
    api_base_url: str | None = None
    login_base_url: str | None = None
    call_route: CallRoute = "auto"
    default_country: str = DEFAULT_COUNTRY
    timeout_s: float = Field(default=DEFAULT_TIMEOUT_S, gt=0, allow_inf_nan=False)
    connect_timeout_s: float = Field(default=DEFAULT_CONNECT_TIMEOUT_S, gt=0, allow_inf_nan=False)
    verify_tls: bool = True
    profile: str | None = None
    login_client_id: str | None = None
    login_port: int = Field(default=0, ge=0, le=65535)
    attempt_attribute: str = Field(default=DEFAULT_ATTEMPT_ATTRIBUTE, min_length=1, max_length=64)
    analytics_settle_s: float = Field(
        default=DEFAULT_ANALYTICS_SETTLE_S, gt=0, le=86_400, allow_inf_nan=False
    )
    queue_id: str | None = Field(default=None, min_length=1, max_length=64)
    """The queue calls are placed for (``callFromQueueId``) when the caller names none: ACD calls
    are the ones that carry a wrap-up code."""
    wrapup_non_acd: bool = False
    """Wait for a wrap-up on calls placed without a queue too (UNCONFIRMED that they have one)."""
    ready_presences: tuple[str, ...] = DEFAULT_READY_PRESENCES
    ready_routing_statuses: tuple[str, ...] = DEFAULT_READY_ROUTING_STATUSES
    config_dir: Path | None = None
    sources: dict[str, str] = Field(default_factory=dict, repr=False)

    @model_validator(mode="before")
    @classmethod
    def _resolve_location(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        api, login, region = (
            data.get("api_base_url"),
            data.get("login_base_url"),
            data.get("region"),
        )
        if isinstance(api, str) and api and isinstance(login, str) and login:
            data["api_base_url"] = normalize_base_url(api, setting="api_base_url")
            data["login_base_url"] = normalize_base_url(login, setting="login_base_url")
        elif isinstance(api, str) and api:
            endpoints = resolve_region(api, setting="api_base_url")
            data["api_base_url"] = endpoints.api_base_url
            data["login_base_url"] = endpoints.login_base_url
        elif isinstance(region, str) and region:
            endpoints = resolve_region(region)
            data["api_base_url"] = endpoints.api_base_url
            data["login_base_url"] = endpoints.login_base_url
            data["region"] = endpoints.region or region
        if isinstance(data.get("default_country"), str):
            data["default_country"] = data["default_country"].strip().upper()
        return data

    @model_validator(mode="after")
    def _check(self) -> Settings:
        if self.default_country not in phonenumbers.SUPPORTED_REGIONS:
            raise ConfigError(
                f"default_country {self.default_country!r}"
                f"{_from(self.sources.get('default_country'))} is not a known country code.",
                setting="default_country",
                source=self.sources.get("default_country"),
                hint="Use a two-letter ISO 3166 code such as US, GB, DE or FR.",
            )
        if not self.verify_tls:
            warnings.warn(
                "TLS certificate verification is OFF"
                f"{_from(self.sources.get('verify_tls'))}: anyone on the network path can read "
                "the client secret and tokens. Use this only against a test server.",
                InsecureSettingWarning,
                stacklevel=2,
            )
        return self

    def readiness_policy(self) -> ReadinessPolicy:
        """The presences and routing statuses that let a call be placed."""
        return ReadinessPolicy(self.ready_presences, self.ready_routing_statuses)

    def endpoints(self) -> Endpoints:
        """The API and login base URLs; ConfigError saying how to set them when none is set."""
        if self.api_base_url is None or self.login_base_url is None:
            raise ConfigError(
                "No Genesys Cloud region is set.",
                setting="region",
                hint=(
                    "Set GENESYSCLOUD_REGION (e.g. eu_west_1, or the domain you log in at, such as "
                    'mypurecloud.ie), put region = "..." in a profile of the config file, or '
                    "pass --region. For the local emulator use GCDIAL_BASE_URL or --sandbox."
                ),
            )
        return Endpoints(self.api_base_url, self.login_base_url, self.region)

    def source_of(self, key: str) -> str:
        """Where a setting's value came from, for messages (``default`` when not set anywhere)."""
        return self.sources.get(key, "default")


def _from(source: str | None) -> str:
    return f" (from {source})" if source else ""


@dataclass
class _Layer:
    """One source of raw values: key -> (value, human description of where it came from)."""

    name: str
    values: dict[str, tuple[object, str]] = field(default_factory=dict)
    base_dir: Path | None = None


def default_config_dir(environ: Mapping[str, str]) -> Path:
    """``$XDG_CONFIG_HOME/gcdial`` when that is an absolute path, else ``~/.config/gcdial``."""
    xdg = environ.get("XDG_CONFIG_HOME", "")
    if xdg and os.path.isabs(xdg):
        return Path(xdg) / "gcdial"
    return _home(environ) / ".config" / "gcdial"


def _home(environ: Mapping[str, str]) -> Path:
    home = environ.get("HOME", "")
    return Path(home) if home else Path.home()


def _expand(raw: str, *, environ: Mapping[str, str], base_dir: Path) -> Path:
    if raw == "~" or raw.startswith("~/"):
        return _home(environ) / raw[2:]
    path = Path(raw)
    return path if path.is_absolute() else base_dir / path


_ENV_LINE = re.compile(r"^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$")


def parse_env_file(text: str, *, path: str = ".env") -> dict[str, str]:
    """Parse ``KEY=VALUE`` lines (``export``, quotes and ``#`` comments allowed) into a dict.

    A malformed line raises ConfigError naming the file and line number, never the line itself
    (it may hold a secret).
    """
    result: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        match = _ENV_LINE.match(stripped)
        if match is None:
            raise ConfigError(
                f"{path} line {number} is not of the form KEY=VALUE.",
                source=f"{path}:{number}",
                hint="Fix or remove that line; comments start with #.",
            )
        key, value = match.group(1), match.group(2).strip()
        if value[:1] in {'"', "'"}:
            quote = value[0]
            end = value.find(quote, 1)
            while quote == '"' and end > 0 and value[end - 1] == "\\":
                end = value.find(quote, end + 1)
            if end < 0 or value[end + 1 :].strip()[:1] not in {"", "#"}:
                raise ConfigError(
                    f"{path} line {number} has an unterminated or malformed quoted value.",
                    source=f"{path}:{number}",
                    hint="Close the quote on the same line.",
                )
            value = value[1:end]
            if quote == '"':
                value = value.replace('\\"', '"').replace("\\n", "\n").replace("\\\\", "\\")
        else:
            value = re.split(r"\s+#", value, maxsplit=1)[0].strip()
        result[key] = value
    return result


def _loose_mode(path: Path) -> int | None:
    """Permission bits granted to group/others, or None where POSIX modes do not apply."""
    if os.name != "posix":
        return None
    return stat.S_IMODE(path.stat().st_mode) & 0o077


def _refuse_loose_secret_file(path: Path, what: str) -> None:
    loose = _loose_mode(path)
    if loose:
        raise ConfigError(
            f"{what} {path} holds a secret but can be read by other users "
            f"(mode {oct(stat.S_IMODE(path.stat().st_mode))}).",
            source=str(path),
            hint=f"Make it private with: chmod 600 {path}",
        )


def _read_text(path: Path, what: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{what} {path} is not UTF-8 text.",
            source=str(path),
            hint="Save it as UTF-8.",
        ) from exc
    except OSError as exc:
        raise ConfigError(
            f"Cannot read {what} {path}: {exc.strerror or exc}.",
            source=str(path),
            hint="Check that the path is right and that you may read the file.",
        ) from exc


def _env_layer(environ: Mapping[str, str]) -> _Layer:
    layer = _Layer("environment", base_dir=None)
    for name, key in ENV_VARS.items():
        value = environ.get(name, "")
        if value.strip():
            layer.values[key] = (value, f"environment variable {name}")
    return layer


def _dotenv_layer(path: Path | None) -> tuple[_Layer, dict[str, str]]:
    layer = _Layer(".env", base_dir=path.parent if path else None)
    if path is None or not path.is_file():
        return layer, {}
    raw = parse_env_file(_read_text(path, ".env file"), path=str(path))
    for name, key in ENV_VARS.items():
        value = raw.get(name, "")
        if value.strip():
            layer.values[key] = (value, f".env file {path} ({name})")
    if any(key in _SECRET_KEYS for key in layer.values):
        _refuse_loose_secret_file(path, ".env file")
    return layer, raw


def _overrides_layer(overrides: Mapping[str, object] | None) -> _Layer:
    layer = _Layer("overrides")
    for key, value in (overrides or {}).items():
        if value is None:
            continue
        if key not in _SETTING_KEYS:
            raise ConfigError(
                f"Unknown setting {key!r} given as an override.",
                setting=key,
                source="arguments",
                hint=f"Known settings: {', '.join(sorted(_SETTING_KEYS))}.",
            )
        layer.values[key] = (value, f"argument {key}")
    return layer


def _read_config_file(path: Path) -> dict[str, Any]:
    import tomllib  # here for start-up time: most runs have no config file to read

    text = _read_text(path, "config file")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(
            f"The config file {path} is not valid TOML: {exc}.",
            source=str(path),
            hint="Fix the line named above; see docs/configuration.md for the format.",
        ) from exc
    unknown = sorted(set(data) - {"default_profile", "profiles"})
    if unknown:
        raise ConfigError(
            f"The config file {path} has unknown top-level keys: {', '.join(unknown)}.",
            source=str(path),
            hint="Only default_profile and [profiles.NAME] tables are allowed.",
        )
    profiles = data.get("profiles", {})
    if not isinstance(profiles, dict) or not all(isinstance(p, dict) for p in profiles.values()):
        raise ConfigError(
            f"In the config file {path}, profiles must be tables: [profiles.NAME].",
            source=str(path),
            hint="Write each profile as a [profiles.NAME] table of settings.",
        )
    has_secret = any(key in _SECRET_KEYS for table in profiles.values() for key in table)
    loose = _loose_mode(path)
    if loose and has_secret:
        _refuse_loose_secret_file(path, "The config file")
    elif loose:
        warnings.warn(
            f"The config file {path} can be read or changed by other users: chmod 600 {path}.",
            InsecureSettingWarning,
            stacklevel=4,
        )
    return data


def _profile_layer(
    *, path: Path | None, requested: tuple[str, str] | None
) -> tuple[_Layer, str | None]:
    """Read the chosen profile; ``requested`` is (name, where the name came from)."""
    layer = _Layer("profile", base_dir=path.parent if path else None)
    exists = path is not None and path.is_file()
    if not exists:
        if requested is not None:
            name, origin = requested
            raise ConfigError(
                f"Profile {name!r} was asked for ({origin}) but there is no config file at {path}.",
                setting="profile",
                source=origin,
                hint=f"Create it with a [profiles.{name}] table, or unset the profile.",
            )
        return layer, None
    assert path is not None
    data = _read_config_file(path)
    profiles: dict[str, dict[str, Any]] = data.get("profiles", {})
    if requested is None:
        default = data.get("default_profile")
        if isinstance(default, str) and default:
            requested = (default, f"default_profile in {path}")
        elif "default" in profiles:
            requested = ("default", f"{path}")
        else:
            return layer, None
    name, origin = requested
    if name not in profiles:
        known = ", ".join(sorted(profiles)) or "none"
        raise ConfigError(
            f"Profile {name!r} ({origin}) is not in the config file {path}.",
            setting="profile",
            source=origin,
            hint=f"Profiles defined there: {known}.",
        )
    for key, value in profiles[name].items():
        if key not in _SETTING_KEYS:
            raise ConfigError(
                f"Unknown setting {key!r} in profile {name!r} of {path}.",
                setting=key,
                source=str(path),
                hint=f"Known settings: {', '.join(sorted(_SETTING_KEYS))}.",
            )
        layer.values[key] = (value, f"profile {name!r} in {path}")
    return layer, name


def _first(layers: list[_Layer], *keys: str) -> tuple[_Layer, dict[str, tuple[object, str]]] | None:
    """The highest-precedence layer setting any of ``keys``, with those of its values."""
    for layer in layers:
        found = {key: layer.values[key] for key in keys if key in layer.values}
        if found:
            return layer, found
    return None


def _as_text(key: str, value: object, source: str) -> str | None:
    if not isinstance(value, str):
        raise ConfigError(
            f"The setting {key}{_from(source)} must be text.",
            setting=key,
            source=source,
            hint='Quote it in TOML: key = "value".',
        )
    return value.strip() or None


def _as_bool(key: str, value: object, source: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in {"1", "true", "yes", "on"}:
        return True
    if text in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(
        f"The setting {key} = {value!r}{_from(source)} is not true or false.",
        setting=key,
        source=source,
        hint="Use true/false (also 1/0, yes/no, on/off).",
    )


def _as_positive_float(key: str, value: object, source: str) -> float:
    try:
        number = float(value) if isinstance(value, int | float | str) else math.nan
    except ValueError:
        number = math.nan
    if isinstance(value, bool) or not math.isfinite(number) or number <= 0:
        raise ConfigError(
            f"The setting {key} = {value!r}{_from(source)} is not a positive number of seconds.",
            setting=key,
            source=source,
            hint=f"Use e.g. {key} = 10 (seconds).",
        )
    return number


def _as_port(key: str, value: object, source: str) -> int:
    try:
        number = int(value) if isinstance(value, int | str) and not isinstance(value, bool) else -1
    except ValueError:
        number = -1
    if not 0 <= number <= 65535:
        raise ConfigError(
            f"The setting {key} = {value!r}{_from(source)} is not a TCP port (0-65535).",
            setting=key,
            source=source,
            hint="Use the port registered in your OAuth client's redirect URI, or 0 for any.",
        )
    return number


def _as_names(key: str, value: object, source: str) -> tuple[str, ...]:
    try:
        if isinstance(value, str):
            return parse_names(value)
        if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
            return parse_names(value)
    except ValueError:
        pass
    raise ConfigError(
        f"The setting {key} = {value!r}{_from(source)} is not a list of names.",
        setting=key,
        source=source,
        hint='Give comma-separated names, e.g. "AVAILABLE,ON_QUEUE", or "any".',
    )


def _as_call_route(key: str, value: object, source: str) -> str:
    text = str(value).strip().lower().replace("-", "_")
    if text not in CALL_ROUTES:
        raise ConfigError(
            f"The setting {key} = {value!r}{_from(source)} is not one of {', '.join(CALL_ROUTES)}.",
            setting=key,
            source=source,
            hint="auto picks on_behalf for client credentials and user for a user token.",
        )
    return text


_COERCE: Final[Mapping[str, Callable[[str, object, str], object]]] = {
    "client_id": _as_text,
    "login_client_id": _as_text,
    "default_country": _as_text,
    "call_route": _as_call_route,
    "timeout_s": _as_positive_float,
    "connect_timeout_s": _as_positive_float,
    "verify_tls": _as_bool,
    "login_port": _as_port,
    "attempt_attribute": _as_text,
    "analytics_settle_s": _as_positive_float,
    "queue_id": _as_text,
    "wrapup_non_acd": _as_bool,
    "ready_presences": _as_names,
    "ready_routing_statuses": _as_names,
}


def _read_secret_file(
    value: object, source: str, *, environ: Mapping[str, str], base_dir: Path
) -> str:
    raw = _as_text("client_secret_file", value, source)
    if raw is None:
        raise ConfigError(
            f"client_secret_file{_from(source)} is empty.",
            setting="client_secret_file",
            source=source,
            hint="Give the path of a file holding only the client secret.",
        )
    path = _expand(raw, environ=environ, base_dir=base_dir)
    if not path.is_file():
        raise ConfigError(
            f"The client secret file {path}{_from(source)} does not exist.",
            setting="client_secret_file",
            source=source,
            hint="Create it (chmod 600) with the OAuth client's secret, or fix the path.",
        )
    _refuse_loose_secret_file(path, "The client secret file")
    secret = _read_text(path, "client secret file").strip()
    if not secret:
        raise ConfigError(
            f"The client secret file {path}{_from(source)} is empty.",
            setting="client_secret_file",
            source=source,
            hint="Put the OAuth client's secret in it (Admin > Integrations > OAuth).",
        )
    return secret


def _rank(layers: list[_Layer], layer: _Layer) -> int:
    return next(i for i, candidate in enumerate(layers) if candidate is layer)


def _resolve_secret(
    layers: list[_Layer], *, environ: Mapping[str, str], cwd: Path
) -> tuple[str, str, int] | None:
    """The client secret, where it came from, and the precedence rank of its layer."""
    found = _first(layers, "client_secret", "client_secret_file")
    if found is None:
        return None
    layer, values = found
    if len(values) == 2:
        sources = " and ".join(source for _, source in values.values())
        raise ConfigError(
            f"Both a client secret and a client secret file are set ({sources}).",
            setting="client_secret",
            source=layer.name,
            hint="Keep only one of them.",
        )
    if "client_secret" in values:
        value, source = values["client_secret"]
        if not isinstance(value, str | SecretStr):
            raise ConfigError(
                f"The client secret{_from(source)} must be text.",
                setting="client_secret",
                source=source,
                hint='Quote it in TOML: client_secret = "...".',
            )
        text = (value.get_secret_value() if isinstance(value, SecretStr) else value).strip()
        if not text:
            raise ConfigError(
                f"The client secret{_from(source)} is empty.",
                setting="client_secret",
                source=source,
                hint="Set it to the OAuth client's secret, or unset it.",
            )
        return text, source, _rank(layers, layer)
    value, source = values["client_secret_file"]
    secret = _read_secret_file(value, source, environ=environ, base_dir=layer.base_dir or cwd)
    return secret, f"{source} (client_secret_file)", _rank(layers, layer)


def _resolve_location(layers: list[_Layer]) -> tuple[Endpoints, str] | None:
    found = _first(layers, "base_url", "region")
    if found is None:
        return None
    _, values = found
    key = "base_url" if "base_url" in values else "region"
    value, source = values[key]
    text = _as_text(key, value, source)
    if text is None:
        return None
    return resolve_region(text, setting=key, source=source), source


def load_settings(
    *,
    profile: str | None = None,
    overrides: Mapping[str, object] | None = None,
    environ: Mapping[str, str] | None = None,
    env_file: Path | _Auto | None = AUTO,
    config_file: Path | _Auto | None = AUTO,
    cwd: Path | None = None,
) -> Settings:
    """Build Settings from overrides > environment > ``.env`` > config-file profile.

    ``environ`` defaults to ``os.environ``; ``env_file`` to ``<cwd>/.env``; ``config_file`` to
    ``$GCDIAL_CONFIG_FILE`` or ``<config dir>/config.toml``; pass None to skip a file. Every
    problem raises ConfigError naming the setting, where it came from and how to fix it.
    """
    env: Mapping[str, str] = os.environ if environ is None else environ
    here = cwd if cwd is not None else Path.cwd()
    config_dir = default_config_dir(env)

    dotenv_path = here / ".env" if env_file is AUTO else env_file
    assert not isinstance(dotenv_path, _Auto)
    dotenv, dotenv_raw = _dotenv_layer(dotenv_path)

    if config_file is AUTO:
        named = env.get(ENV_CONFIG_FILE, "").strip() or dotenv_raw.get(ENV_CONFIG_FILE, "").strip()
        config_path: Path | None = (
            _expand(named, environ=env, base_dir=here) if named else config_dir / "config.toml"
        )
    else:
        assert not isinstance(config_file, _Auto)
        config_path = config_file

    requested: tuple[str, str] | None = None
    if profile:
        requested = (profile, "argument profile")
    elif env.get(ENV_PROFILE, "").strip():
        requested = (env[ENV_PROFILE].strip(), f"environment variable {ENV_PROFILE}")
    elif dotenv_raw.get(ENV_PROFILE, "").strip():
        requested = (dotenv_raw[ENV_PROFILE].strip(), f".env file {dotenv_path} ({ENV_PROFILE})")
    profile_layer, profile_name = _profile_layer(path=config_path, requested=requested)

    layers = [_overrides_layer(overrides), _env_layer(env), dotenv, profile_layer]
    values: dict[str, object] = {"profile": profile_name, "config_dir": config_dir}
    sources: dict[str, str] = {}
    if profile_name is not None:
        sources["profile"] = requested[1] if requested else f"{config_path}"

    location = _resolve_location(layers)
    if location is not None:
        endpoints, source = location
        values.update(
            api_base_url=endpoints.api_base_url,
            login_base_url=endpoints.login_base_url,
            region=endpoints.region,
        )
        sources.update(region=source, api_base_url=source, login_base_url=source)

    secret = _resolve_secret(layers, environ=env, cwd=here)
    if secret is not None:
        values["client_secret"] = SecretStr(secret[0])
        sources["client_secret"] = secret[1]

    token = _first(layers, "access_token")
    if token is not None and secret is not None and _rank(layers, token[0]) > secret[2]:
        # Client credentials given at a higher precedence (e.g. --sandbox, a flag) beat a user
        # token from a lower source: never send that token to the place the flags point at.
        token = None
    if token is not None:
        value, source = token[1]["access_token"]
        text = value.get_secret_value() if isinstance(value, SecretStr) else value
        if not isinstance(text, str) or not text.strip():
            raise ConfigError(
                f"The access token{_from(source)} must be non-empty text.",
                setting="access_token",
                source=source,
                hint="Unset it, or run `gcdial login` to get a user token.",
            )
        values["access_token"] = SecretStr(text.strip())
        sources["access_token"] = source

    for key, coerce in _COERCE.items():
        found = _first(layers, key)
        if found is None:
            continue
        value, source = found[1][key]
        coerced = coerce(key, value, source)
        if coerced is not None:
            values[key] = coerced
            sources[key] = source

    try:
        return Settings.model_validate({**values, "sources": sources})
    except ValidationError as exc:
        first = exc.errors()[0]
        key = str(first["loc"][0]) if first["loc"] else "settings"
        origin = sources.get(key)
        raise ConfigError(
            f"The setting {key}{_from(origin)} is invalid: {first['msg']}.",
            setting=key,
            source=origin,
            hint="See docs/configuration.md for the allowed values.",
        ) from None


def describe_env_var(key: str) -> str | None:
    """The environment variable that sets ``key``, for help texts (None when there is none)."""
    return _ENV_NAME_OF.get(key)
