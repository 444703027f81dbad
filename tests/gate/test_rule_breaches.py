"""The gate's calling rules for one number at one instant (pure): the do-not-call list and the
calling window in the number's time zone(s), with the contact's local time named."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gcdial.campaign.rules import CallingWindow, DoNotCallList, Rules, UnknownZone
from gcdial.errors import ConfigError
from gcdial.gate import rule_breaches
from gcdial.serve.config import CALLING_WINDOW_ENV, ServeConfig

# Monday 2026-12-07 09:30 UTC: 04:30 in New York, 01:30 in Los Angeles, 09:30 in London.
NOW = datetime(2026, 12, 7, 9, 30, tzinfo=UTC)
DAYTIME = Rules(window=CallingWindow.parse("08:00-21:00"))


@pytest.mark.parametrize(
    ("rules", "number", "listed", "expected"),
    [
        (DAYTIME, "+442079460100", None, []),
        (DAYTIME, "+442079460100", "asked", [("do_not_call", "Mon 09:30 Europe/London")]),
        (DAYTIME, "+442079460100", "", [("do_not_call", "Mon 09:30 Europe/London")]),
        (DAYTIME, "+12125550100", None, [("calling_window", "Mon 04:30 America/New_York")]),
        (
            DAYTIME,
            "+12125550100",
            "asked",
            [
                ("do_not_call", "Mon 04:30 America/New_York"),
                ("calling_window", "Mon 04:30 America/New_York"),
            ],
        ),
        # A list of the rules' own (a campaign's file) counts too, the window still asked.
        (
            Rules(
                window=CallingWindow.parse("08:00-21:00"),
                dnc=DoNotCallList(frozenset({"+12125550100"})),
            ),
            "+12125550100",
            None,
            [
                ("do_not_call", "Mon 04:30 America/New_York"),
                ("calling_window", "Mon 04:30 America/New_York"),
            ],
        ),
        (Rules(window=CallingWindow.parse("00:00-24:00")), "+12125550100", None, []),
        # No known zone: refused by default, dialed at any hour with unknown_zone=any.
        (DAYTIME, "+80012345678", None, [("unknown_time_zone", None)]),
        (Rules(unknown_zone=UnknownZone.ANY), "+80012345678", None, []),
        (
            Rules(fallback_zone="Europe/London"),
            "+80012345678",
            None,
            [],
        ),
    ],
)
def test_rule_breaches(
    rules: Rules, number: str, listed: str | None, expected: list[tuple[str, str | None]]
) -> None:
    found = rule_breaches(rules, number, NOW, listed=listed)
    assert [(b.rule, b.local_time) for b in found] == expected


def test_a_refusal_says_why_and_when() -> None:
    (window,) = rule_breaches(DAYTIME, "+12125550100", NOW)
    assert "outside the calling window 08:00-21:00 (04:30 in America/New_York)" in window.message
    (listed,) = rule_breaches(DAYTIME, "+442079460100", NOW, listed="complaint 2026-11")
    assert listed.message == "+442079460100 is on the do-not-call list (complaint 2026-11)"


def test_the_services_window_is_a_setting_with_a_daytime_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(CALLING_WINDOW_ENV, raising=False)
    assert ServeConfig().calling_window == "08:00-21:00"
    assert rule_breaches(ServeConfig().call_rules, "+12125550100", NOW)[0].rule == "calling_window"
    monkeypatch.setenv(CALLING_WINDOW_ENV, "00:00-24:00")
    assert rule_breaches(ServeConfig().call_rules, "+12125550100", NOW) == ()
    monkeypatch.setenv(CALLING_WINDOW_ENV, "9-5")
    with pytest.raises(ConfigError, match="calling window"):
        ServeConfig()
    with pytest.raises(ConfigError, match="unknown-zone policy 'never'"):
        ServeConfig(calling_window="08:00-21:00", unknown_zone="never")
