"""A campaign's upload preview and live detail over HTTP: /v1/campaigns/preview and /detail."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from .conftest import Running

ALICE = "alice@example.com"
# 2 good rows, then: an invalid number, a duplicate, a unknown time zone, a non-geographic number
# (no time zone: the rules skip it), a row with a missing field.
MIXED = (
    "phone,name,timezone\n"
    "+14155550101,Ann,\n"
    "+14155550102,Ben,\n"
    "555-01,Bad,\n"
    "+14155550101,Again,\n"
    "+14155550103,Zoe,Mars/Olympus\n"
    "+80012345678,Intl,\n"
    "+14155550104\n"
)


def _post(running: Running, path: str, key: str, data: bytes, **form: str) -> Any:
    return running.http.post(
        path,
        files={"file": ("contacts.csv", data, "text/csv")},
        data={"agents": ALICE, "window": "00:00-23:59", **form},
        headers=running.headers(key),
    )


def test_preview_lists_refused_rows_without_values_and_stores_nothing(running: Running) -> None:
    key = running.make_key("ops", scopes=("campaigns",), rate_per_minute=100_000)
    answer = _post(running, "/v1/campaigns/preview", key, MIXED.encode())
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["rows"] == {
        "total": 7,
        "accepted": 2,
        "refused": 5,
        "deferred": 0,
        "waitingForAgent": 0,
        "afterEnd": 0,
        "skipped": 1,  # refused by the rules, yet one of the campaign's contacts
    }
    assert body["canUpload"] is True
    assert body["moreRefused"] == 0
    by_line = {r["line"]: r for r in body["refused"]}
    assert sorted(by_line) == [4, 5, 6, 7, 8]
    assert by_line[4]["column"] == "phone"
    assert by_line[4]["reason"].startswith("invalid phone number")
    assert by_line[5]["kind"] == "duplicate"
    assert by_line[5]["reason"] == "duplicate of line 2 (same number)"
    assert by_line[6]["reason"] == "unknown time zone"
    assert by_line[7]["kind"] == "unknown_time_zone"
    assert "fields but the header has" in by_line[8]["reason"]
    assert all(r["fix"] for r in body["refused"])
    assert body["refusedByKind"] == {"duplicate": 1, "invalid": 3, "unknown_time_zone": 1}
    shown = answer.text
    for value in ("555-01", "+14155550101", "Mars/Olympus", "+80012345678", "Again"):
        assert value not in shown  # reasons never quote the row's values
    listed = running.http.get("/v1/campaigns/cmp_0", headers=running.headers(key))
    assert listed.status_code == 404
    assert running.store.list_campaigns() == []  # nothing stored
    assert running.emulator.calls_created() == []


def test_preview_caps_the_list_and_refuses_what_is_not_a_csv(running: Running) -> None:
    key = running.make_key("ops", scopes=("campaigns",), rate_per_minute=100_000)
    rows = "phone\n+14155550101\n" + "nope\n" * 250
    body = _post(running, "/v1/campaigns/preview", key, rows.encode()).json()
    assert len(body["refused"]) == 200
    assert body["moreRefused"] == 50
    assert body["rows"]["refused"] == 250
    binary = _post(running, "/v1/campaigns/preview", key, b"\x89PNG\r\n\x1a\n\x00\x00")
    assert binary.status_code == 422
    assert binary.json()["error"]["type"] == "invalid_csv"
    assert binary.json()["error"]["path"] == "form:file"
    twice = _post(running, "/v1/campaigns/preview", key, b"phone,Phone\n+14155550101,x\n")
    assert twice.status_code == 422
    error = twice.json()["error"]
    assert "line 1: the header names a column twice" in error["message"]
    assert "gcdial-preview" not in error["message"]  # no temporary path
    bad_retry = _post(running, "/v1/campaigns/preview", key, b"phone\n+14155550101\n",
                      retryNoAnswer="soon")  # fmt: skip
    assert bad_retry.status_code == 422
    assert bad_retry.json()["error"]["path"] == "form:retryNoAnswer"
    # Nothing to dial: the preview says so and create refuses it.
    none = _post(running, "/v1/campaigns/preview", key, b"phone\nnope\n").json()
    assert none["canUpload"] is False
    refused = _post(running, "/v1/campaigns", key, b"phone\nnope\n")
    assert refused.status_code == 422
    assert refused.json()["error"]["type"] == "no_rows_to_dial"
    assert _post(running, "/v1/campaigns/preview", running.key, b"phone\n").status_code == 403


def _detail(running: Running, key: str, cid: str) -> dict[str, Any]:
    answer = running.http.get(f"/v1/campaigns/{cid}/detail", headers=running.headers(key))
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def test_detail_shows_agents_rate_chart_and_deferred_retries(running: Running) -> None:
    key = running.make_key("ops", scopes=("campaigns",), rate_per_minute=100_000)
    rows = "phone,external_id\n+14155550101,A-1\n+14155550150,B-2\n"  # answered; no answer
    created = _post(running, "/v1/campaigns", key, rows.encode(), retryNoAnswer="10m",
                    agents=f"{ALICE},nobody@example.com")  # fmt: skip
    assert created.status_code == 201, created.text
    cid = created.json()["id"]
    before = _detail(running, key, cid)
    assert before["detail"]["running"] is False
    assert [a["agent"] for a in before["detail"]["agents"]] == [ALICE, "nobody@example.com"]
    assert before["detail"]["perMinute"]["counts"] == [0] * 60
    assert running.http.post(f"/v1/campaigns/{cid}/start", headers=running.headers(key)).is_success
    deadline = time.monotonic() + 30
    seen_running = False
    while True:
        body = _detail(running, key, cid)
        detail = body["detail"]
        if detail["running"] and detail["agents"][0]["state"] != "checking":
            seen_running = True
            states = {a["agent"]: a for a in detail["agents"]}
            assert states["nobody@example.com"]["state"] == "excluded"
            assert states["nobody@example.com"]["why"]
            assert states[ALICE]["state"] in ("idle", "on call")
            assert detail["rate"]["maxConcurrent"] == 1
            assert detail["rate"]["genesys"] is not None
        if detail["deferred"]["total"] == 1 and detail["progress"]["settled"] == 1:
            break
        assert time.monotonic() < deadline, body
        time.sleep(0.1)
    assert seen_running
    assert detail["progress"]["total"] == 2
    assert detail["progress"]["byOutcome"] == {"answered": 1}
    assert sum(detail["perMinute"]["counts"]) == 2
    # The run lasts under 30 s, so its calls are in the newest two buckets (this minute and the
    # one before, should a minute turn during the run); the chart is oldest first.
    assert sum(detail["perMinute"]["counts"][-2:]) == 2
    assert detail["rate"]["callsLastMinute"] == 2
    item = detail["deferred"]["items"][0]
    assert item["line"] == 3
    assert item["externalId"] == "B-2"
    assert "no_answer" in item["reason"]
    due = datetime.fromisoformat(item["dueAt"])
    assert 500 < (due - datetime.now(UTC)).total_seconds() <= 600
    stopped = running.http.post(f"/v1/campaigns/{cid}/stop", headers=running.headers(key))
    assert stopped.is_success
    while _detail(running, key, cid)["state"] != "stopped":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    after = _detail(running, key, cid)["detail"]
    assert after["running"] is False
    states = {a["agent"]: a for a in after["agents"]}
    assert states[ALICE]["calls"] == 2  # from the journal once it no longer runs here
    assert states["nobody@example.com"]["state"] == "excluded"
    assert after["deferred"]["total"] == 1
    assert len(running.emulator.calls_created()) == 2
