"""Wrap-up rules: reading them (TOML, JSON), what one wrap-up does to its contact (a table), and
callback times, all pure; a bad rules file is a clear error with its file and line, exit 2."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gcdial.campaign.decide import (
    AttemptResult,
    Change,
    ResultKind,
    WrapupContext,
    journal_change,
    retry_decision,
)
from gcdial.campaign.rules import CallingWindow, RetryPolicy
from gcdial.campaign.wrapup_rules import (
    WrapupAction,
    WrapupRule,
    WrapupRules,
    callback_time,
    load_wrapup_rules,
    parse_rule,
)
from gcdial.errors import InputError, WrapupRulesFileError
from gcdial.monitor.wrapup import Wrapup

NOW = datetime(2026, 12, 7, 15, 0, tzinfo=UTC)  # 10:00 in New York
NY = ("America/New_York",)
RULES = WrapupRules.from_json(
    {
        "default": "done",
        "codes": {
            "Sale": "done",
            "Try later": "retry after 2h",
            "Callback": "callback",
            "Callback by list": "callback at notes or attribute best_time",
            "Do not call": "dnc",
            "c0de-wrong": "wrong number",
            "No answer": "policy",
        },
    }
)
POLICY = RetryPolicy(max_attempts=3, delays={"no_answer": timedelta(hours=1)})


def ended(
    code: str, name: str | None, notes: str | None = None, outcome: str = "answered"
) -> AttemptResult:
    return AttemptResult(
        ResultKind.ENDED,
        "the customer answered",
        outcome=outcome,
        wrapup=Wrapup(code=code, name=name, notes=notes),
    )


def change(result: AttemptResult, earlier: tuple[str, ...] = (), **context: object) -> Change:
    ctx = WrapupContext(
        RULES,
        CallingWindow.parse(str(context.get("window", "08:00-21:00"))),
        NY,
        {"best_time": str(context["best_time"])} if "best_time" in context else {},
    )
    return journal_change(result, list(earlier), POLICY, NOW, ctx)


@pytest.mark.parametrize(
    ("result", "earlier", "action", "retry_at", "dnc"),
    [
        (ended("c-1", "Sale"), (), "done", None, False),
        (ended("c-1", "sale"), (), "done", None, False),  # names match without case
        (ended("c0de-wrong", "Wrong"), (), "wrong_number", None, False),  # by code id
        (ended("c-4", "Do not call", "asked"), (), "dnc", None, True),
        (ended("c-5", "Try later"), (), "retry", NOW + timedelta(hours=2), False),
        (ended("c-5", "Try later"), ("answered", "answered"), "retry", None, False),  # 3 of 3
        (ended("c-9", "Unknown code"), (), "done", None, False),  # the default
        # callback at 3 pm New York time (20:00 UTC), inside the window
        (
            ended("c-2", "Callback", "call me back at 3pm"),
            (),
            "callback",
            NOW.replace(hour=20),
            False,
        ),
        # 10 pm is outside 08:00-21:00: the next morning's opening, 8 am New York (13:00 UTC)
        (
            ended("c-2", "Callback", "at 22:00 please"),
            (),
            "callback",
            NOW.replace(hour=13) + timedelta(days=1),
            False,
        ),
        # no time in the notes: the fallback, retry after 1 hour
        (ended("c-2", "Callback", "later"), (), "retry", NOW + timedelta(hours=1), False),
        # a callback asked at the last attempt is not one more
        (ended("c-2", "Callback", "at 3pm"), ("answered", "answered"), "callback", None, False),
    ],
)
def test_what_a_wrapup_does_to_its_contact(
    result: AttemptResult,
    earlier: tuple[str, ...],
    action: str,
    retry_at: datetime | None,
    dnc: bool,
) -> None:
    done = change(result, earlier)
    assert (done.wrapup_action, done.retry_at, done.dnc) == (action, retry_at, dnc)
    assert done.action == "outcome"
    assert done.outcome == "answered"
    assert done.wrapup == result.wrapup
    assert result.wrapup is not None
    assert (result.wrapup.name or "") in done.detail


def test_a_callback_reads_the_contacts_attribute_when_the_notes_have_no_time() -> None:
    done = change(ended("c-3", "Callback by list", "no time here"), best_time="2026-12-08 11:30")
    assert done.retry_at == datetime(2026, 12, 8, 16, 30, tzinfo=UTC)
    assert done.wrapup_action == "callback"


def test_policy_leaves_the_retry_policy_in_charge_and_no_rules_change_nothing() -> None:
    no_answer = ended("c-6", "No answer", outcome="no_answer")
    done = change(no_answer)
    assert (done.retry_at, done.wrapup_action) == (NOW + timedelta(hours=1), "policy")
    plain = journal_change(no_answer, [], POLICY, NOW)
    assert (plain.retry_at, plain.wrapup_action) == (NOW + timedelta(hours=1), "policy")


def test_a_wrapup_that_never_came_is_marked_for_review_and_the_policy_decides() -> None:
    missing = AttemptResult(ResultKind.ENDED, "answered", outcome="no_answer", wrapup_missing=True)
    done = change(missing)
    assert (done.wrapup_action, done.retry_at) == ("missing", NOW + timedelta(hours=1))


@pytest.mark.parametrize(
    ("action", "outcomes", "retry"),
    [
        ("callback", ["answered"], True),
        ("callback", ["answered"] * 3, False),
        ("retry", ["answered", "answered"], True),
        ("retry", ["answered"] * 3, False),
        (None, ["answered"], False),  # an answered call is final without a wrap-up rule
    ],
)
def test_a_scheduled_callback_or_retry_stays_due_within_the_attempts(
    action: str | None, outcomes: list[str], retry: bool
) -> None:
    assert retry_decision(POLICY, outcomes, NOW, wrapup_action=action).retry is retry


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("done", WrapupRule(WrapupAction.DONE)),
        ("  Retry after 2h ", WrapupRule(WrapupAction.RETRY, delay=timedelta(hours=2))),
        ("retry after 90m", WrapupRule(WrapupAction.RETRY, delay=timedelta(minutes=90))),
        ("retry after 1d", WrapupRule(WrapupAction.RETRY, delay=timedelta(days=1))),
        ("callback", WrapupRule(WrapupAction.CALLBACK, notes=True)),
        (
            "callback at attribute Best_Time",
            WrapupRule(WrapupAction.CALLBACK, attribute="Best_Time"),
        ),
        (
            "callback at notes or attribute when",
            WrapupRule(WrapupAction.CALLBACK, notes=True, attribute="when"),
        ),
        ("DNC", WrapupRule(WrapupAction.DNC)),
        ("do not call", WrapupRule(WrapupAction.DNC)),
        ("wrong number", WrapupRule(WrapupAction.WRONG_NUMBER)),
        ("wrong_number", WrapupRule(WrapupAction.WRONG_NUMBER)),
        ("policy", WrapupRule(WrapupAction.POLICY)),
    ],
)
def test_actions_read_as_written_and_back(text: str, rule: WrapupRule) -> None:
    assert parse_rule(text, where="x") == rule
    assert parse_rule(str(rule), where="x") == rule


@pytest.mark.parametrize(
    "text", ["retry", "retry after soon", "retry after 0h", "callback at lunch", "sell", 3]
)
def test_a_bad_action_is_refused_naming_where_and_the_actions(text: object) -> None:
    with pytest.raises(InputError, match=r"codes\.X") as info:
        WrapupRules.from_json({"codes": {"X": text}})
    assert "retry after 2h" in (info.value.hint or "")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("call back at 2026-12-08T09:30", datetime(2026, 12, 8, 14, 30, tzinfo=UTC)),
        ("Call back at 2026-12-07T17:00:36.000Z", datetime(2026, 12, 7, 17, 0, 36, tzinfo=UTC)),
        ("at 4:30 pm", datetime(2026, 12, 7, 21, 30, tzinfo=UTC)),
        ("9am tomorrow", datetime(2026, 12, 8, 14, 0, tzinfo=UTC)),  # 9 am has passed today
        ("room 12, ext 4", None),
        ("at 25:00", None),
        (None, None),
    ],
)
def test_callback_times_in_the_contacts_zone(text: str | None, expected: datetime | None) -> None:
    assert callback_time(text, NY[0], NOW) == expected


def test_the_default_mapping_and_the_unmapped_codes_of_the_org() -> None:
    org = {"c-1": "Sale", "c0de-wrong": "Wrong number", "c-7": "Not interested", "c-8": "Voicemail"}
    assert RULES.unmapped(org) == ["Not interested", "Voicemail"]
    assert RULES.rule_for("c-7", "Not interested") == (WrapupRule(WrapupAction.DONE), False)
    assert WrapupRules().default == WrapupRule(WrapupAction.POLICY)
    assert WrapupRules.from_json(RULES.to_json()) == RULES


def test_a_rules_file_reads_like_its_json_form(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_text(
        '# our dispositions\ndefault = "done"\n\n[codes]\n"Sale" = "done"\n'
        '"Do not call" = "dnc"\n"Call back" = "callback at notes or attribute best_time"\n'
    )
    rules = load_wrapup_rules(path)
    assert rules.rule_for(None, "call back")[0].attribute == "best_time"
    assert rules.default.action is WrapupAction.DONE


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ('default = "done"\n[codes]\n"Sale" = done\n', 3, "not valid TOML"),
        ('default = "done"\n\n[codes]\n"Sale" = "done"\n"DNC" = "block"\n', 5, "not an action"),
        ('default = "sometimes"\n', 1, "not an action"),
        ('deafult = "done"\n', 1, "unknown key 'deafult'"),
        ('[codes]\n"Try" = "retry after soon"\n', 2, "cannot read the delay"),
    ],
)
def test_a_bad_rules_file_says_which_file_and_line(
    tmp_path: Path, text: str, line: int, words: str
) -> None:
    path = tmp_path / "rules.toml"
    path.write_text(text)
    with pytest.raises(WrapupRulesFileError) as info:
        load_wrapup_rules(path)
    assert (info.value.file, info.value.line) == (str(path), line)
    assert str(info.value).startswith(f"{path}:{line}: ")
    assert words in str(info.value)


def test_a_missing_rules_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(WrapupRulesFileError, match="cannot be read"):
        load_wrapup_rules(tmp_path / "nope.toml")
