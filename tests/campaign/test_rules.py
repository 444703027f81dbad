from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gcdial.campaign.csvinput import Contact
from gcdial.campaign.rules import (
    Action,
    CallingWindow,
    DncFileError,
    DoNotCallList,
    RetryPolicy,
    Rules,
    UnknownZone,
)
from gcdial.errors import InputError

# Monday 2 March 2026: US still on standard time (DST starts 8 March), UK on GMT.
MONDAY = datetime(2026, 3, 2, tzinfo=UTC)

LOS_ANGELES = Contact(line=2, phone_e164="+14155550100")  # UTC-8
INDIANAPOLIS = Contact(line=3, phone_e164="+13175551234")  # America/New_York, UTC-5
LONDON = Contact(line=4, phone_e164="+442071234567")  # UTC+0
SOUTH_DAKOTA = Contact(line=5, phone_e164="+16055550100")  # Denver (-7) and Central (-6)
FREEPHONE = Contact(line=6, phone_e164="+80012345678")  # no geography


def at(hour: int, minute: int = 0, *, day: datetime = MONDAY) -> datetime:
    return day + timedelta(hours=hour, minutes=minute)


def test_number_zone_decides_the_window() -> None:
    rules = Rules()
    now = at(15)  # 07:00 in Los Angeles, 10:00 in Indianapolis, 15:00 in London
    la = rules.check(LOS_ANGELES, now)
    assert la.action is Action.DEFER
    assert la.at == at(16)
    assert "07:00 in America/Los_Angeles" in la.reason
    assert rules.check(INDIANAPOLIS, now).action is Action.DIAL
    assert rules.check(LONDON, now).action is Action.DIAL


def test_after_hours_waits_until_next_morning() -> None:
    rules = Rules()
    decision = rules.check(LONDON, at(21, 30))
    assert decision.action is Action.DEFER
    assert decision.at == at(8, day=MONDAY + timedelta(days=1))
    # 20:59 local is still inside, 21:00 is not (end is exclusive).
    assert rules.check(LONDON, at(20, 59)).action is Action.DIAL
    assert rules.check(LONDON, at(21)).action is Action.DEFER


def test_multi_zone_number_only_when_legal_in_all() -> None:
    rules = Rules()
    # 14:30 UTC: 07:30 in Denver (closed), 08:30 in Central (open) -> wait for Denver.
    decision = rules.check(SOUTH_DAKOTA, at(14, 30))
    assert decision.action is Action.DEFER
    assert decision.at == at(15)
    # 03:30 UTC: 20:30 in Denver (open), 21:30 in Central (closed) -> next morning in Denver.
    assert rules.check(SOUTH_DAKOTA, at(3, 30)).at == at(15)
    assert rules.check(SOUTH_DAKOTA, at(15)).action is Action.DIAL


def test_csv_timezone_overrides_the_number() -> None:
    rules = Rules()
    in_tokyo = Contact(line=2, phone_e164="+14155550100", tz="Asia/Tokyo")
    decision = rules.check(in_tokyo, at(15))  # 00:00 in Tokyo
    assert decision.action is Action.DEFER
    assert decision.at == at(23)  # 08:00 Tuesday in Tokyo


def test_daylight_saving_change_is_followed() -> None:
    sunday = datetime(2026, 3, 8, tzinfo=UTC)
    decision = Rules().check(INDIANAPOLIS, at(6, day=sunday))
    assert decision.at == at(12, day=sunday)  # 08:00 EDT, not 13:00 UTC (08:00 EST)


def test_unknown_zone_policies() -> None:
    assert Rules().zones_for(FREEPHONE) == ()
    skipped = Rules().check(FREEPHONE, at(15))
    assert (skipped.action, skipped.outcome) == (Action.SKIP, "unknown_time_zone")
    assert "timezone column" in skipped.reason
    fallback = Rules(fallback_zone="Europe/Paris")
    assert fallback.check(FREEPHONE, at(7)).at == at(7)  # 08:00 in Paris
    assert fallback.check(FREEPHONE, at(6)).action is Action.DEFER
    anytime = Rules(unknown_zone=UnknownZone.ANY)
    assert anytime.check(FREEPHONE, at(3)).action is Action.DIAL
    with pytest.raises(InputError, match="Unknown fallback time zone"):
        Rules(fallback_zone="Mars/Base")


def test_zones_too_far_apart_are_skipped_not_looped() -> None:
    office = CallingWindow(time(9), time(17))
    assert office.next_allowed(("America/New_York", "Asia/Kolkata"), at(0)) is None
    # A Russian mobile number may ring anywhere from UTC+2 to UTC+12.
    russia = Contact(line=2, phone_e164="+79161234567")
    decision = Rules(window=office).check(russia, at(0))
    assert (decision.action, decision.outcome) == (Action.SKIP, "no_calling_hours")
    assert "timezone column" in decision.reason
    # The default 13-hour window does overlap across those zones: 06:00-09:00 UTC.
    allowed = Rules().next_allowed_time(russia, at(12))
    assert allowed == at(6, day=MONDAY + timedelta(days=1))


def test_campaign_end_time() -> None:
    rules = Rules(end_at=at(18))
    assert rules.check(LONDON, at(17)).action is Action.DIAL
    assert rules.check(LONDON, at(18)).action is Action.ENDED
    # Los Angeles opens at 16:00 UTC, before the end: deferred. Tokyo opens after: ended.
    assert rules.check(LOS_ANGELES, at(15)).action is Action.DEFER
    tokyo = Contact(line=2, phone_e164="+14155550100", tz="Asia/Tokyo")
    assert rules.check(tokyo, at(15)).action is Action.ENDED
    with pytest.raises(InputError, match="time zone or offset"):
        Rules(end_at=datetime(2026, 3, 2, 18))


def test_dnc_list(tmp_path: Path) -> None:
    path = tmp_path / "dnc.txt"
    path.write_text(
        "phone\n"
        "# customers who asked not to be called\n"
        "\n"
        "(415) 555-0100   # Ann\n"
        "+44 20 7123 4567,asked 2026-01-03\n"
        "call me maybe\n"
        "12\n",
        encoding="utf-8",
    )
    dnc = DoNotCallList.load(path)
    assert dnc.numbers == {"+14155550100", "+442071234567"}
    assert [(p.line, p.reason.split(" (")[0]) for p in dnc.problems] == [
        (6, "not a phone number"),
        (7, "not a phone number"),
    ]
    assert str(dnc.problems[0]).startswith(f"{path}:6: not a phone number")
    rules = Rules(dnc=dnc)
    decision = rules.check(LOS_ANGELES, at(17))
    assert (decision.action, decision.outcome) == (Action.SKIP, "do_not_call")
    assert rules.check(LONDON, at(12)).action is Action.SKIP
    assert rules.check(INDIANAPOLIS, at(17)).action is Action.DIAL
    with pytest.raises(DncFileError, match="2 line") as info:
        DoNotCallList.load(path, strict=True)
    assert ":6:" in str(info.value)


def test_dnc_file_errors(tmp_path: Path) -> None:
    with pytest.raises(DncFileError, match="cannot be read"):
        DoNotCallList.load(tmp_path / "missing.txt")
    bad = tmp_path / "latin.txt"
    bad.write_bytes(b"+14155550100\n+14155550101 # Ren\xe9e\n")
    with pytest.raises(DncFileError, match=r"latin.txt:2: byte 0xE9"):
        DoNotCallList.load(bad)


def test_window_parse() -> None:
    assert CallingWindow.parse("08:00-21:00") == CallingWindow()
    assert CallingWindow.parse(" 9:30 - 24:00 ") == CallingWindow(time(9, 30), time(0))
    for text in ("8-21", "25:00-26:00", "08:00-08:00", "08:61-09:00"):
        with pytest.raises(InputError):
            CallingWindow.parse(text)


def test_overnight_window() -> None:
    night = CallingWindow(time(22), time(2))
    assert night.contains(time(23))
    assert night.contains(time(1, 59))
    assert not night.contains(time(2))
    assert night.next_allowed(["UTC"], at(12)) == at(22)


def test_retry_policy() -> None:
    policy = RetryPolicy(max_attempts=2)
    now = at(12)
    first = policy.after("no_answer", attempts=1, agent_failures=0, now=now)
    assert (first.retry, first.at) == (True, now + timedelta(hours=1))
    assert policy.after("busy", attempts=1, agent_failures=0, now=now).at == now + timedelta(
        minutes=10
    )
    assert not policy.after("no_answer", attempts=2, agent_failures=0, now=now).retry
    for final in ("answered", "invalid_number", "failed", "unknown", "something_new"):
        assert not policy.after(final, attempts=1, agent_failures=0, now=now).retry
    agent = policy.after("agent_no_answer", attempts=0, agent_failures=1, now=now)
    assert (agent.retry, agent.at) == (True, now)
    assert not policy.counts_as_attempt("agent_rejected")
    assert policy.counts_as_attempt("no_answer")
    assert not policy.after("agent_rejected", attempts=0, agent_failures=4, now=now).retry
    with pytest.raises(InputError):
        RetryPolicy(max_attempts=0)


ZONES = [
    "America/Los_Angeles",
    "America/New_York",
    "America/St_Johns",
    "Europe/London",
    "Asia/Kolkata",
    "Australia/Adelaide",
    "Pacific/Auckland",
    "Asia/Tokyo",
]


@settings(max_examples=40, deadline=None)
@given(
    zones=st.lists(st.sampled_from(ZONES), min_size=1, max_size=3, unique=True),
    offset_minutes=st.integers(min_value=0, max_value=365 * 24 * 60),
)
def test_next_allowed_is_legal_everywhere_and_earliest(
    zones: list[str], offset_minutes: int
) -> None:
    window = CallingWindow()
    now = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=offset_minutes)
    found = window.next_allowed(zones, now)
    step = timedelta(minutes=15)
    probe = now
    limit = found if found is not None else now + timedelta(days=8)
    while probe < limit:
        assert not all(window.is_open(probe, z) for z in zones), probe
        probe += step
    if found is not None:
        assert found >= now
        assert all(window.is_open(found, z) for z in zones)
