"""What the page shows, computed from the service's records: pure functions, no I/O.

A call's current step and talk time come from its progress events (the monitor's ``CallEvent``
dicts); the number preview shows a number as it will be dialed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers

from gcdial.phone import time_zones, to_e164

__all__ = ["STEPS", "call_view", "number_preview", "step_of"]

# Monitor event kind -> the step the page names (issue 12: agent ringing, dialing, customer
# ringing, talking).
STEPS: Mapping[str, str] = {
    "agent_alerting": "agent ringing",
    "agent_connected": "dialing",
    "customer_dialing": "dialing",
    "customer_ringing": "customer ringing",
    "customer_connected": "talking",
    "held": "on hold",
    "resumed": "talking",
    "call_ended": "ended",
}


def step_of(progress: Mapping[str, Any]) -> str | None:
    """The step a progress event moves the call to, or None when it does not change it."""
    kind = progress.get("event")
    return STEPS.get(kind) if isinstance(kind, str) else None


def _parse_time(value: object) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def call_view(
    call: Mapping[str, Any], progress: Iterable[Mapping[str, Any]], key_name: str | None
) -> dict[str, Any]:
    """The API's call JSON plus the page's fields: step, talk time, the key that placed it."""
    step = {"placing": "placing", "placed": "agent ringing"}.get(str(call.get("status")))
    talk_from: dt.datetime | None = None
    talk_to: dt.datetime | None = None
    for event in progress:
        step = step_of(event) or step
        at = _parse_time(event.get("at"))
        if event.get("event") == "customer_connected" and talk_from is None:
            talk_from = at
        if (
            talk_from is not None
            and talk_to is None
            and event.get("event")
            in (
                "participant_disconnected",
                "call_ended",
            )
        ):
            talk_to = at
    if call.get("ended"):
        step = "ended"
    talk = (talk_to - talk_from).total_seconds() if talk_from and talk_to else None
    return {
        **call,
        "step": step,
        "talkSeconds": round(talk, 1) if talk is not None and talk >= 0 else None,
        "talkStartedAt": talk_from.isoformat() if talk_from else None,
        "keyName": key_name,
    }


def number_preview(raw: str, country: str, now: dt.datetime) -> dict[str, Any]:
    """``raw`` as it will be dialed: E.164, country, place, time zones and the local time there.

    Raises ``InvalidPhoneNumberError`` (its message says why) when it is not a dialable number.
    """
    e164 = to_e164(raw, default_country=country or "US")
    parsed = phonenumbers.parse(e164, None)
    region = phonenumbers.region_code_for_number(parsed) or ""
    zones = []
    for name in time_zones(e164):
        try:
            local = now.astimezone(ZoneInfo(name))
        except (ZoneInfoNotFoundError, ValueError):
            continue
        zones.append(
            {"zone": name, "localTime": local.strftime("%H:%M"), "weekday": local.strftime("%a")}
        )
    # Imported here, on the first preview, not with the app: phonenumbers' geocoder loads every
    # place name it knows at once (about 100 MB, most of an idle service's memory), and only the
    # preview names a number's place.
    from phonenumbers import geocoder

    return {
        "e164": e164,
        "region": region,
        "country": geocoder.country_name_for_number(parsed, "en") or region,
        "place": geocoder.description_for_number(parsed, "en") or None,
        "international": phonenumbers.format_number(
            parsed, phonenumbers.PhoneNumberFormat.INTERNATIONAL
        ),
        "zones": zones,
    }
