"""What gcdial says: whole sentences, the option at fault, consistent wording, honest results."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from gcdial.emulator import EmulatorServer
from gcdial.errors import GcdialError, sentences

from .helpers import ALICE, Cli, Result, placed_id

COMMANDS = [
    [],
    ["call"],
    ["status"],
    ["hangup"],
    ["watch"],
    ["agent", "show"],
    ["agent", "find"],
    ["doctor"],
    ["login"],
    ["logout"],
    ["config", "init"],
    ["demo"],
    ["emulator", "serve"],
    ["campaign", "run"],
    ["campaign", "resume"],
    ["campaign", "status"],
    ["campaign", "report"],
]


def test_message_parts_are_joined_as_sentences() -> None:
    assert str(GcdialError("no such file", hint="Check the path")) == (
        "no such file. Check the path."
    )
    assert sentences("Done!", "Next?", None, "") == "Done! Next?"
    # After a list of rows, the hint starts on its own line instead of joining the last row.
    assert sentences("2 bad rows:\nx.csv:2: phone: too short.", "Fix them.") == (
        "2 bad rows:\nx.csv:2: phone: too short.\nFix them."
    )


def test_a_missing_file_reads_as_two_sentences(cli: Cli) -> None:
    result = cli("campaign", "run", "missing.csv", "--agents", ALICE, "--dry-run")
    assert result.code == 2, result.err
    assert "no such file. Check the path" in result.err


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["call", "+14155550100", "--from", "12"], "--from"),
        (["call", "12"], "TO"),
    ],
)
def test_a_bad_option_value_names_the_option(cli: Cli, args: list[str], option: str) -> None:
    result = cli(*args, "--agent", ALICE, "--dry-run")
    assert result.code == 2, result.err
    assert f"error: {option}: Invalid phone number '12'" in result.err


def test_a_bad_number_names_the_country_option_of_the_command_line(cli: Cli) -> None:
    result = cli("call", "020 7946 0018", "--agent", ALICE, "--dry-run")
    assert result.code == 2, result.err
    assert "(--country, now US; e.g. --country GB)" in result.err
    assert "GCDIAL_DEFAULT_COUNTRY" not in result.err


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "gcdial")
def test_help_shows_no_type_placeholders(cli: Cli, command: list[str]) -> None:
    result = cli(*command, "--help")
    assert result.code == 0, result.err
    assert not re.search(r"<[a-z\[\], |]+>|\{[a-z_]+\}", result.out), result.out


def test_call_help_names_its_values(cli: Cli) -> None:
    text = cli("call", "--help").out
    assert "Usage: gcdial call [OPTIONS] TO" in text
    assert "--from NUMBER" in text
    assert "--attr KEY=VALUE" in text
    assert "--timeout SECONDS" in text


@pytest.mark.parametrize("number", ["+14155550165", "+14155550175"], ids=["busy", "invalid"])
def test_both_legs_agree_on_who_ended_a_failed_call(cli: Cli, number: str) -> None:
    result = cli("call", number, "--agent", ALICE, "--wait", "--json")
    ended = {
        line["role"]: line["endedBy"]
        for line in result.json_lines()
        if line.get("event") == "participant_disconnected"
    }
    assert ended == {"agent": "system", "customer": "system"}, result.out
    outcome = result.json_lines()[-1]
    assert outcome["endedBy"] == "system"


def test_hangup_of_an_ended_call_says_it_had_ended(cli: Cli, emulator: EmulatorServer) -> None:
    cid = placed_id(cli("call", "+14155550165", "--agent", ALICE, "--wait", "--json"))
    result = cli("hangup", cid)
    assert result.code == 0, result.err
    assert "had already ended" in result.err
    assert "hung up" not in result.err
    data = cli("hangup", cid, "--json").json()
    assert data == {"id": cid, "hungUp": False, "alreadyEnded": True}


def test_hangup_of_a_live_call_hangs_it_up(cli: Cli, emulator: EmulatorServer) -> None:
    emulator.set_speed(1)
    cid = cli("call", "+14155550140", "--agent", ALICE).out.strip()
    result = cli("hangup", cid, "--json")
    assert result.code == 0, result.err
    assert result.json() == {"id": cid, "hungUp": True}
    assert "✓ hung up" in result.err


def test_times_shown_are_marked_utc(cli: Cli) -> None:
    cid = placed_id(cli("call", "+14155550165", "--agent", ALICE, "--wait", "--json"))
    waited = cli("watch", cid)
    timeline = [line for line in waited.out.splitlines() if "disconnected" in line]
    assert timeline
    assert all(re.match(r"\d\d:\d\d:\d\d\.\d{3} UTC ", line) for line in timeline)
    status = cli("status", cid)
    assert "started (UTC)\tconnected (UTC)\tended (UTC)" in status.out


def test_a_sandbox_call_without_wait_does_not_point_at_a_sandbox_that_is_gone(
    run_gcdial: Callable[..., Result],
) -> None:
    result = run_gcdial("--sandbox", "call", "+14155550100", "--agent", ALICE)
    assert result.code == 0, result.err
    assert "gcdial watch" not in result.err
    assert "add --wait to follow a sandbox call" in result.err


@pytest.mark.parametrize("command", ["status", "hangup"])
def test_an_id_from_an_earlier_sandbox_is_refused_for_what_it_is(
    run_gcdial: Callable[..., Result], command: str
) -> None:
    result = run_gcdial("--sandbox", command, "2f0e9c5e-0000-4000-8000-000000000000")
    assert result.code == 2, result.err
    assert "another region" not in result.err
    assert f"`gcdial {command}` cannot work with --sandbox" in result.err
    assert "new, empty emulator" in result.err


def test_every_figure_of_a_sandbox_call_is_on_the_sandbox_clock(
    run_gcdial: Callable[..., Result],
) -> None:
    """--hangup-after and --timeout count the same (accelerated) seconds as the talk time and the
    events' offsets, and the sandbox says that its clock is the one shown."""
    fast = {"GCDIAL_SANDBOX_SPEED": "5"}
    hung = run_gcdial(
        "--sandbox", "call", "+14155550100", "--agent", ALICE, "--wait", "--hangup-after", "5",
        env=fast,
    )  # fmt: skip
    assert hung.code == 0, hung.err
    talked = re.search(r"talked (\d+\.\d) s", hung.out + hung.err)
    assert talked is not None, hung.out
    assert 5.0 <= float(talked.group(1)) < 8.0, "5 sandbox seconds, not 5 real ones (25 at 5x)"
    assert "every time shown (and --timeout, --hangup-after) is sandbox time" in hung.err
    slow = {"GCDIAL_SANDBOX_SPEED": "2"}
    waited = run_gcdial(
        "--sandbox", "call", "+14155550100", "--agent", ALICE, "--wait", "--timeout", "1",
        env=slow,
    )  # fmt: skip
    assert waited.code == 124, waited.err
    offsets = [float(x) for x in re.findall(r"\+\s*(\d+\.\d)s", waited.out)]
    assert offsets, waited.out
    assert max(offsets) <= 1.0, f"an event after the 1 s timeout: {waited.out}"
    assert "gcdial watch" not in waited.err  # the sandbox is gone: nothing left to watch


def test_a_sandbox_campaign_reports_progress_on_the_sandbox_clock(
    run_gcdial: Callable[..., Result], work_dir: Path
) -> None:
    """--progress-every and "running" count sandbox seconds, like the journal's times: a call of
    16 sandbox seconds is reported every 2 of them."""
    (work_dir / "c.csv").write_text("phone\n+14155550100\n")
    result = run_gcdial(
        "--sandbox", "campaign", "run", "c.csv", "--agents", ALICE, "--window", "00:00-24:00",
        "--progress-every", "2s", env={"GCDIAL_SANDBOX_SPEED": "5"},
    )  # fmt: skip
    assert result.code == 0, result.err
    running = [int(s) for s in re.findall(r"running 0:00:(\d\d)", result.err)]
    assert len(running) >= 4, result.err
    assert max(running) >= 8, result.err
