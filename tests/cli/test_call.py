"""``gcdial call``, ``status``, ``hangup``, ``watch``: as a user runs them, against the emulator."""

from __future__ import annotations

import signal
import subprocess
import time

import pytest

from gcdial.emulator import EmulatorServer

from .helpers import (
    ALICE,
    ALICE_ID,
    ANSWERS,
    DAVE,
    ERIN,
    GCDIAL,
    Cli,
    Result,
    assert_clean,
    emulator_env,
    secret_forms,
)

CREATE = "POST /api/v2/conversations/calls/user/{userId}"


def _creates(emulator: EmulatorServer) -> int:
    return int(emulator.request_counts()["byRoute"].get(CREATE, 0))


def test_call_places_one_call_and_prints_its_id(cli: Cli, emulator: EmulatorServer) -> None:
    result = cli("call", ANSWERS, "--agent", ALICE, "--from", "+14155550199", "--attr", "crm=42")
    assert result.code == 0, result.err
    calls = emulator.calls_created()
    assert len(calls) == 1
    assert result.out.strip() == calls[0]["id"]
    assert calls[0]["body"]["phoneNumber"] == ANSWERS
    assert calls[0]["body"]["callerId"] == "+14155550199"
    attributes = calls[0]["body"]["attributes"]
    assert attributes.pop("gcdialAttemptId") in result.err  # the tag, shown to the user
    assert attributes == {"crm": "42"}
    assert "presence AVAILABLE" in result.err


def test_call_json_and_national_number(cli: Cli, emulator: EmulatorServer) -> None:
    result = cli("call", "(415) 555-0101", "--country", "US", "--agent", ALICE_ID, "--json")
    assert result.code == 0, result.err
    data = result.json()
    assert data["placed"] is True
    assert data["id"] == emulator.calls_created()[0]["id"]
    assert emulator.calls_created()[0]["phoneNumber"] == "+14155550101"


@pytest.mark.parametrize("agent", [ALICE, ALICE_ID])
def test_dry_run_sends_nothing(cli: Cli, emulator: EmulatorServer, agent: str) -> None:
    before = emulator.request_counts()["total"]
    result = cli("call", ANSWERS, "--agent", agent, "--dry-run", "--json", "--label", "demo")
    assert result.code == 0, result.err
    assert emulator.request_counts()["total"] == before
    request = result.json()
    assert request["sent"] is False
    assert request["method"] == "POST"
    tag = request["attemptId"]
    assert request["body"] == {
        "phoneNumber": ANSWERS,
        "label": "demo",
        "attributes": {"gcdialAttemptId": tag},
    }
    assert request["headers"]["Authorization"] == "Bearer ***"
    expected = ALICE_ID if agent == ALICE_ID else "{userId}"
    assert request["url"].endswith(f"/api/v2/conversations/calls/user/{expected}")


def test_dry_run_human_form_is_an_http_message(cli: Cli, emulator: EmulatorServer) -> None:
    result = cli("call", ANSWERS, "--agent", ALICE_ID, "--dry-run")
    assert result.code == 0, result.err
    first = result.out.splitlines()[0]
    assert first == f"POST {emulator.base_url}/api/v2/conversations/calls/user/{ALICE_ID}"
    assert '"phoneNumber": "+14155550100"' in result.out
    assert "nothing was sent" in result.err
    assert emulator.request_counts()["total"] == 0


@pytest.mark.parametrize(
    ("args", "code", "words"),
    [
        (["12", "--agent", ALICE], 2, "Invalid phone number '12'"),
        (["+1415555CALL", "--agent", ALICE], 2, "letters"),
        ([ANSWERS, "--agent", ALICE, "--attr", "novalue"], 2, "KEY=VALUE"),
        ([ANSWERS, "--agent", ALICE, "--timeout", "5"], 2, "only makes sense with --wait"),
        ([ANSWERS], 2, "--agent"),
        ([ANSWERS, "--agent", "nobody@example.com"], 7, "No agent with email"),
        ([ANSWERS, "--agent", DAVE], 7, "no phone station"),
        ([ANSWERS, "--agent", ERIN], 7, "not active"),
        ([ANSWERS, "--agent", DAVE, "--no-check"], 7, "conversation.error.no.user.station"),
    ],
)
def test_call_refusals(
    cli: Cli, emulator: EmulatorServer, args: list[str], code: int, words: str
) -> None:
    result = cli("call", *args)
    assert result.code == code, result.err
    assert words in result.err
    assert emulator.calls_created() == []
    if code == 2:
        # Bad input is refused before anything is sent, the agent check included.
        assert emulator.request_counts()["total"] == 0


def test_refusal_json_error_document(cli: Cli) -> None:
    result = cli("call", ANSWERS, "--agent", DAVE, "--json")
    assert result.code == 7
    error = result.json()["error"]
    assert error["type"] == "AgentNotReadyError"
    assert error["exit_code"] == 7


def test_status_and_hangup(cli: Cli, emulator: EmulatorServer) -> None:
    emulator.set_speed(1)
    cid = cli("call", "+14155550149", "--agent", ALICE).out.strip()
    status = cli("status", cid)
    assert status.code == 0, status.err
    assert cid in status.out
    assert "agent" in status.out
    assert "Alice" in status.out
    assert "in progress" in status.err
    data = cli("status", cid, "--json").json()
    assert data["id"] == cid
    assert {p["purpose"] for p in data["participants"]} >= {"agent"}
    hung = cli("hangup", cid, "--json")
    assert hung.code == 0, hung.err
    assert hung.json() == {"id": cid, "hungUp": True}
    after = cli("status", cid, "--json").json()
    assert all(p["state"] in {"disconnected", "terminated"} for p in after["participants"])


@pytest.mark.parametrize("verb", ["status", "hangup", "watch"])
def test_unknown_conversation(cli: Cli, verb: str) -> None:
    result = cli(verb, "00000000-0000-4000-8000-000000000000")
    assert result.code == 4, result.err
    assert "404" in result.err
    assert "contextId" in result.err


@pytest.mark.parametrize(
    ("number", "code", "outcome"),
    [
        ("+14155550100", 0, "answered"),
        ("+14155550150", 10, "no_answer"),
        ("+14155550160", 11, "busy"),
        ("+14155550170", 12, "invalid_number"),
        ("+14155550180", 13, "unreachable"),
        ("+14155550190", 20, "agent_no_answer"),
        ("+14155550195", 21, "agent_rejected"),
    ],
)
def test_wait_exit_code_by_outcome(cli: Cli, number: str, code: int, outcome: str) -> None:
    result = cli("call", number, "--agent", ALICE, "--wait", "--json")
    assert result.code == code, result.err
    lines = result.json_lines()
    assert lines[0]["event"] == "placed"
    assert lines[-1]["event"] == "outcome"
    assert lines[-1]["outcome"] == outcome
    assert lines[-2]["event"] == "call_ended"
    kinds = [line["event"] for line in lines]
    assert kinds[1] == "agent_alerting"


def test_wait_human_view(cli: Cli) -> None:
    result = cli("call", ANSWERS, "--agent", ALICE, "--wait")
    assert result.code == 0, result.err
    assert "agent's phone is ringing" in result.out
    assert "customer answered" in result.out
    assert "outcome: answered" in result.out


def test_wait_timeout_and_hangup_after(cli: Cli, emulator: EmulatorServer) -> None:
    timed_out = cli("call", "+14155550149", "--agent", ALICE, "--wait", "--timeout", "0.3")
    assert timed_out.code == 124, timed_out.err
    assert "still in progress" in timed_out.err
    # At speed 5 this number talks for 12 real seconds, so the 0.2 s hang-up wins the race even
    # when a loaded machine is slow to start the command.
    emulator.set_speed(5)
    # alice may still be talking on the timed-out call (the gate would hold her): bob takes this
    # one (tests/cli/test_call_gate.py tests the hold).
    hung = cli(
        "call", "+14155550149", "--agent", "bob@example.com", "--wait", "--hangup-after", "0.2",
        "--json",
    )  # fmt: skip
    assert hung.code == 0, hung.err
    events = hung.json_lines()
    assert any(e["event"] == "hangup_requested" for e in events)
    assert events[-1]["outcome"] == "answered"
    # Talk time is far below the 59 s this number would talk for without the hang-up.
    assert events[-1]["talkSeconds"] < 40


def test_watch_a_call_placed_elsewhere(cli: Cli) -> None:
    cid = cli("call", "+14155550160", "--agent", ALICE).out.strip()
    watched = cli("watch", cid, "--json")
    assert watched.code == 11, watched.err
    assert watched.json_lines()[-1]["outcome"] == "busy"


def _popen(cli_env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(GCDIAL), *args],
        env=cli_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _read_until(proc: subprocess.Popen[str], words: str) -> list[str]:
    assert proc.stdout is not None
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if words in line:
            return lines
    raise AssertionError(f"{words!r} never came: {lines}")


def test_hangup_while_ringing_is_abandoned(
    cli: Cli, emulator: EmulatorServer, base_env: dict[str, str]
) -> None:
    emulator.set_speed(5)
    cid = cli("call", "+14155550150", "--agent", ALICE).out.strip()
    watcher = _popen({**base_env, **emulator_env(emulator)}, "watch", cid, "--json")
    _read_until(watcher, "customer_dialing")
    assert cli("hangup", cid).code == 0
    out, err = watcher.communicate(timeout=30)
    result = Result(watcher.returncode, out, err)
    assert_clean(result, secret_forms(emulator))
    assert result.code == 22, err
    assert result.json_lines()[-1]["outcome"] == "abandoned"


def test_ctrl_c_stops_following_but_not_the_call(
    emulator: EmulatorServer, base_env: dict[str, str]
) -> None:
    emulator.set_speed(1)
    waiting = _popen(
        {**base_env, **emulator_env(emulator)}, "call", ANSWERS, "--agent", ALICE, "--wait"
    )
    _read_until(waiting, "agent's phone is ringing")
    waiting.send_signal(signal.SIGINT)
    out, err = waiting.communicate(timeout=30)
    result = Result(waiting.returncode, out, err)
    assert_clean(result, secret_forms(emulator))
    assert result.code == 130
    assert "the call goes on" in err
    calls = emulator.calls_created()
    assert len(calls) == 1
    assert calls[0]["state"] != "disconnected"  # Ctrl-C stopped the watching, not the call


@pytest.mark.parametrize("wait", [[], ["--wait"]])
def test_ctrl_c_while_placing_is_outcome_unknown(
    emulator: EmulatorServer, base_env: dict[str, str], wait: list[str]
) -> None:
    emulator.add_fault(route="create_call", mode="hang_after_create", seconds=20)
    placing = _popen(
        {**base_env, **emulator_env(emulator)}, "call", ANSWERS, "--agent", ALICE, *wait
    )
    deadline = time.monotonic() + 15
    while not emulator.calls_created():
        assert time.monotonic() < deadline, "the call was never created"
        time.sleep(0.05)
    placing.send_signal(signal.SIGINT)
    out, err = placing.communicate(timeout=30)
    result = Result(placing.returncode, out, err)
    assert_clean(result, secret_forms(emulator))
    # The POST went out and no answer came back: the call exists, so "interrupted" is not enough.
    assert result.code == 5, err
    assert "outcome is unknown" in err
    assert len(emulator.calls_created()) == 1


def test_ctrl_c_in_the_sandbox_does_not_say_the_call_goes_on(base_env: dict[str, str]) -> None:
    env = {**base_env, "GCDIAL_SANDBOX_SPEED": "1"}
    waiting = _popen(env, "--sandbox", "call", ANSWERS, "--agent", ALICE, "--wait")
    _read_until(waiting, "agent's phone is ringing")
    waiting.send_signal(signal.SIGINT)
    _, err = waiting.communicate(timeout=30)
    assert waiting.returncode == 130, err
    assert "goes on" not in err
    assert "the sandbox emulator stops with gcdial, so its call ended too" in err


def test_dry_run_needs_no_credentials_and_shows_the_attempt_id(run_gcdial: Cli) -> None:
    result = run_gcdial("call", ANSWERS, "--agent", ALICE, "--dry-run", "--json")
    assert result.code == 0, result.err
    request = result.json()
    assert request["url"] == "https://api.{region}/api/v2/conversations/calls/user/{userId}"
    assert request["body"]["attributes"] == {"gcdialAttemptId": request["attemptId"]}
    human = run_gcdial("call", ANSWERS, "--agent", ALICE, "--dry-run")
    assert human.code == 0, human.err
    assert "attempt id" in human.err
    assert "{region} is your Genesys Cloud region" in human.err
