"""The calling rules hold for every single call: the do-not-call list in the store and the calling
window in the contact's local time, for API and page dials alike; a key's ``warn`` policy, a
per-call override (scope, reason, audit line), and a store that cannot answer.

The service runs on a clock set to Monday 2026-12-07 04:30 in New York (09:30 in London), moving
at the real pace: a New York number is at night, a London one is not. The emulator's ledger
(``calls_created``) is the judge of what was dialed.
"""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from gcdial.client import AsyncClient
from gcdial.emulator import EmulatorServer
from gcdial.serve.app import create_app
from gcdial.serve.config import ServeConfig
from gcdial.serve.keys import new_api_key
from gcdial.serve.server import ServeServer
from gcdial.serve.sqlite_store import SqliteStore

from .conftest import Running

ALICE = "alice@example.com"
BOB = "bob@example.com"
NIGHT = "+12125550100"  # New York: 04:30 on the service's clock
DAY = "+442079460100"  # London: 09:30
LISTED_DAY = "+442079460142"  # London, on the do-not-call list
MONDAY_0930_UTC = datetime(2026, 12, 7, 9, 30, tzinfo=UTC).timestamp()


@dataclass
class RulesService:
    """The service at 04:30 New York time, with an admin key and keys of each rules policy."""

    http: httpx.Client
    store: SqliteStore
    path: Path
    emulator: EmulatorServer
    keys: dict[str, str]

    def dial(self, key: str, body: dict[str, Any], idem: str) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.keys[key]}", "Idempotency-Key": idem}
        return self.http.post("/v1/calls", json=body, headers=headers)

    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys['admin']}"}


@pytest.fixture
def rules_service(emulator: EmulatorServer, tmp_path: Path) -> Iterator[RulesService]:
    offset = MONDAY_0930_UTC - time.time()
    path = tmp_path / "serve.sqlite3"
    store = SqliteStore(path)
    app = create_app(
        store,
        lambda: AsyncClient(
            base_url=emulator.base_url,
            client_id=emulator.client_id,
            client_secret=emulator.client_secret,
        ),
        ServeConfig(calling_window="08:00-21:00", campaigns_dir=str(tmp_path / "campaigns")),
        clock=lambda: time.time() + offset,
        single_process=True,
    )
    server = ServeServer(app).start()
    keys: dict[str, str] = {}
    policies: dict[str, dict[str, Any]] = {
        "admin": {"scopes": ("admin",)},
        "crm": {"scopes": ("dial", "watch")},
        "desk": {"scopes": ("dial", "watch"), "rules": "warn"},
        "lead": {"scopes": ("dial", "watch", "override")},
    }
    for name, fields in policies.items():
        made = new_api_key(name, now=time.time() + offset, rate_per_minute=100_000, **fields)
        store.add_api_key(made.record)
        keys[name] = made.key
    with httpx.Client(base_url=server.base_url, timeout=30) as http:
        try:
            yield RulesService(http, store, path, emulator, keys)
        finally:
            server.stop()
            store.close()


def _placed(service: RulesService, answer: httpx.Response) -> dict[str, Any]:
    assert answer.status_code == 202, answer.text
    call: dict[str, Any] = answer.json()
    assert call["status"] == "placed", call
    return call


def test_dnc_and_night_numbers_are_refused_by_api_and_page(rules_service: RulesService) -> None:
    service = rules_service
    listed = service.http.post(
        "/v1/dnc",
        json={"number": "020 7946 0142", "defaultCountry": "GB", "reason": "asked by phone"},
        headers=service.admin(),
    )
    assert listed.status_code == 201, listed.text
    assert listed.json()["number"] == LISTED_DAY
    assert listed.json()["addedBy"] == "key:admin"
    again = service.http.post("/v1/dnc", json={"number": LISTED_DAY}, headers=service.admin())
    assert again.status_code == 200
    assert again.json()["reason"] == "asked by phone"  # the first entry stands

    on_list = service.dial("crm", {"agent": ALICE, "to": LISTED_DAY}, "dnc-1")
    assert on_list.status_code == 403, on_list.text
    body = on_list.json()
    assert body["error"]["type"] == "do_not_call"
    assert body["error"]["path"] == "$.to"
    assert "asked by phone" in body["error"]["message"]
    assert body["localTime"] == "Mon 09:30 Europe/London"
    assert "Mon 09:30 Europe/London" in body["error"]["message"]

    night = service.dial("crm", {"agent": ALICE, "to": NIGHT}, "night-1")
    assert night.status_code == 403, night.text
    body = night.json()
    assert body["error"]["type"] == "calling_window"
    assert body["localTime"] == "Mon 04:30 America/New_York"
    assert "04:30 in America/New_York" in body["error"]["message"]
    assert [rule["rule"] for rule in body["rules"]] == ["calling_window"]
    # The client knows better: this New York number's customer lives in London (09:30 there).
    moved = service.dial("crm", {"agent": BOB, "to": NIGHT, "timeZone": "Europe/London"}, "tz-1")
    assert moved.status_code == 202, moved.text
    assert len(service.emulator.calls_created()) == 1
    bad_zone = service.dial("crm", {"agent": BOB, "to": NIGHT, "timeZone": "Mars/Olympus"}, "tz-2")
    assert bad_zone.status_code == 422
    assert bad_zone.json()["error"]["path"] == "$.timeZone"

    # The page's dial is the same handler, reached by the session cookie and its CSRF token.
    with httpx.Client(base_url=str(service.http.base_url)) as page:
        assert page.post("/page/signin", data={"key": service.keys["crm"]}).status_code == 303
        found = re.search(r'name="csrf-token" content="([^"]+)"', page.get("/").text)
        assert found is not None
        headers = {"X-CSRF-Token": found.group(1)}
        for number, rule in ((NIGHT, "calling_window"), (LISTED_DAY, "do_not_call")):
            dialed = page.post(
                "/v1/calls",
                json={"agent": BOB, "to": number},
                headers={**headers, "Idempotency-Key": f"page-{number}"},
            )
            assert dialed.status_code == 403, dialed.text
            assert dialed.json()["error"]["type"] == rule

    assert len(service.emulator.calls_created()) == 1  # bob's call in London's time only
    listed_calls = service.http.get("/v1/calls", headers=service.admin()).json()["calls"]
    assert [c["agent"] for c in listed_calls] == [BOB]
    refused = [a for a in service.store.list_audit() if a.result == "refused_rules"]
    assert [a.number for a in refused] == [LISTED_DAY, NIGHT, NIGHT, LISTED_DAY]

    # Inside the window and off the list, the same key dials: the rules, not the key, refused.
    call = _placed(service, service.dial("crm", {"agent": ALICE, "to": DAY}, "day-1"))
    assert call["warnings"] == []
    assert len(service.emulator.calls_created()) == 2


def test_warn_policy_dials_and_the_call_carries_the_warnings(rules_service: RulesService) -> None:
    service = rules_service
    call = _placed(service, service.dial("desk", {"agent": ALICE, "to": NIGHT}, "desk-1"))
    assert [w["rule"] for w in call["warnings"]] == ["calling_window"]
    assert call["warnings"][0]["localTime"] == "Mon 04:30 America/New_York"
    assert len(service.emulator.calls_created()) == 1
    # The events (the SSE log and webhook payloads) carry the call with its warnings.
    events = service.store.events_after(0, call_id=call["id"])
    assert events
    for event in events:
        assert '"rule": "calling_window"' in event.data, event.type
    got = service.http.get(f"/v1/calls/{call['id']}", headers=service.admin()).json()
    assert got["warnings"] == call["warnings"]


def test_override_needs_the_scope_and_a_reason_and_is_audited(rules_service: RulesService) -> None:
    service = rules_service
    service.http.post("/v1/dnc", json={"number": NIGHT}, headers=service.admin())
    body: dict[str, Any] = {"agent": ALICE, "to": NIGHT, "override": {"reason": "called us back"}}
    no_scope = service.dial("crm", body, "ovr-1")
    assert no_scope.status_code == 403, no_scope.text
    assert no_scope.json()["error"]["type"] == "forbidden"
    assert "'override' scope" in no_scope.json()["error"]["message"]
    no_reason = service.dial("lead", {**body, "override": {"reason": "  "}}, "ovr-2")
    assert no_reason.status_code == 422, no_reason.text
    assert no_reason.json()["error"]["path"] == "$.override.reason"
    assert service.emulator.calls_created() == []

    call = _placed(service, service.dial("lead", body, "ovr-3"))
    assert sorted(w["rule"] for w in call["warnings"]) == ["calling_window", "do_not_call"]
    assert call["overrideReason"] == "called us back"
    lines = [a for a in service.store.list_audit() if a.action == "override"]
    assert len(lines) == 1
    assert lines[0].result == "applied"
    assert lines[0].number == NIGHT
    assert lines[0].detail is not None
    assert "called us back" in lines[0].detail
    assert len(service.emulator.calls_created()) == 1


def test_a_store_that_cannot_answer_refuses_the_dial(rules_service: RulesService) -> None:
    service = rules_service
    with sqlite3.connect(service.path) as other:  # the list's table is gone: lookups fail
        other.execute("DROP TABLE dnc")
    answer = service.dial("desk", {"agent": ALICE, "to": DAY}, "broken-1")
    assert answer.status_code == 503, answer.text
    assert answer.json()["error"]["type"] == "store_unavailable"
    assert service.emulator.calls_created() == []


def test_dnc_routes_page_by_cursor_remove_and_name_bad_numbers(
    rules_service: RulesService,
) -> None:
    service = rules_service
    entries = [{"number": f"+1415555{n:04d}", "reason": f"r{n}"} for n in range(5)]
    bad = service.http.post(
        "/v1/dnc/import",
        json={"entries": [*entries, {"number": "12"}]},
        headers=service.admin(),
    )
    assert bad.status_code == 422, bad.text
    assert bad.json()["error"]["path"] == "$.entries[5].number"
    assert service.http.get("/v1/dnc", headers=service.admin()).json()["entries"] == []
    done = service.http.post("/v1/dnc/import", json={"entries": entries}, headers=service.admin())
    assert done.json() == {"added": 5, "alreadyListed": 0}
    seen: list[str] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = service.http.get("/v1/dnc", params=params, headers=service.admin()).json()
        seen += [entry["number"] for entry in page["entries"]]
        cursor = page["next"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(e["number"] for e in entries)
    assert len(seen) == 5
    crm = {"Authorization": f"Bearer {service.keys['crm']}"}
    assert service.http.get("/v1/dnc", headers=crm).status_code == 403
    assert service.http.delete("/v1/dnc/+14155550003", headers=service.admin()).status_code == 204
    gone = service.http.delete("/v1/dnc/+14155550003", headers=service.admin())
    assert gone.status_code == 404
    changes = [(a.action, a.result, a.number) for a in service.store.list_audit()]
    assert changes == [
        ("dnc_import", "imported", None), ("dnc_remove", "removed", "+14155550003"),
    ]  # fmt: skip
    junk = service.http.delete("/v1/dnc/abc", headers=service.admin())
    assert junk.status_code == 422
    assert junk.json()["error"]["path"] == "path:number"
    # The OpenAPI document describes the routes, the override and the refusal's shape.
    spec = service.http.get("/openapi.json").json()
    assert {"/v1/dnc", "/v1/dnc/import", "/v1/dnc/{number}"} <= set(spec["paths"])
    assert "override" in spec["components"]["schemas"]["CallRequest"]["properties"]
    refusal = spec["paths"]["/v1/calls"]["post"]["responses"]["403"]
    assert refusal["content"]["application/json"]["schema"]["$ref"].endswith("/RuleRefusal")


def test_a_service_campaign_skips_numbers_on_the_stores_list(running: Running) -> None:
    running.emulator.set_speed(50)
    ops = running.make_key("ops", scopes=("campaigns",), rate_per_minute=100_000)
    listed = running.http.post(
        "/v1/dnc", json={"number": "+14155550111"}, headers=running.headers(running.admin_key)
    )
    assert listed.status_code == 201, listed.text
    rows = "".join(f"+141555501{n:02d},c{n}\n" for n in range(10, 13))
    created = running.http.post(
        "/v1/campaigns",
        files={"file": ("contacts.csv", f"phone,name\n{rows}".encode(), "text/csv")},
        data={"agents": ALICE, "window": "00:00-24:00"},
        headers=running.headers(ops),
    )
    assert created.status_code == 201, created.text
    cid = created.json()["id"]
    started = running.http.post(f"/v1/campaigns/{cid}/start", headers=running.headers(ops))
    assert started.status_code == 200, started.text
    deadline = time.monotonic() + 60
    campaign: dict[str, Any] = {}
    while time.monotonic() < deadline:
        campaign = running.http.get(f"/v1/campaigns/{cid}", headers=running.headers(ops)).json()
        if campaign["state"] in ("finished", "failed"):
            break
        time.sleep(0.2)
    assert campaign["state"] == "finished", campaign
    assert campaign["counts"]["outcomes"].get("do_not_call") == 1, campaign["counts"]
    dialed = sorted(c["phoneNumber"] for c in running.emulator.calls_created())
    assert dialed == ["+14155550110", "+14155550112"]


def test_a_claimed_key_replays_past_new_rules_and_a_refusal_claims_nothing(
    rules_service: RulesService,
) -> None:
    """The rules and the claim share one store hop: the earlier claim still answers first."""
    service = rules_service
    call = _placed(service, service.dial("crm", {"agent": ALICE, "to": DAY}, "replay-1"))
    listed = service.http.post("/v1/dnc", json={"number": DAY}, headers=service.admin())
    assert listed.status_code == 201, listed.text
    again = service.dial("crm", {"agent": ALICE, "to": DAY}, "replay-1")
    assert again.status_code == 202, again.text
    assert again.json()["id"] == call["id"]  # the stored answer, not a do-not-call refusal
    refused = service.dial("crm", {"agent": BOB, "to": DAY}, "refused-1")
    assert refused.status_code == 403, refused.text
    assert refused.json()["error"]["type"] == "do_not_call"
    crm = next(k for k in service.store.list_api_keys() if k.name == "crm")
    assert service.store.get_idempotency(crm.id, "refused-1") is None
    assert len(service.emulator.calls_created()) == 1
