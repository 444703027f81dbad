"""What the page shows, from the service's records: steps, talk time, the number preview."""

from __future__ import annotations

import datetime as dt

import pytest

from gcdial.errors import InvalidPhoneNumberError
from gcdial.serve.steps import call_view, step_of
from gcdial.serve.web.views import number_preview

CALL = {"id": "c1", "status": "placed", "ended": False, "to": "+14155550100"}


@pytest.mark.parametrize(
    ("event", "step"),
    [
        ("agent_alerting", "agent ringing"),
        ("agent_connected", "dialing"),
        ("customer_dialing", "dialing"),
        ("customer_ringing", "customer ringing"),
        ("customer_connected", "talking"),
        ("held", "on hold"),
        ("resumed", "talking"),
        ("call_ended", "ended"),
        ("participant_disconnected", None),
        ("something_new", None),
    ],
)
def test_step_of_each_event(event: str, step: str | None) -> None:
    assert step_of({"event": event}) == step


def _at(second: int) -> str:
    return f"2026-01-01T10:00:{second:02d}.000Z"


def test_call_view_follows_the_steps_and_measures_talk_time() -> None:
    progress = [
        {"event": "agent_alerting", "at": _at(0)},
        {"event": "agent_connected", "at": _at(2)},
        {"event": "customer_ringing", "at": _at(3)},
        {"event": "customer_connected", "at": _at(6)},
    ]
    live = call_view(CALL, progress, "crm")
    assert (live["step"], live["talkSeconds"], live["keyName"]) == ("talking", None, "crm")
    over = call_view(
        {**CALL, "ended": True, "outcome": "answered"},
        [*progress, {"event": "participant_disconnected", "at": _at(21)},
         {"event": "call_ended", "at": _at(22)}],
        None,
    )  # fmt: skip
    assert (over["step"], over["talkSeconds"]) == ("ended", 15.0)
    assert call_view({**CALL, "status": "placing"}, [], None)["step"] == "placing"
    assert call_view(CALL, [], None)["step"] == "agent ringing"


def test_number_preview_shows_the_number_as_dialed() -> None:
    now = dt.datetime(2026, 1, 5, 18, 30, tzinfo=dt.UTC)
    seen = number_preview("(415) 555-0100", "US", now)
    assert seen["e164"] == "+14155550100"
    assert seen["country"] == "United States"
    assert seen["zones"] == [
        {"zone": "America/Los_Angeles", "localTime": "10:30", "weekday": "Mon"}
    ]
    london = number_preview("020 7946 0018", "GB", now)
    assert (london["e164"], london["region"]) == ("+442079460018", "GB")
    assert london["zones"][0]["localTime"] == "18:30"
    with pytest.raises(InvalidPhoneNumberError, match="too short"):
        number_preview("555-01", "US", now)
