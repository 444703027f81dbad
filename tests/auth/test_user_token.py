"""PKCE login against the emulator, the token store, BearerTokenAuth and auth_from_settings."""

import base64
import hashlib
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from gcdial.auth import BearerTokenAuth, ClientCredentialsAuth, auth_from_settings, is_user_token
from gcdial.config import Settings
from gcdial.emulator import EmulatorServer
from gcdial.errors import AuthenticationError, AuthError, ConfigError
from gcdial.login import authorize_url, code_challenge, new_code_verifier, pkce_login
from gcdial.tokenstore import (
    StoredToken,
    delete_token,
    load_for,
    load_token,
    path_for,
    save_token,
    token_path,
)

PKCE_CLIENT = "sandbox-pkce"
ALICE = "11111111-1111-4111-8111-111111111111"


def follow(url: str) -> bool:
    """The 'browser': follow the login host's redirect to the loopback server with httpx."""
    response = httpx.get(url, follow_redirects=True, timeout=10)
    return response.status_code == 200


def emu_settings(emu: EmulatorServer, tmp_path: Path, **kw: object) -> Settings:
    return Settings(api_base_url=emu.base_url, config_dir=tmp_path / "cfg", **kw)


def test_pkce_pair_is_rfc7636() -> None:
    verifier = new_code_verifier()
    assert 43 <= len(verifier) <= 128
    assert new_code_verifier() != verifier
    expected = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
    assert code_challenge(verifier) == expected.decode()
    url = authorize_url(
        "https://login.x/",
        client_id="c",
        redirect_uri="http://127.0.0.1:1/callback",
        challenge="ch",
        state="st",
    )
    assert url.startswith("https://login.x/oauth/authorize?response_type=code&client_id=c&")
    assert "code_challenge_method=S256" in url
    assert "redirect_uri=http%3A%2F%2F127.0.0.1%3A1%2Fcallback" in url


def test_pkce_login_round_trip_and_use_of_the_token(
    emulator: EmulatorServer, tmp_path: Path
) -> None:
    settings = emu_settings(emulator, tmp_path)
    before = datetime.now(UTC)
    token = pkce_login(settings, client_id=PKCE_CLIENT, open_browser=follow, timeout_s=10)
    assert token.client_id == PKCE_CLIENT
    assert token.api_base_url == emulator.base_url
    assert token.expires_at is not None
    assert token.expires_at > before + timedelta(hours=1)
    assert token.access_token.get_secret_value() not in repr(token)

    path = path_for(settings)
    assert path is not None
    save_token(token, path)
    auth = auth_from_settings(settings)
    assert isinstance(auth, BearerTokenAuth)
    assert is_user_token(auth)
    assert "gcdial login" in auth.describe()
    with httpx.Client(base_url=emulator.base_url, auth=auth) as client:
        me = client.get("/api/v2/users/me")
    assert me.status_code == 200
    assert me.json()["id"] == ALICE


def test_login_shows_the_url_when_no_browser_opens(
    emulator: EmulatorServer, tmp_path: Path
) -> None:
    shown: list[str] = []

    def no_browser(url: str) -> bool:
        return False

    def user_pastes_url(url: str) -> None:
        shown.append(url)
        follow(url)

    token = pkce_login(
        emu_settings(emulator, tmp_path),
        client_id=PKCE_CLIENT,
        open_browser=no_browser,
        show_url=user_pastes_url,
        timeout_s=10,
    )
    assert len(shown) == 1
    assert shown[0].startswith(f"{emulator.base_url}/oauth/authorize?")
    assert token.access_token.get_secret_value()


def test_login_times_out_with_a_hint(emulator: EmulatorServer, tmp_path: Path) -> None:
    shown: list[str] = []
    with pytest.raises(AuthError, match="No login arrived") as info:
        pkce_login(
            emu_settings(emulator, tmp_path),
            client_id=PKCE_CLIENT,
            open_browser=lambda url: False,
            show_url=shown.append,
            timeout_s=0.3,
        )
    assert "redirect URI" in str(info.value)
    assert shown


def test_login_refuses_a_redirect_with_the_wrong_state(
    emulator: EmulatorServer, tmp_path: Path
) -> None:
    def tampering_browser(url: str) -> bool:
        location = httpx.get(url).headers["location"]
        httpx.get(location.replace("state=", "state=evil"))
        return True

    with pytest.raises(AuthError, match="wrong state"):
        pkce_login(
            emu_settings(emulator, tmp_path),
            client_id=PKCE_CLIENT,
            open_browser=tampering_browser,
            timeout_s=10,
        )
    assert emulator.request_counts()["byRoute"].get("POST /oauth/token", 0) == 0


def test_login_reports_an_error_redirect(emulator: EmulatorServer, tmp_path: Path) -> None:
    def denying_browser(url: str) -> bool:
        redirect = httpx.URL(url).params["redirect_uri"]
        # Stray requests (favicon) are ignored; the error redirect ends the login.
        assert httpx.get(redirect.replace("/callback", "/favicon.ico")).status_code == 404
        httpx.get(redirect, params={"error": "access_denied", "error_description": "said no"})
        return True

    with pytest.raises(AuthError, match="access_denied: said no"):
        pkce_login(
            emu_settings(emulator, tmp_path),
            client_id=PKCE_CLIENT,
            open_browser=denying_browser,
            timeout_s=10,
        )


def test_login_with_an_unknown_client(emulator: EmulatorServer, tmp_path: Path) -> None:
    def browser(url: str) -> bool:
        return httpx.get(url).status_code == 302

    with pytest.raises(AuthError, match="No login arrived"):
        pkce_login(
            emu_settings(emulator, tmp_path),
            client_id="nobody",
            open_browser=browser,
            timeout_s=0.3,
        )


def test_login_port_in_use_is_a_config_error(emulator: EmulatorServer, tmp_path: Path) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        with pytest.raises(ConfigError, match="GCDIAL_LOGIN_PORT"):
            pkce_login(
                emu_settings(emulator, tmp_path),
                client_id=PKCE_CLIENT,
                open_browser=follow,
                port=port,
                timeout_s=1,
            )


def _token(api: str = "http://127.0.0.1:1", **kw: object) -> StoredToken:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    fields: dict[str, object] = {
        "access_token": SecretStr("tok-abc"),
        "expires_at": now + timedelta(hours=1),
        "api_base_url": api,
        "login_base_url": api,
        "client_id": "c",
        "created_at": now,
        **kw,
    }
    return StoredToken.model_validate(fields)


def test_token_store_is_owner_only(tmp_path: Path) -> None:
    path = token_path(tmp_path / "cfg", "prod/eu")
    assert path == tmp_path / "cfg" / "tokens" / "prod_eu.json"
    save_token(_token(), path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "cfg").stat().st_mode) == 0o700
    loaded = load_token(path)
    assert loaded is not None
    assert loaded.access_token.get_secret_value() == "tok-abc"
    assert loaded == _token()
    save_token(_token(client_id="d"), path)  # overwrite in place
    again = load_token(path)
    assert again is not None
    assert again.client_id == "d"
    assert sorted(p.name for p in path.parent.iterdir()) == ["prod_eu.json"]
    assert delete_token(path)
    assert not delete_token(path)
    assert load_token(path) is None


def test_token_store_tightens_a_loose_tokens_directory(tmp_path: Path) -> None:
    tokens = tmp_path / "cfg" / "tokens"
    tokens.mkdir(parents=True, mode=0o755)
    tokens.chmod(0o755)
    save_token(_token(), tokens / "default.json")
    assert stat.S_IMODE(tokens.stat().st_mode) == 0o700


def test_token_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    path = token_path(tmp_path, None)
    save_token(_token(), path)
    path.chmod(0o644)
    with pytest.raises(ConfigError, match="can be read by other users") as info:
        load_token(path)
    assert "tok-abc" not in str(info.value)


def test_damaged_token_file(tmp_path: Path) -> None:
    path = token_path(tmp_path, None)
    save_token(_token(), path)
    path.write_text("{not json")
    with pytest.raises(ConfigError, match="damaged"):
        load_token(path)


def test_stored_token_only_goes_to_its_own_api_host(tmp_path: Path) -> None:
    settings = Settings(api_base_url="http://127.0.0.1:2", config_dir=tmp_path)
    path = path_for(settings)
    assert path is not None
    save_token(_token(api="http://127.0.0.1:1"), path)
    assert load_for(settings) is None
    with pytest.raises(ConfigError, match="No credentials"):
        auth_from_settings(settings)


def test_expired_user_token_is_refused_before_sending(
    emulator: EmulatorServer, tmp_path: Path
) -> None:
    settings = emu_settings(emulator, tmp_path)
    path = path_for(settings)
    assert path is not None
    save_token(_token(api=emulator.base_url, expires_at=datetime(2020, 1, 1, tzinfo=UTC)), path)
    auth = auth_from_settings(settings)
    with (
        httpx.Client(base_url=emulator.base_url, auth=auth) as client,
        pytest.raises(AuthError, match="expired at 2020-01-01") as info,
    ):
        client.get("/api/v2/users/me")
    assert "gcdial login" in str(info.value)
    assert emulator.request_counts()["total"] == 0


async def test_revoked_user_token_asks_to_log_in_again(
    emulator: EmulatorServer, tmp_path: Path
) -> None:
    token = pkce_login(emu_settings(emulator, tmp_path), client_id=PKCE_CLIENT, open_browser=follow)
    value = token.access_token.get_secret_value()
    auth = BearerTokenAuth(token.access_token, source="GENESYSCLOUD_ACCESS_TOKEN")
    emulator.revoke_tokens()
    async with httpx.AsyncClient(base_url=emulator.base_url, auth=auth) as client:
        with pytest.raises(AuthenticationError) as info:
            await client.get("/api/v2/users/me")
    text = str(info.value)
    assert "gcdial login" in text
    assert "GENESYSCLOUD_ACCESS_TOKEN" in text
    assert "contextId" in text
    assert info.value.status == 401
    assert value not in text
    with (
        httpx.Client(base_url=emulator.base_url, auth=auth) as client,
        pytest.raises(AuthenticationError),
    ):
        client.get("/api/v2/users/me")


def test_auth_from_settings_order(tmp_path: Path) -> None:
    base = {"api_base_url": "https://api.mypurecloud.ie", "config_dir": tmp_path}
    token_only = Settings(access_token=SecretStr("t"), **base)
    assert isinstance(auth_from_settings(token_only), BearerTokenAuth)
    both = Settings(
        access_token=SecretStr("t"),
        client_id="c",
        client_secret=SecretStr("s"),
        **base,
    )
    assert isinstance(auth_from_settings(both), BearerTokenAuth)
    creds = Settings(client_id="c", client_secret=SecretStr("s"), **base)
    auth = auth_from_settings(creds)
    assert isinstance(auth, ClientCredentialsAuth)
    assert auth.login_base_url == "https://login.mypurecloud.ie"
    assert not is_user_token(auth)
    assert "s" not in auth.describe().split()
    with pytest.raises(ConfigError, match="client secret"):
        auth_from_settings(Settings(client_id="c", **base))
    with pytest.raises(ConfigError, match="client id"):
        auth_from_settings(Settings(client_secret=SecretStr("s"), **base))
    with pytest.raises(ConfigError, match="gcdial login"):
        auth_from_settings(Settings(**base))
    with pytest.raises(ConfigError, match="No Genesys Cloud region"):
        auth_from_settings(Settings(client_id="c", client_secret=SecretStr("s")))
