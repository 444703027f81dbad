"""A campaign's attempts over HTTP: newest first, a page at a time by a signed cursor, filtered
as /v1/calls is (agent, status, outcome); a tampered or foreign cursor is a 400 naming it."""

from __future__ import annotations

import time
from typing import Any

from .conftest import Running
from .test_campaigns_api import _create, _wait_state

# Three answered, one busy (NN 60-69), one invalid number (NN 70-79); each tried once.
ROWS = "phone\n+14155550101\n+14155550102\n+14155550165\n+14155550103\n+14155550175\n"


def _walk(running: Running, key: str, url: str) -> tuple[list[dict[str, Any]], int]:
    seen: list[dict[str, Any]] = []
    pages = 0
    nxt: str | None = None
    while True:
        answer = running.http.get(
            url + (f"&cursor={nxt}" if nxt else ""), headers=running.headers(key)
        )
        assert answer.status_code == 200, answer.text
        pages += 1
        seen += answer.json()["attempts"]
        nxt = answer.json()["next"]
        if nxt is None:
            return seen, pages


def test_attempts_are_paged_filtered_and_their_cursor_is_checked(running: Running) -> None:
    key = running.make_key("ops", scopes=("campaigns",), rate_per_minute=100_000)
    cid = _create(running, key, ROWS.encode(), window="00:00-23:59", maxAttempts="1").json()["id"]
    first = running.http.get(f"/v1/campaigns/{cid}/attempts", headers=running.headers(key))
    assert first.json() == {"attempts": [], "next": None}  # not started: nothing dialed
    running.http.post(f"/v1/campaigns/{cid}/start", headers=running.headers(key))
    assert _wait_state(running, key, cid, {"finished", "failed"})["state"] == "finished"

    every, pages = _walk(running, key, f"/v1/campaigns/{cid}/attempts?limit=2")
    assert pages == 3
    ids = [a["attemptId"] for a in every]
    assert ids == sorted(ids, reverse=True)
    assert len(set(ids)) == 5
    dialed = sorted(c["phoneNumber"] for c in running.emulator.calls_created())
    assert len(dialed) == 5
    by_line = {a["contact"]["line"]: a for a in every}
    assert by_line[4]["outcome"] == "busy"
    assert by_line[4]["status"] == "placed"
    assert {a["agent"] for a in every} <= {"alice@example.com", "bob@example.com"}
    # Each attempt names its call, which the calls API shows.
    call = running.http.get(every[0]["call"], headers=running.headers(running.admin_key))
    assert call.status_code == 200, call.text
    assert call.json()["campaign"]["id"] == cid

    busy, _ = _walk(running, key, f"/v1/campaigns/{cid}/attempts?limit=1&outcome=busy")
    assert [a["contact"]["line"] for a in busy] == [4]
    answered, _ = _walk(running, key, f"/v1/campaigns/{cid}/attempts?limit=1&outcome=answered")
    assert sorted(a["contact"]["line"] for a in answered) == [2, 3, 5]
    for agent in ("alice@example.com", "BOB@example.com"):
        mine, _ = _walk(running, key, f"/v1/campaigns/{cid}/attempts?agent={agent}")
        assert {a["agent"].lower() for a in mine} == {agent.lower()}
    assert _walk(running, key, f"/v1/campaigns/{cid}/attempts?status=unknown")[0] == []

    headers = running.headers(key)
    good = running.http.get(f"/v1/campaigns/{cid}/attempts?limit=2", headers=headers).json()
    other = _create(running, key, ROWS.encode()).json()["id"]
    calls_next = running.http.get(
        "/v1/calls?limit=1", headers=running.headers(running.admin_key)
    ).json()["next"]
    for url in [
        f"/v1/campaigns/{cid}/attempts?limit=2&cursor={good['next']}A",  # altered
        f"/v1/campaigns/{cid}/attempts?limit=2&status=placed&cursor={good['next']}",  # filters
        f"/v1/campaigns/{other}/attempts?limit=2&cursor={good['next']}",  # another campaign
        f"/v1/campaigns/{cid}/attempts?cursor={calls_next}",  # a calls cursor
    ]:
        answer = running.http.get(url, headers=headers)
        assert answer.status_code == 400, (url, answer.text)
        assert answer.json()["error"]["path"] == "query:cursor"
    # A cursor older than 7 days is stale; the same one made now is accepted.
    from gcdial.serve.cursor import MAX_AGE_S, encode_cursor, filters_fingerprint

    fingerprint = filters_fingerprint({"list": "attempts", "campaign": cid})
    key_bytes = running.store.cursor_key()
    now = time.time()
    fresh = encode_cursor(key_bytes, (3.0, "3"), fingerprint, now=now)
    stale = encode_cursor(key_bytes, (3.0, "3"), fingerprint, now=now - MAX_AGE_S - 60)
    after_3 = running.http.get(f"/v1/campaigns/{cid}/attempts?cursor={fresh}", headers=headers)
    assert [a["attemptId"] for a in after_3.json()["attempts"]] == [2, 1]
    old = running.http.get(f"/v1/campaigns/{cid}/attempts?cursor={stale}", headers=headers)
    assert old.status_code == 400
    assert "stale" in old.json()["error"]["message"]
    assert old.json()["error"]["path"] == "query:cursor"
    bad = running.http.get(f"/v1/campaigns/{cid}/attempts?status=ringing", headers=headers)
    assert bad.status_code == 422
    assert (
        running.http.get(
            f"/v1/campaigns/{cid}/attempts", headers=running.headers(running.key)
        ).status_code
        == 403
    )  # dial,watch only


def test_attempts_made_while_paging_never_shift_a_page(running: Running) -> None:
    """A supervisor pages through a running campaign's attempts: the pages after the first hold
    exactly the attempts older than it, each once, however many are made meanwhile."""
    key = running.make_key("ops", scopes=("campaigns",), rate_per_minute=100_000)
    rows = "phone\n" + "".join(f"+141555501{n:02d}\n" for n in range(10, 18))
    cid = _create(running, key, rows.encode(), window="00:00-23:59", maxAttempts="1").json()["id"]
    running.http.post(f"/v1/campaigns/{cid}/start", headers=running.headers(key))
    url = f"/v1/campaigns/{cid}/attempts?limit=1"
    deadline = time.monotonic() + 30
    while True:  # the first page once at least two attempts exist
        first = running.http.get(url, headers=running.headers(key)).json()
        if first["attempts"] and first["attempts"][0]["attemptId"] >= 2:
            break
        assert time.monotonic() < deadline, first
        time.sleep(0.05)
    newest = first["attempts"][0]["attemptId"]
    assert newest < 8, "the campaign was over before the first page: nothing to shift"
    walked, nxt = [], first["next"]
    while nxt:
        page = running.http.get(f"{url}&cursor={nxt}", headers=running.headers(key)).json()
        walked += [a["attemptId"] for a in page["attempts"]]
        nxt = page["next"]
    assert walked == list(range(newest - 1, 0, -1))
    assert _wait_state(running, key, cid, {"finished", "failed"})["state"] == "finished"
    every = running.http.get(url.replace("limit=1", "limit=50"), headers=running.headers(key))
    assert len(every.json()["attempts"]) == 8  # the attempts made meanwhile: on a new first page
