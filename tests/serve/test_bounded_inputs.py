"""Every id, cursor, number and duration is bounded and a value past it is a 4xx naming it; JSON
bodies are UTF-8 and unambiguous; numbers are dialed and stored in E.164, with what was sent."""

from __future__ import annotations

import json
from typing import Any

import pytest

from .conftest import Running

ALICE = "alice@example.com"
HUGE = "99999999999999999999999"
CSV = b"phone,name\n+14155550100,Ann\n"


def _page_session(running: Running) -> None:
    signed = running.http.post("/page/signin", data={"key": running.key}, follow_redirects=False)
    assert signed.status_code == 303, signed.text


@pytest.mark.parametrize("value", [HUGE, "-1", "1e3", "\u0661\u0662", str(2**63)])
@pytest.mark.parametrize("way", ["bearer", "page session"])
def test_a_last_event_id_past_the_bounds_is_400_naming_it(
    running: Running, way: str, value: str
) -> None:
    headers: list[tuple[bytes, bytes]] = []
    if way == "bearer":
        headers = [(k.encode(), v.encode()) for k, v in running.headers().items()]
    else:
        _page_session(running)
    headers.append((b"Last-Event-ID", value.encode()))  # the raw UTF-8 bytes, as sent
    answer = running.http.get("/v1/events", headers=headers)
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["path"] == "header:Last-Event-ID"
    assert "Last-Event-ID" in error["message"]


def test_a_call_stream_checks_its_last_event_id_too(running: Running) -> None:
    call = running.dial({"agent": ALICE, "to": "+14155550100"}, "bound-1").json()
    answer = running.http.get(
        f"/v1/calls/{call['id']}/events", headers=running.headers(**{"Last-Event-ID": HUGE})
    )
    assert answer.status_code == 400
    assert answer.json()["error"]["path"] == "header:Last-Event-ID"


def test_the_pages_after_cursor_is_bounded(running: Running) -> None:
    _page_session(running)
    answer = running.http.get("/v1/events", params={"after": HUGE})
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"]["path"] == "query:after"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("retryNoAnswer", "999999999999h"),
        ("retryNoAnswer", "9" * 400),
        ("retryNoAnswer", "367d"),
        ("retryBusy", "8785h"),
        ("end", "9999-12-31T23:59:59-14:00"),
        ("end", "0001-01-01T00:00+14:00"),
        ("maxAttempts", "99999999999999999999999"),
        ("concurrency", "-1"),
        ("window", "99999999999:00-1:00"),
    ],
)
def test_a_campaign_setting_past_the_bounds_is_422(
    running: Running, field: str, value: str
) -> None:
    admin = running.make_key("campaigns", scopes=("campaigns", "dial", "watch"))
    for route in ("/v1/campaigns/preview", "/v1/campaigns"):
        answer = running.http.post(
            route,
            files={"file": ("list.csv", CSV, "text/csv")},
            data={"agents": ALICE, field: value},
            headers=running.headers(admin),
        )
        assert answer.status_code == 422, answer.text
        error = answer.json()["error"]
        if field.startswith("retry"):
            assert error["path"].endswith(field)


@pytest.mark.parametrize(
    "route",
    [
        "/v1/calls/" + "c" * 5000,
        "/v1/calls/" + "c" * 5000 + "/events",
        "/v1/campaigns/cmp_" + "a" * 5000,
        "/v1/campaigns/cmp_" + "a" * 5000 + "/report",
        "/v1/campaigns/cmp_\u0661\u0662",
    ],
)
def test_overlong_ids_are_4xx_not_500(running: Running, route: str) -> None:
    key = running.make_key("all", scopes=("admin",))
    answer = running.http.get(route, headers=running.headers(key))
    assert 400 <= answer.status_code < 500, (answer.status_code, answer.text[:200])
    assert "error" in answer.json()


def _post_raw(
    running: Running, body: bytes, content_type: str = "application/json"
) -> dict[str, Any]:
    answer = running.http.post(
        "/v1/calls",
        content=body,
        headers=running.headers(**{"Idempotency-Key": "raw-1", "Content-Type": content_type}),
    )
    assert answer.status_code == 400, answer.text
    assert running.store.list_calls() == []  # nothing claimed, nothing dialed
    error: dict[str, Any] = answer.json()["error"]
    return error


def test_duplicate_json_keys_are_refused(running: Running) -> None:
    body = b'{"agent": "alice@example.com", "to": "+14155550100", "to": "+14155550103"}'
    error = _post_raw(running, body)
    assert error["type"] == "duplicate_json_key"
    assert "'to'" in error["message"]


def test_a_utf16_body_is_refused(running: Running) -> None:
    body = json.dumps({"agent": ALICE, "to": "+14155550100"}).encode("utf-16")
    assert _post_raw(running, body)["type"] == "not_utf8"


def test_a_declared_non_utf8_charset_is_refused(running: Running) -> None:
    body = json.dumps({"agent": ALICE, "to": "+14155550100"}).encode()
    error = _post_raw(running, body, "application/json; charset=latin-1")
    assert error["type"] == "unsupported_charset"


@pytest.mark.parametrize(
    "body", [b'{"agent": NaN}', b"[" * 20000 + b"]" * 20000, b"\xef\xbb\xbf{}"]
)
def test_json_that_is_not_plain_json_is_refused(running: Running, body: bytes) -> None:
    assert _post_raw(running, body)["type"] == "malformed_json"


@pytest.mark.parametrize(
    ("sent", "country"),
    [
        ("-14155550100", None),
        (
            "+\u0661\u0664\u0661\u0665\u0665\u0665\u0665\u0660\u0661\u0660\u0660",
            None,
        ),  # Arabic-Indic
        ("(415) 555-0100", None),
        ("415.555.0100", "US"),
    ],
)
def test_numbers_are_dialed_and_stored_in_e164_with_what_was_sent(
    running: Running, sent: str, country: str | None
) -> None:
    body = {"agent": ALICE, "to": sent, **({"defaultCountry": country} if country else {})}
    answer = running.dial(body, f"e164-{sent.encode().hex()}")
    assert answer.status_code == 202, answer.text
    call = answer.json()
    assert (call["to"], call["toAsSent"]) == ("+14155550100", sent)
    again = running.http.get(f"/v1/calls/{call['id']}", headers=running.headers()).json()
    assert (again["to"], again["toAsSent"]) == ("+14155550100", sent)
    (stored,) = running.store.list_calls()
    assert stored.to == "+14155550100"


def test_a_national_number_is_read_in_the_default_country(running: Running) -> None:
    answer = running.dial({"agent": ALICE, "to": "020 7946 0018", "defaultCountry": "GB"}, "gb-1")
    assert answer.status_code == 202, answer.text
    assert answer.json()["to"] == "+442079460018"
