"""Campaigns over HTTP: upload a CSV, start, pause, resume, stop, status, report."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from .conftest import Running

CSV = "phone,name\n+14155550100,Ann\n+14155550101,Ben\n+14155550102,Cid\nnot-a-number,Bad\n"


def _create(running: Running, key: str, data: bytes = CSV.encode(), **form: str) -> Any:
    return running.http.post(
        "/v1/campaigns",
        files={"file": ("contacts.csv", data, "text/csv")},
        data={"agents": "alice@example.com,bob@example.com", **form},
        headers=running.headers(key),
    )


def _wait_state(running: Running, key: str, campaign_id: str, states: set[str]) -> Any:
    deadline = time.monotonic() + 30
    while True:
        body = running.http.get(f"/v1/campaigns/{campaign_id}", headers=running.headers(key)).json()
        if body["state"] in states or time.monotonic() > deadline:
            return body
        time.sleep(0.1)


def test_campaign_runs_to_the_end_and_reports(running: Running) -> None:
    key = running.make_key("ops", scopes=("campaigns",), rate_per_minute=100_000)
    created = _create(running, key, window="00:00-23:59")
    assert created.status_code == 201, created.text
    campaign = created.json()
    assert campaign["state"] == "created"
    assert running.emulator.calls_created() == []
    cid = campaign["id"]
    started = running.http.post(f"/v1/campaigns/{cid}/start", headers=running.headers(key))
    assert started.status_code == 200, started.text
    again = running.http.post(f"/v1/campaigns/{cid}/start", headers=running.headers(key))
    assert again.status_code == 409
    done = _wait_state(running, key, cid, {"finished", "failed"})
    assert done["state"] == "finished", done
    assert done["counts"]["rowsRefused"] == 1
    assert len(running.emulator.calls_created()) == 3
    report = running.http.get(f"/v1/campaigns/{cid}/report", headers=running.headers(key))
    assert report.status_code == 200
    assert report.headers["content-type"].startswith("text/csv")
    assert report.text.count("\n") >= 4
    assert "+14155550100" in report.text
    over = running.http.post(f"/v1/campaigns/{cid}/resume", headers=running.headers(key))
    assert over.status_code == 409


def test_pause_resume_stop(running: Running) -> None:
    key = running.make_key("ops", scopes=("campaigns",), rate_per_minute=100_000)
    rows = "phone\n" + "".join(f"+1415555014{i}\n" for i in range(8))  # 40+ s talks
    cid = _create(running, key, rows.encode(), window="00:00-23:59").json()["id"]
    running.http.post(f"/v1/campaigns/{cid}/start", headers=running.headers(key))
    paused = running.http.post(f"/v1/campaigns/{cid}/pause", headers=running.headers(key))
    assert paused.status_code == 200, paused.text
    assert paused.json()["state"] in ("pausing", "paused")
    assert _wait_state(running, key, cid, {"paused"})["state"] == "paused"
    placed = len(running.emulator.calls_created())
    assert placed < 8
    resumed = running.http.post(f"/v1/campaigns/{cid}/resume", headers=running.headers(key))
    assert resumed.json()["state"] == "running"
    stopped = running.http.post(f"/v1/campaigns/{cid}/stop", headers=running.headers(key))
    assert stopped.json()["state"] in ("stopping", "stopped")
    assert _wait_state(running, key, cid, {"stopped"})["state"] == "stopped"
    numbers = [c.get("phoneNumber") for c in running.emulator.calls_created()]
    assert len(numbers) == len(set(numbers))  # nobody rung twice across pause and resume


def test_bad_uploads_and_scopes(running: Running) -> None:
    key = running.make_key("ops", scopes=("campaigns",))
    binary = _create(running, key, b"\x89PNG\r\n\x1a\n\x00\x00")
    assert binary.status_code == 422
    assert binary.json()["error"]["type"] == "invalid_csv"
    assert binary.json()["error"]["path"] == "form:file"
    no_phone = _create(running, key, b"name,email\nAnn,a@x\n")
    assert "no 'phone' column" in no_phone.json()["error"]["message"]
    bad_window = _create(running, key, window="25:00-26:00")
    assert bad_window.status_code == 422
    assert bad_window.json()["error"]["type"] == "invalid_settings"
    assert _create(running, running.key).status_code == 403  # dial,watch only
    missing = running.http.get("/v1/campaigns/cmp_nothere", headers=running.headers(key))
    assert missing.status_code == 404
    assert running.emulator.calls_created() == []


def test_two_supervisors_acting_at_the_same_moment(running: Running) -> None:
    """Two starts (or pauses) of one campaign sent together: exactly one applies, the other is a
    409 that says why; the campaign runs once, its state stays true, nobody is rung twice."""
    key = running.make_key("ops", scopes=("campaigns",), rate_per_minute=100_000)
    rows = "phone\n" + "".join(f"+1415555014{i}\n" for i in range(6))  # 40+ s talks
    cid = _create(running, key, rows.encode(), window="00:00-23:59").json()["id"]

    def together(action: str) -> list[Any]:
        with ThreadPoolExecutor(4) as pool:
            return list(
                pool.map(
                    lambda _: running.http.post(
                        f"/v1/campaigns/{cid}/{action}", headers=running.headers(key)
                    ),
                    range(4),
                )
            )

    starts = together("start")
    assert sorted(r.status_code for r in starts) == [200, 409, 409, 409], [r.text for r in starts]
    assert all(r.json()["error"]["type"] == "campaign_running" for r in starts if r.is_error)
    assert _wait_state(running, key, cid, {"running"})["state"] == "running"
    pauses = together("pause")
    assert sorted(r.status_code for r in pauses) == [200, 409, 409, 409], [r.text for r in pauses]
    assert _wait_state(running, key, cid, {"paused"})["state"] == "paused"
    numbers = [c.get("phoneNumber") for c in running.emulator.calls_created()]
    assert len(numbers) == len(set(numbers))


def test_a_list_not_in_utf8_gets_the_command_lines_message(
    running: Running, tmp_path: Path
) -> None:
    """The HTTP preview and `gcdial campaign run --dry-run` read a Windows-1252 list through one
    decoder: both name the line and column of the bad byte and suggest iconv."""
    key = running.make_key("ops", scopes=("campaigns",))
    data = "phone,name\n+14155550100,Ann\n+14155550101,Ren\u00e9e\n".encode("cp1252")
    preview = running.http.post(
        "/v1/campaigns/preview",
        files={"file": ("contacts.csv", data, "text/csv")},
        data={"agents": "alice@example.com"},
        headers=running.headers(key),
    )
    assert preview.status_code == 422, preview.text
    error = preview.json()["error"]
    reason = "byte 0xE9 (file offset 44, column 17) is not valid UTF-8"
    assert f"line 3: {reason}" in error["message"]
    assert "iconv -f WINDOWS-1252 -t UTF-8" in error["hint"]
    (tmp_path / "contacts.csv").write_bytes(data)
    cli = subprocess.run(
        [str(Path(sys.executable).parent / "gcdial"), "campaign", "run", "contacts.csv",
         "--agents", "alice@example.com", "--dry-run"],
        cwd=tmp_path, capture_output=True, text=True, timeout=30, check=False,
        env={"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path)},
    )  # fmt: skip
    assert cli.returncode == 2, cli.stderr
    assert f"contacts.csv:3: {reason}" in cli.stderr
    assert "iconv -f WINDOWS-1252 -t UTF-8" in cli.stderr
