"""Fixture files: the built-in one, JSON and TOML, and clear errors for bad ones."""

from pathlib import Path
from typing import Any

import pytest

from gcdial.emulator import EmulatorConfig, EmulatorServer, FixtureError
from gcdial.emulator.fixtures import load_fixture

from .helpers import api

GOOD_CLIENT = '{"id": "c", "secret": "s", "grant": "client_credentials"}'


def test_built_in_fixture_matches_the_design() -> None:
    fixture = load_fixture(None)
    users = {u.key: u for u in fixture.users}
    assert set(users) == {"alice", "bob", "carol", "dave", "erin"}
    assert users["dave"].station is None
    assert users["erin"].state == "inactive"
    assert [(c.id, c.grant) for c in fixture.clients] == [
        ("sandbox-client", "client_credentials"),
        ("sandbox-pkce", "authorization_code"),
        ("sandbox-signin", "authorization_code"),
        ("sandbox-no-analytics", "client_credentials"),
    ]
    assert fixture.clients[2].user is None  # the sign-in form chooses the user
    analytics = ["analytics:conversationDetail:view"]
    assert fixture.clients[0].has_any(analytics)
    assert not fixture.clients[3].has_any(analytics)


def _write(tmp_path: Path, text: str, name: str = "org.json") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{", "invalid JSON at line 1 column 2"),
        ("[]", "Input should be a valid dictionary"),
        ('{"clients": []}', "field clients:"),
        ('{"clients": [' + GOOD_CLIENT + '], "agents": []}', "field agents: unknown field"),
        (
            '{"clients": [' + GOOD_CLIENT + '], "users": [{"id": "11111111-1111-4111-8111-'
            '111111111111", "name": "A", "email": "not-an-email"}]}',
            "field users[0].email",
        ),
        (
            '{"clients": [' + GOOD_CLIENT + '], "users": [{"id": "nope", "name": "A", '
            '"email": "a@b.co"}]}',
            "field users[0].id",
        ),
        ('{"clients": [{"id": "c", "grant": "client_credentials"}]}', "needs a 'secret'"),
        ('{"clients": [{"id": "p", "grant": "authorization_code", "user": "x"}]}', "at least one"),
        (
            '{"clients": [' + GOOD_CLIENT + ', {"id": "p", "grant": "authorization_code", '
            '"user": "zed"}]}',
            "clients[1].user: no user",
        ),
        (
            '{"clients": [' + GOOD_CLIENT + ", " + GOOD_CLIENT + "]}",
            "clients[1].id: duplicate",
        ),
        (
            '{"clients": [' + GOOD_CLIENT + '], "generate_agents": {"count": 0, '
            '"email_domain": "x.com"}}',
            "field generate_agents.count",
        ),
    ],
)
def test_bad_fixture_names_file_field_and_problem(tmp_path: Path, text: str, expected: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(FixtureError) as error:
        load_fixture(path)
    message = str(error.value)
    assert message.startswith(f"fixture file {path}:")
    assert expected in message
    assert "Traceback" not in message


def test_duplicate_email_is_reported(tmp_path: Path) -> None:
    user = '{{"id": "{}", "name": "A", "email": "{}"}}'
    users = ", ".join(
        [
            user.format("11111111-1111-4111-8111-111111111111", "a@b.co"),
            user.format("22222222-2222-4222-8222-222222222222", "A@B.co"),
        ]
    )
    path = _write(tmp_path, '{"clients": [' + GOOD_CLIENT + '], "users": [' + users + "]}")
    with pytest.raises(FixtureError, match=r"users\[1\]\.email: duplicate"):
        load_fixture(path)


def test_missing_and_undecodable_files(tmp_path: Path) -> None:
    with pytest.raises(FixtureError, match="cannot be read"):
        load_fixture(tmp_path / "absent.json")
    path = tmp_path / "binary.json"
    path.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(FixtureError, match="not UTF-8"):
        load_fixture(path)
    with pytest.raises(FixtureError, match="invalid TOML"):
        load_fixture(_write(tmp_path, "clients = [", "bad.toml"))


def test_server_refuses_a_bad_fixture(tmp_path: Path) -> None:
    path = _write(tmp_path, '{"clients": []}')
    with pytest.raises(FixtureError, match="clients"):
        EmulatorServer(EmulatorConfig(fixture=path))


def test_toml_fixture(make_emulator: Any, tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """
[[clients]]
id = "toml-client"
secret = "toml-secret"
grant = "client_credentials"

[[users]]
key = "zoe"
id = "66666666-6666-4666-8666-666666666666"
name = "Zoe Zhang"
email = "zoe@example.org"
presence = "AWAY"
station = { id = "f6f6f6f6-0000-4000-8000-000000000006", name = "zoe-phone" }
""",
        "org.toml",
    )
    emu = make_emulator(fixture=path)
    assert emu.client_id == "toml-client"
    with api(emu) as http:
        body = http.get(
            "/api/v2/users/66666666-6666-4666-8666-666666666666/presences/purecloud"
        ).json()
    assert body["presenceDefinition"]["systemPresence"] == "Away"


@pytest.mark.parametrize(
    "fields",
    [
        {"speed": 0},
        {"rate_limit_buckets": {"nowhere": 5}},
        {"channel_limit_mode": "panic"},
        {"colour": "red"},
    ],
)
def test_bad_config_is_refused(fields: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=next(iter(fields))):
        EmulatorConfig(**fields)
