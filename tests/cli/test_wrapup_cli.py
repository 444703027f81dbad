"""The CLI and wrap-ups, run as a user would: ``call --wait`` shows the agent's wrap-up (people and
``--json``), a bad rules file is exit 2 with its file and line, and the campaign preview says
which codes the org has, which are unmapped, and when no queue is set."""

from __future__ import annotations

from pathlib import Path

from gcdial.emulator import EmulatorServer

from .helpers import ALICE, Cli

SALES = "9ee00001-0000-4000-8000-000000000001"


def test_call_wait_shows_the_wrapup_to_people_and_scripts(cli: Cli) -> None:
    human = cli("call", "+14155550210", "--agent", ALICE, "--queue", SALES, "--wait")
    assert human.code == 0, human.err
    assert "wrap-up: Callback requested (Call back at " in human.out
    assert "; wrap-up Callback requested" in human.out

    scripted = cli("--json", "call", "+14155550105", "--agent", ALICE, "--queue", SALES, "--wait")
    assert scripted.code == 0, scripted.err
    lines = scripted.json_lines()
    assert lines[-1]["event"] == "outcome"
    assert lines[-1]["wrapup"]["name"] == "Sale"
    assert lines[-1]["wrapup"]["code"] == "c0de0001-0000-4000-8000-000000000001"
    assert lines[-1]["wrapupMissing"] is False
    assert [line["event"] for line in lines].count("wrapup") == 1


def test_call_wait_without_a_queue_ends_with_the_call(cli: Cli) -> None:
    result = cli("--json", "call", "+14155550210", "--agent", ALICE, "--wait")
    assert result.code == 0, result.err
    outcome = result.json_lines()[-1]
    assert (outcome["wrapup"], outcome["wrapupMissing"]) == (None, False)


def test_a_wrapup_that_never_comes_is_said_plainly(cli: Cli) -> None:
    result = cli(
        "call", "+14155550510", "--agent", ALICE, "--queue", SALES, "--wait",
        "--wrapup-timeout", "0.5",
    )  # fmt: skip
    assert result.code == 0, result.err
    assert "no wrap-up arrived" in result.out


def test_a_bad_rules_file_is_exit_2_with_its_file_and_line(cli: Cli, work_dir: Path) -> None:
    (work_dir / "c.csv").write_text("phone\n+14155550105\n")
    (work_dir / "rules.toml").write_text('[codes]\n"Sale" = "done"\n"DNC" = "blacklist"\n')
    result = cli(
        "campaign", "run", "c.csv", "--agents", ALICE, "--queue", SALES,
        "--wrapup-rules", "rules.toml",
    )  # fmt: skip
    assert result.code == 2
    assert "rules.toml:3: codes.DNC: 'blacklist' is not an action" in result.err
    assert "retry after 2h" in result.err
    assert not (work_dir / "c.db").exists()


def test_the_preview_lists_the_orgs_unmapped_codes_and_a_missing_queue(
    cli: Cli, work_dir: Path, emulator: EmulatorServer
) -> None:
    (work_dir / "c.csv").write_text("phone\n+14155550105\n")
    (work_dir / "rules.toml").write_text('default = "done"\n[codes]\n"Sale" = "done"\n')
    with_queue = cli(
        "campaign", "run", "c.csv", "--agents", ALICE, "--queue", SALES,
        "--wrapup-rules", "rules.toml", "--dry-run",
    )  # fmt: skip
    assert with_queue.code == 0, with_queue.err
    assert f"calls placed for queue {SALES}" in with_queue.out
    assert "wrap-up 'sale': done" in with_queue.out
    assert "wrap-up codes of the org: Callback requested, Do not call, No answer" in with_queue.out
    assert "unmapped wrap-up codes of the org (get the default): " in with_queue.out
    assert "Callback requested, Do not call" in with_queue.out
    assert emulator.calls_created() == []

    without = cli("campaign", "run", "c.csv", "--agents", ALICE, "--dry-run")
    assert without.code == 0, without.err
    assert "no queue set: calls are not ACD calls and carry no wrap-up code" in without.out


def test_doctor_says_when_no_queue_is_set(cli: Cli) -> None:
    without = cli("doctor")
    assert without.code == 0, without.err
    assert "wrap-up: no queue set: calls are not ACD calls and carry no wrap-up code" in without.out
    with_queue = cli("doctor", env={"GCDIAL_QUEUE_ID": SALES})
    assert with_queue.code == 0, with_queue.err
    assert f"✓ wrap-up: calls are placed for queue {SALES}" in with_queue.out


def test_review_lists_the_calls_whose_wrapup_never_arrived(cli: Cli, work_dir: Path) -> None:
    (work_dir / "c.csv").write_text("phone\n+14155550105\n+14155550510\n")
    run = cli(
        "campaign", "run", "c.csv", "--agents", ALICE, "--queue", SALES,
        "--window", "00:00-24:00", "--wrapup-timeout", "1s",
    )  # fmt: skip
    assert run.code == 0, run.err
    review = cli("campaign", "review", "c.db")
    assert review.code == 0, review.err
    assert "line 3 +14155550510: no wrap-up arrived for call" in review.out
    assert "+14155550105" not in review.out
    status = cli("campaign", "status", "c.db")
    assert "Calls by wrap-up: Sale 1" in status.out
    assert "Wrap-up never arrived: 1 call(s)" in status.out
