"""The page's number preview: a number as it will be dialed (pure, no I/O).

The one read the API has no route for; a call's step and talk time are in
:mod:`gcdial.serve.steps`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers

from gcdial.phone import time_zones, to_e164

__all__ = ["number_preview"]


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
