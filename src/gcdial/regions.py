"""Region resolution: a region name, a bare domain or a URL becomes the API and login base URLs."""

from __future__ import annotations

import difflib
import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

from gcdial._shared import REGION_DOMAINS
from gcdial.errors import ConfigError

__all__ = [
    "Endpoints",
    "is_loopback_host",
    "known_regions",
    "normalize_base_url",
    "resolve_region",
]

_DOMAIN_TO_REGION = {domain: name for name, domain in REGION_DOMAINS.items()}
_HOST_PREFIXES = ("api.", "login.")


@dataclass(frozen=True, slots=True)
class Endpoints:
    """Where the API and the OAuth login host live; ``region`` is the name when one is known."""

    api_base_url: str
    login_base_url: str
    region: str | None = None

    @property
    def login_host(self) -> str:
        """The login host as shown to users (scheme and host, no path)."""
        parts = urlsplit(self.login_base_url)
        return f"{parts.scheme}://{parts.netloc}"


def known_regions() -> list[str]:
    """The region names gcdial knows, in table order."""
    return list(REGION_DOMAINS)


def is_loopback_host(host: str) -> bool:
    """True for localhost, 127.0.0.0/8 and ::1: the only hosts plain http:// may point at."""
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _from_domain(domain: str) -> Endpoints:
    return Endpoints(
        api_base_url=f"https://api.{domain}",
        login_base_url=f"https://login.{domain}",
        region=_DOMAIN_TO_REGION.get(domain),
    )


def _unknown(value: str, *, setting: str, source: str | None) -> ConfigError:
    names = known_regions()
    guess = difflib.get_close_matches(value.lower().replace("-", "_"), names, n=1)
    suggestion = f" Did you mean {guess[0]}?" if guess else ""
    return ConfigError(
        f"Unknown region {value!r}{_from(source)}.{suggestion}",
        setting=setting,
        source=source,
        hint=(
            f"Give a region name ({', '.join(names)}), its domain (e.g. mypurecloud.ie) or a full "
            "URL (e.g. https://api.mypurecloud.ie, or http://127.0.0.1:8765 for the emulator)."
        ),
    )


def _from(source: str | None) -> str:
    return f" (from {source})" if source else ""


def normalize_base_url(value: str, *, setting: str = "base_url", source: str | None = None) -> str:
    """Check a base URL (http(s), host, no query; plain http only on loopback) and normalise it.

    Returns ``scheme://host[:port][/path]`` in lower case without a trailing slash.
    """
    try:
        parts = urlsplit(value.strip())  # raises ValueError on e.g. an unclosed IPv6 bracket
        scheme = parts.scheme.lower()
        host = (parts.hostname or "").lower()
        _ = parts.port  # raises ValueError on a non-numeric or out-of-range port
    except ValueError:
        scheme, host = "", ""
    if scheme not in {"http", "https"} or not host:
        raise ConfigError(
            f"{value!r}{_from(source)} is not a usable base URL.",
            setting=setting,
            source=source,
            hint="Use https://api.<domain> or a region name such as eu_west_1.",
        )
    if parts.query or parts.fragment:
        raise ConfigError(
            f"The base URL {value!r}{_from(source)} must not carry a query or fragment.",
            setting=setting,
            source=source,
            hint="Give only scheme, host, optional port and path.",
        )
    if scheme == "http" and not is_loopback_host(host):
        raise ConfigError(
            f"Plain http:// is refused for {host}{_from(source)}: the token and the client secret "
            "would cross the network unencrypted.",
            setting=setting,
            source=source,
            hint="Use https://, or a loopback address (127.0.0.1, ::1, localhost) for a local "
            "emulator.",
        )
    return f"{scheme}://{parts.netloc.lower()}{parts.path.rstrip('/')}"


def _from_url(value: str, *, setting: str, source: str | None) -> Endpoints:
    base = normalize_base_url(value, setting=setting, source=source)
    parts = urlsplit(base)
    host = parts.hostname or ""
    splits = parts.scheme == "https" and not parts.path and parts.port is None
    if splits and host.startswith(_HOST_PREFIXES):
        return _from_domain(host.split(".", 1)[1])
    return Endpoints(api_base_url=base, login_base_url=base, region=None)


def resolve_region(value: str, *, setting: str = "region", source: str | None = None) -> Endpoints:
    """Resolve a region name, a domain or a URL into API and login base URLs.

    Accepts ``eu_west_1`` (any case, ``-`` or ``_``), ``mypurecloud.ie`` (also with ``api.`` or
    ``login.`` in front), ``https://api.mypurecloud.ie``, or any base URL such as a local
    emulator's ``http://127.0.0.1:8765``, whose login base is the same URL. ``setting`` and
    ``source`` only shape the ConfigError raised for a value that cannot be used.
    """
    text = value.strip()
    if not text:
        raise ConfigError(
            f"The {setting} setting is empty{_from(source)}.",
            setting=setting,
            source=source,
            hint="Set it to a region name such as eu_west_1 or us_east_1.",
        )
    if "://" in text:
        return _from_url(text, setting=setting, source=source)
    name = text.lower().replace("-", "_")
    if name in REGION_DOMAINS:
        return _from_domain(REGION_DOMAINS[name])
    domain = text.lower().rstrip("/").rstrip(".")
    for prefix in _HOST_PREFIXES:
        if domain.startswith(prefix) and domain[len(prefix) :] in _DOMAIN_TO_REGION:
            domain = domain[len(prefix) :]
    if domain in _DOMAIN_TO_REGION:
        return _from_domain(domain)
    raise _unknown(text, setting=setting, source=source)
