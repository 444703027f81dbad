"""Rate limits per token: headers on every response, 429 with Retry-After, per-bucket limits."""

import time
from typing import Any

import httpx

from gcdial.emulator import EmulatorServer

from .helpers import ALICE, api, assert_error, client_token

HEADERS = ("inin-ratelimit-count", "inin-ratelimit-allowed", "inin-ratelimit-reset")


def test_headers_on_every_response(emulator: EmulatorServer) -> None:
    with api(emulator) as http:
        responses = [
            http.get(f"/api/v2/users/{ALICE}"),
            http.get("/api/v2/users/me"),
            http.get("/api/v2/no/such/route"),
            http.post("/oauth/token", data={"grant_type": "client_credentials"}),
        ]
    for response in responses:
        for header in HEADERS:
            assert response.headers[header].isdigit(), (response.request.url, header)
        assert response.headers["ININ-Correlation-Id"]
    assert responses[0].headers["inin-ratelimit-allowed"] == "300"
    assert [r.headers["inin-ratelimit-count"] for r in responses[:3]] == ["1", "2", "3"]


def test_correlation_id_is_echoed_or_fresh(emulator: EmulatorServer) -> None:
    with api(emulator) as http:
        echoed = http.get(f"/api/v2/users/{ALICE}", headers={"ININ-Correlation-Id": "abc-123"})
        fresh = [http.get(f"/api/v2/users/{ALICE}").headers["ININ-Correlation-Id"] for _ in "ab"]
    assert echoed.headers["ININ-Correlation-Id"] == "abc-123"
    assert fresh[0] != fresh[1]


def test_limit_per_token_and_window(make_emulator: Any) -> None:
    emu = make_emulator(rate_limit_per_minute=3, rate_limit_window_s=0.3)
    token = client_token(emu)
    with api(emu, token) as http:
        ok = [http.get(f"/api/v2/users/{ALICE}") for _ in range(3)]
        assert [r.status_code for r in ok] == [200, 200, 200]
        refused = http.get(f"/api/v2/users/{ALICE}")
        body = assert_error(refused, 429, "too.many.requests")
        assert body["limit"]["value"] == 3
        assert refused.headers["Retry-After"] == "1"
        assert refused.headers["inin-ratelimit-count"] == "3"
        assert refused.headers["inin-ratelimit-allowed"] == "3"
        with api(emu) as other_token:
            assert other_token.get(f"/api/v2/users/{ALICE}").status_code == 200
        time.sleep(0.35)
        assert http.get(f"/api/v2/users/{ALICE}").status_code == 200
    assert emu.request_counts()["byRoute"]["GET /api/v2/users/{userId}"] == 6


def test_bucket_override_limits_only_that_route(make_emulator: Any) -> None:
    emu = make_emulator(rate_limit_buckets={"create_call": 2})
    with api(emu) as http:
        url = f"/api/v2/conversations/calls/user/{ALICE}"
        codes = [http.post(url, json={"phoneNumber": "+14155550170"}).status_code for _ in "abc"]
        assert codes == [200, 200, 429]
        users = http.get(f"/api/v2/users/{ALICE}")
        assert users.status_code == 200
        assert users.headers["inin-ratelimit-allowed"] == "300"
    assert len(emu.calls_created()) == 2


def test_reset_forgets_rate_windows(make_emulator: Any) -> None:
    emu = make_emulator(rate_limit_per_minute=1)
    with httpx.Client(base_url=emu.base_url) as http:
        assert http.get("/api/v2/users/me").status_code == 401
        assert http.get("/api/v2/users/me").status_code == 429
        emu.reset()
        assert http.get("/api/v2/users/me").status_code == 401


def test_client_scope_counts_every_token_of_a_client_in_one_window(make_emulator: Any) -> None:
    emu = make_emulator(rate_limit_per_minute=3, rate_limit_window_s=30, rate_limit_scope="client")
    first, second = client_token(emu), client_token(emu)
    assert first != second
    with api(emu, first) as one, api(emu, second) as two:
        codes = [http.get(f"/api/v2/users/{ALICE}").status_code for http in (one, two, one, two)]
    assert codes == [200, 200, 200, 429]
    ledger = emu.rate_windows()
    # The token requests (Basic credentials) have windows of their own.
    [window] = [w for w in ledger["windows"] if w["key"] == emu.client_id]
    assert (window["allowed"], window["refused"], window["limit"]) == (3, 1, 3)
    assert window["end"] - window["start"] == 30
    assert ledger["refused"] == 1
    assert first not in str(ledger)
    assert second not in str(ledger)


def test_the_ledger_keeps_closed_windows_per_token(make_emulator: Any) -> None:
    emu = make_emulator(rate_limit_per_minute=5, rate_limit_window_s=0.2)
    first, second = client_token(emu), client_token(emu)
    with api(emu, first) as one, api(emu, second) as two:
        one.get(f"/api/v2/users/{ALICE}")
        one.get(f"/api/v2/users/{ALICE}")
        two.get(f"/api/v2/users/{ALICE}")
        time.sleep(0.25)
        one.get(f"/api/v2/users/{ALICE}")
    windows = [w for w in emu.rate_windows()["windows"] if "token" in w["key"]]
    assert [(w["allowed"], w["closed"]) for w in windows] == [(2, True), (1, True), (1, False)]
    assert windows[0]["key"] == windows[2]["key"] != windows[1]["key"]
    assert windows[0]["key"].startswith(emu.client_id + " token ")
