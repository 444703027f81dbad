"""Region strings and base URLs: Endpoints that are safe to use, or a ConfigError saying why."""

from __future__ import annotations

import httpx
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from gcdial._shared import REGION_DOMAINS
from gcdial.errors import ConfigError
from gcdial.regions import Endpoints, is_loopback_host, resolve_region

from .props import QUICK, assert_clear

hosts = st.one_of(
    st.sampled_from(
        [
            "127.0.0.1",
            "localhost",
            "[::1]",
            "api.mypurecloud.ie",
            "login.mypurecloud.de",
            "mypurecloud.com",
            "evil.example.com",
            "127.0.0.1.evil.com",
            "localhost.evil.com",
            "10.0.0.1",
            "0x7f.1",
            "[::ffff:127.0.0.1]",
            "[x",
            "[::1",
            "127.0.0.1\\@evil.com",
            "localhost@evil.com",
            "user:pw@127.0.0.1",
            "",
            "%00",
        ]
    ),
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789.-[]:@%\\", max_size=20),
)
urls = st.builds(
    lambda scheme, host, port, path: f"{scheme}{host}{port}{path}",
    st.sampled_from(["http://", "https://", "HTTP://", "ftp://", "ws://", "", "//", "http:/"]),
    hosts,
    st.sampled_from(["", ":8765", ":0", ":99999", ":abc", ":", ":-1"]),
    st.sampled_from(["", "/", "/api", "?q=1", "#frag", "/a b", "/%2e%2e"]),
)
names = st.one_of(
    st.sampled_from(list(REGION_DOMAINS)),
    st.sampled_from([n.upper().replace("_", "-") for n in REGION_DOMAINS]),
    st.sampled_from(list(REGION_DOMAINS.values())),
    st.text(max_size=40),
)


def check(value: str) -> None:
    try:
        endpoints = resolve_region(value, source="a test")
    except ConfigError as exc:
        assert_clear(exc)
        return
    assert isinstance(endpoints, Endpoints)
    for url in (endpoints.api_base_url, endpoints.login_base_url):
        # What httpx will actually connect to, not only what the check parsed.
        parsed = httpx.URL(url)
        assert parsed.scheme in {"http", "https"}, url
        if parsed.scheme == "http":
            assert is_loopback_host(parsed.host), f"plain http to a non-loopback host: {url}"
        assert not parsed.query
        assert not parsed.fragment


@QUICK
@given(value=st.one_of(urls, names))
@example(value="http://127.0.0.1\\@evil.com")
@example(value="eu-west-1")
@example(value="  mypurecloud.ie.  ")
def test_any_region_text_resolves_safely_or_says_why(value: str) -> None:
    check(value)


@pytest.mark.parametrize("value", ["http://[x", "https://[::1", "https://api.[mypurecloud.ie"])
def test_unbalanced_ipv6_bracket_is_a_config_error(value: str) -> None:
    with pytest.raises(ConfigError):
        resolve_region(value)


@pytest.mark.parametrize(
    "value",
    [
        "http://api.mypurecloud.ie",
        "http://10.0.0.1:8765",
        "http://127.0.0.1.evil.com",
        "http://localhost@evil.com",
        "http://127.0.0.1\\@evil.com",
    ],
)
def test_plain_http_off_loopback_is_refused(value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        resolve_region(value)
    assert_clear(caught.value)
