"""A CRM ties calls to its records: what it sent comes back on the call, its events and its
webhooks; it finds calls by attribute; it reads the whole history a page at a time."""

from __future__ import annotations

import base64
import json
import time
import uuid
from typing import Any

from gcdial.serve.store import CallRecord

from .conftest import Running
from .test_events_webhooks import Receiver, _register, _wait, receiver, sse_events

__all__ = ["receiver"]  # the fixture, used here by name

ALICE = "alice@example.com"
LINKED = {
    "agent": ALICE,
    "to": "(415) 555-0100",
    "defaultCountry": "US",
    "callerId": "415 555 0199",
    "label": "Ticket 4711",
    "attributes": {"ticket": "4711", "crm.account": "ACME & Co"},
}


def _echoes(call: dict[str, Any]) -> None:
    assert call["to"] == "+14155550100"
    assert call["toAsSent"] == "(415) 555-0100"
    assert call["callerId"] == "+14155550199"
    assert call["label"] == "Ticket 4711"
    assert call["attributes"] == {"ticket": "4711", "crm.account": "ACME & Co"}


def test_the_call_its_events_and_its_webhooks_echo_what_the_crm_sent(
    running: Running, receiver: tuple[Receiver, str]
) -> None:
    state, url = receiver
    _register(running, url)
    answer = running.dial(LINKED, "link-1")
    assert answer.status_code == 202, answer.text
    _echoes(answer.json())
    call_id = answer.json()["id"]
    over = running.wait_call(call_id, lambda c: c["ended"])
    _echoes(over)
    with running.http.stream(
        "GET", f"/v1/calls/{call_id}/events", headers=running.headers()
    ) as response:
        events = sse_events(response, 100)
    assert events[-1]["event"] == "call.ended"
    for event in events:
        _echoes(json.loads(event["data"])["call"])
    _wait(lambda: any(json.loads(g["body"])["type"] == "call.ended" for g in state.got))
    for got in state.got:
        _echoes(json.loads(got["body"])["data"]["call"])


def test_calls_are_found_by_attribute(running: Running) -> None:
    found = running.dial(LINKED, "link-2").json()
    running.wait_call(found["id"], lambda c: c["ended"])  # one call per agent at a time
    other = running.dial(
        {"agent": ALICE, "to": "+14155550101", "attributes": {"ticket": "4712"}}, "link-3"
    ).json()
    running.wait_call(other["id"], lambda c: c["ended"])

    def ids(query: str) -> list[str]:
        answer = running.http.get(f"/v1/calls?{query}", headers=running.headers())
        assert answer.status_code == 200, answer.text
        return [c["id"] for c in answer.json()["calls"]]

    assert ids("attribute.ticket=4711") == [found["id"]]
    assert ids("attribute.ticket=4712") == [other["id"]]
    assert ids("attribute.crm.account=ACME%20%26%20Co&attribute.ticket=4711") == [found["id"]]
    assert ids("attribute.crm.account=ACME%20%26%20Co&attribute.ticket=4712") == []
    assert ids("attribute.nothing=4711") == []
    assert ids("label=Ticket%204711") == [found["id"]]
    assert sorted(ids("")) == sorted([found["id"], other["id"]])


def test_bad_attribute_filters_are_refused_by_name(running: Running) -> None:
    def refused(query: str) -> dict[str, Any]:
        answer = running.http.get(f"/v1/calls?{query}", headers=running.headers())
        assert answer.status_code == 422, answer.text
        error: dict[str, Any] = answer.json()["error"]
        return error

    assert refused("attribute.=1")["path"] == "query:attribute."
    assert refused(f"attribute.t={'x' * 1001}")["path"] == "query:attribute.t"
    assert refused("attribute.t=1&attribute.t=2")["path"] == "query:attribute.t"
    many = "&".join(f"attribute.a{n}=1" for n in range(6))
    assert refused(many)["path"] == "query:attribute.a5"
    assert "attribute.a5" not in refused(f"attribute.{'n' * 101}=1")["message"]


def _seed(running: Running, count: int, *, at: float, prefix: str) -> list[str]:
    """``count`` calls straight into the store, several sharing one created_at (ties)."""
    made = []
    for n in range(count):
        call_id = f"call_{prefix}{n:03d}"
        running.store.insert_call(
            CallRecord(
                id=call_id, api_key_id="seed", agent=ALICE, to="+14155550100",
                status="placed", created_at=at + n // 3, updated_at=at + n // 3,
                request=json.dumps({"agent": ALICE, "to": "+14155550100", "label": prefix}),
            )
        )  # fmt: skip
        made.append(call_id)
    return made


def test_paging_sees_every_call_once_while_calls_are_inserted(running: Running) -> None:
    old = _seed(running, 23, at=1_000_000.0, prefix="old")
    seen: list[str] = []
    url: str | None = "/v1/calls?limit=5"
    pages = 0
    while url is not None:
        answer = running.http.get(url, headers=running.headers(running.admin_key))
        assert answer.status_code == 200, answer.text
        page = answer.json()
        seen += [c["id"] for c in page["calls"]]
        # Newer calls arrive between pages: they belong to no page already walked past.
        _seed(running, 2, at=time.time() + pages, prefix=f"new{pages}-")
        pages += 1
        url = f"/v1/calls?limit=5&cursor={page['next']}" if page["next"] else None
    assert len(seen) == len(set(seen))
    assert seen == sorted(old, reverse=True)  # newest first, every old call exactly once
    assert pages == 5


def test_filters_hold_across_pages(running: Running) -> None:
    _seed(running, 7, at=2_000_000.0, prefix="a")
    _seed(running, 7, at=2_000_000.0, prefix="b")
    first = running.http.get(
        "/v1/calls?limit=4&label=a", headers=running.headers(running.admin_key)
    ).json()
    second = running.http.get(
        f"/v1/calls?limit=4&label=a&cursor={first['next']}",
        headers=running.headers(running.admin_key),
    ).json()
    assert second["next"] is None
    assert [c["id"] for c in first["calls"] + second["calls"]] == [
        f"call_a{n:03d}" for n in reversed(range(7))
    ]
    window = running.http.get(
        "/v1/calls?since=1970-01-24T03:33:21Z&until=1970-01-24T03:33:22Z",
        headers=running.headers(running.admin_key),
    ).json()
    # 2_000_001 s is 1970-01-24T03:33:21Z: calls 3-5 of each prefix.
    assert sorted(c["id"] for c in window["calls"]) == sorted(
        f"call_{p}{n:03d}" for p in "ab" for n in (3, 4, 5)
    )


def test_agent_status_outcome_and_source_filters_hold_across_pages(running: Running) -> None:
    """Each filter of GET /v1/calls, paged two at a time: exactly the seeded calls it names."""
    bob = "bob@example.com"
    kinds = [  # (agent, status, outcome, source), several calls of each, ties on created_at
        (ALICE, "placed", "answered", "api"),
        (bob, "placed", "busy", "api"),
        (ALICE, "not_placed", None, "campaign"),
        (bob, "unknown", None, "campaign"),
        (ALICE, "placed", "busy", "campaign"),
    ]
    seeded: list[tuple[str, tuple[str, str, str | None, str]]] = []
    for n in range(15):
        agent, status, outcome, source = kind = kinds[n % len(kinds)]
        call_id = f"call_f{n:03d}"
        running.store.insert_call(
            CallRecord(
                id=call_id, api_key_id="seed", agent=agent, to="+14155550100", status=status,
                outcome=outcome, source=source, created_at=6_000_000.0 + n // 4,
                updated_at=6_000_000.0 + n // 4,
                request=json.dumps({"agent": agent, "to": "+14155550100"}),
            )
        )  # fmt: skip
        seeded.append((call_id, kind))
    admin = running.headers(running.admin_key)
    window = "since=1970-03-11T10:40:00Z"  # 6_000_000 s: only these calls

    def walk(query: str) -> list[str]:
        ids: list[str] = []
        url: str | None = f"/v1/calls?limit=2&{window}&{query}"
        while url is not None:
            answer = running.http.get(url, headers=admin)
            assert answer.status_code == 200, (url, answer.text)
            page = answer.json()
            ids += [c["id"] for c in page["calls"]]
            url = (
                f"/v1/calls?limit=2&{window}&{query}&cursor={page['next']}"
                if page["next"]
                else None
            )
        return ids

    def expected(keep: Any) -> list[str]:
        return sorted((i for i, kind in seeded if keep(*kind)), reverse=True)

    for query, keep in [
        (f"agent={bob}", lambda a, s, o, src: a == bob),
        ("status=not_placed", lambda a, s, o, src: s == "not_placed"),
        ("outcome=busy", lambda a, s, o, src: o == "busy"),
        ("outcome=unknown", lambda a, s, o, src: (o or s) == "unknown"),  # no outcome: its status
        ("source=campaign", lambda a, s, o, src: src == "campaign"),
        (f"agent={ALICE}&source=campaign&status=placed", lambda a, s, o, src: (a, src, s)
         == (ALICE, "campaign", "placed")),
    ]:  # fmt: skip
        want = expected(keep)
        assert want, query  # each filter names some calls and leaves others out
        assert len(want) < len(seeded), query
        assert walk(query) == want, query
    assert len(walk("")) == len(seeded)


def test_a_tampered_reused_or_foreign_cursor_is_a_400_naming_it(running: Running) -> None:
    _seed(running, 4, at=3_000_000.0, prefix="t")
    admin = running.headers(running.admin_key)
    good = running.http.get("/v1/calls?limit=2", headers=admin).json()["next"]
    payload, mac = good.split(".")
    raw = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    raw[2] = "call_zzz"  # skip ahead to another place
    forged = base64.urlsafe_b64encode(json.dumps(raw).encode()).decode().rstrip("=")
    for cursor, query in [
        (f"{forged}.{mac}", ""),
        ("garbage", ""),
        (good + "A", ""),
        (good, "&status=placed"),  # made for other filters
        (str(uuid.uuid4()), ""),
    ]:
        answer = running.http.get(f"/v1/calls?limit=2&cursor={cursor}{query}", headers=admin)
        assert answer.status_code == 400, (cursor, answer.text)
        assert answer.json()["error"]["path"] == "query:cursor"
        assert "cursor" in answer.json()["error"]["message"]
    assert running.http.get(f"/v1/calls?limit=2&cursor={good}", headers=admin).status_code == 200


def test_a_stale_cursor_is_a_400(running: Running) -> None:
    from gcdial.serve.cursor import MAX_AGE_S, encode_cursor, filters_fingerprint

    _seed(running, 3, at=4_000_000.0, prefix="s")
    admin = running.headers(running.admin_key)
    fingerprint = filters_fingerprint(
        {"agent": None, "attributes": None}  # no filters: None ones are left out
    )
    key = running.store.cursor_key()
    last = (4_000_001.0, "call_s003")
    fresh = encode_cursor(key, last, fingerprint, now=time.time())
    stale = encode_cursor(key, last, fingerprint, now=time.time() - MAX_AGE_S - 60)
    assert running.http.get(f"/v1/calls?cursor={fresh}", headers=admin).status_code == 200
    answer = running.http.get(f"/v1/calls?cursor={stale}", headers=admin)
    assert answer.status_code == 400
    assert "stale" in answer.json()["error"]["message"]
    assert answer.json()["error"]["path"] == "query:cursor"


def test_campaigns_are_paged_by_cursor_while_campaigns_are_created(running: Running) -> None:
    from .test_campaigns_api import _create

    admin = running.headers(running.admin_key)
    made = [_create(running, running.admin_key, name=f"c{n}").json()["id"] for n in range(7)]
    seen: list[str] = []
    url: str | None = "/v1/campaigns?limit=3"
    while url is not None:
        answer = running.http.get(url, headers=admin)
        assert answer.status_code == 200, answer.text
        page = answer.json()
        seen += [c["id"] for c in page["campaigns"]]
        _create(running, running.admin_key, name="later")  # newer: on no page walked past
        url = f"/v1/campaigns?limit=3&cursor={page['next']}" if page["next"] else None
    assert seen == list(reversed(made))
    bad = running.http.get("/v1/campaigns?cursor=e30.AAAA", headers=admin)
    assert bad.status_code == 400
    assert bad.json()["error"]["path"] == "query:cursor"
    # A calls cursor is not a campaigns cursor.
    _seed(running, 2, at=5_000_000.0, prefix="x")
    calls_next = running.http.get("/v1/calls?limit=1", headers=admin).json()["next"]
    assert running.http.get(f"/v1/campaigns?cursor={calls_next}", headers=admin).status_code == 400
