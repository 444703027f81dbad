import pytest

from gcdial._shared import REGION_DOMAINS
from gcdial.errors import ConfigError
from gcdial.regions import Endpoints, is_loopback_host, resolve_region

IE = Endpoints("https://api.mypurecloud.ie", "https://login.mypurecloud.ie", "eu_west_1")


@pytest.mark.parametrize(
    "value",
    [
        "eu_west_1",
        "EU_WEST_1",
        "eu-west-1",
        " eu_west_1 ",
        "mypurecloud.ie",
        "api.mypurecloud.ie",
        "login.mypurecloud.ie",
        "MyPureCloud.IE",
        "https://api.mypurecloud.ie",
        "https://api.mypurecloud.ie/",
        "https://login.mypurecloud.ie",
        "HTTPS://API.MYPURECLOUD.IE",
    ],
)
def test_every_form_of_eu_west_1(value: str) -> None:
    assert resolve_region(value) == IE


@pytest.mark.parametrize(("name", "domain"), sorted(REGION_DOMAINS.items()))
def test_every_region_in_the_table(name: str, domain: str) -> None:
    ep = resolve_region(name)
    assert ep.api_base_url == f"https://api.{domain}"
    assert ep.login_base_url == f"https://login.{domain}"
    assert ep.region == name
    assert resolve_region(domain) == ep


@pytest.mark.parametrize(
    ("value", "base"),
    [
        ("http://127.0.0.1:8765", "http://127.0.0.1:8765"),
        ("http://127.0.0.1:8765/", "http://127.0.0.1:8765"),
        ("http://localhost:9000/genesys/", "http://localhost:9000/genesys"),
        ("http://[::1]:8000", "http://[::1]:8000"),
        ("http://127.1.2.3", "http://127.1.2.3"),
        ("https://genesys-proxy.example.com/api-gw", "https://genesys-proxy.example.com/api-gw"),
        ("https://api.mypurecloud.ie:8443", "https://api.mypurecloud.ie:8443"),
    ],
)
def test_any_base_url_serves_login_too(value: str, base: str) -> None:
    ep = resolve_region(value)
    assert ep.api_base_url == base
    assert ep.login_base_url == base
    assert ep.region is None


def test_api_prefixed_url_of_unknown_domain_still_splits_hosts() -> None:
    ep = resolve_region("https://api.newregion.pure.cloud")
    assert ep.login_base_url == "https://login.newregion.pure.cloud"
    assert ep.login_host == "https://login.newregion.pure.cloud"


@pytest.mark.parametrize(
    "value",
    ["http://api.mypurecloud.ie", "http://10.0.0.5:8765", "http://example.com", "http://128.0.0.1"],
)
def test_plain_http_refused_off_loopback(value: str) -> None:
    with pytest.raises(ConfigError, match="Plain http:// is refused") as info:
        resolve_region(value, setting="base_url", source="GCDIAL_BASE_URL")
    assert info.value.setting == "base_url"
    assert "GCDIAL_BASE_URL" in str(info.value)


@pytest.mark.parametrize(
    "value", ["eu_west_9", "mypurecloud.xx", "ireland", "127.0.0.1:8765", "api.example.com"]
)
def test_unknown_region_lists_the_known_names(value: str) -> None:
    with pytest.raises(ConfigError) as info:
        resolve_region(value, source="GENESYSCLOUD_REGION")
    text = str(info.value)
    assert value in text
    assert "GENESYSCLOUD_REGION" in text
    for name in REGION_DOMAINS:
        assert name in text


def test_unknown_region_suggests_a_close_name() -> None:
    with pytest.raises(ConfigError, match="Did you mean eu_west_1"):
        resolve_region("eu_wst_1")


@pytest.mark.parametrize(
    "value",
    [
        "",
        "   ",
        "ftp://api.mypurecloud.ie",
        "https://",
        "https://x.com?a=1",
        "http://h:x",
        "http://[x",
    ],
)
def test_unusable_values(value: str) -> None:
    with pytest.raises(ConfigError):
        resolve_region(value)


@pytest.mark.parametrize(
    ("host", "loop"),
    [
        ("localhost", True),
        ("127.0.0.1", True),
        ("127.255.0.9", True),
        ("::1", True),
        ("[::1]", True),
        ("10.0.0.1", False),
        ("example.com", False),
        ("localhost.example.com", False),
    ],
)
def test_is_loopback_host(host: str, loop: bool) -> None:
    assert is_loopback_host(host) is loop
