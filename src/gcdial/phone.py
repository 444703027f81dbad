"""Phone numbers: parse what people type into E.164, and find the time zones a number rings in.

Acceptance rule: a number must pass ``phonenumbers.is_valid_number`` (a real, assigned range for
its region), not merely ``is_possible_number`` (the right length). The fictional NANP range
``555-0100``..``555-0199`` and ``555-XXXX`` in real area codes are valid by that rule, so the
emulator's and the README's numbers (``+1 415 555 01NN``, ``+1 317 555 12NN``) are accepted.
"""

from __future__ import annotations

import re
from typing import Final

import phonenumbers

from gcdial.errors import InvalidPhoneNumberError

__all__ = ["is_known_region", "time_zones", "to_e164"]

_UNKNOWN_ZONE: Final = "Etc/Unknown"
_TEL_PREFIX: Final = re.compile(r"^\s*tel:", re.IGNORECASE)
# Separators people type between digit groups; anything else that is not a digit is refused.
_SEPARATORS: Final = frozenset(" \t-.()/+\u00a0")
_MAX_INPUT_CHARS: Final = 64

_PARSE_REASONS: Final[dict[int, str]] = {
    phonenumbers.NumberParseException.INVALID_COUNTRY_CODE: "invalid country code",
    phonenumbers.NumberParseException.NOT_A_NUMBER: "not a phone number",
    phonenumbers.NumberParseException.TOO_SHORT_AFTER_IDD: "too short",
    phonenumbers.NumberParseException.TOO_SHORT_NSN: "too short",
    phonenumbers.NumberParseException.TOO_LONG: "too long",
}

_POSSIBLE_REASONS: Final[dict[int, str]] = {
    phonenumbers.ValidationResult.INVALID_COUNTRY_CODE: "invalid country code",
    phonenumbers.ValidationResult.TOO_SHORT: "too short",
    phonenumbers.ValidationResult.TOO_LONG: "too long",
    phonenumbers.ValidationResult.INVALID_LENGTH: "wrong number of digits for its country",
    phonenumbers.ValidationResult.IS_POSSIBLE_LOCAL_ONLY: "a local number: add the area code",
}


def is_known_region(region: str) -> bool:
    """Whether ``region`` is a two-letter region code phonenumbers knows (``US``, ``GB``, ...)."""
    return region.upper() in phonenumbers.SUPPORTED_REGIONS


def _check_characters(raw: str, text: str) -> None:
    for ch in text:
        if ch.isdigit() or ch in _SEPARATORS:
            continue
        if ch.isalpha():
            raise InvalidPhoneNumberError(
                raw,
                "contains letters; write digits only (vanity numbers and extensions are refused)",
            )
        raise InvalidPhoneNumberError(raw, f"contains an unexpected character {ch!r}")
    if "+" in text[1:]:
        raise InvalidPhoneNumberError(raw, "'+' may only start the number")


def to_e164(raw: str, *, default_country: str = "US") -> str:
    """Return ``raw`` in E.164 (``+14155550100``), or raise InvalidPhoneNumberError saying why not.

    Accepts E.164, national numbers (read in ``default_country``), a ``tel:`` prefix and the usual
    separators (spaces, dashes, dots, parentheses, slashes).
    """
    if len(raw) > _MAX_INPUT_CHARS:
        raise InvalidPhoneNumberError(raw[:_MAX_INPUT_CHARS] + "...", "too long")
    text = _TEL_PREFIX.sub("", raw).strip()
    if not text:
        raise InvalidPhoneNumberError(raw, "empty")
    _check_characters(raw, text)
    region = default_country.upper()
    if not is_known_region(region):
        raise InvalidPhoneNumberError(
            raw, f"unknown default country {default_country!r}; use a two-letter code such as US"
        )
    try:
        parsed = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhoneNumberError(
            raw, _PARSE_REASONS.get(exc.error_type, "not a phone number")
        ) from None
    possible = phonenumbers.is_possible_number_with_reason(parsed)
    if possible != phonenumbers.ValidationResult.IS_POSSIBLE:
        raise InvalidPhoneNumberError(raw, _POSSIBLE_REASONS.get(possible, "not a possible number"))
    if not phonenumbers.is_valid_number(parsed):
        where = phonenumbers.region_code_for_number(parsed)
        if where and where != "ZZ":
            place = f"region {where}"
        else:
            place = f"country code +{parsed.country_code}"
        raise InvalidPhoneNumberError(raw, f"not a valid number for {place}")
    return str(phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164))


def time_zones(e164: str) -> tuple[str, ...]:
    """IANA time zones the number may ring in (several for some numbers); ``()`` when unknown."""
    try:
        parsed = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return ()
    # Imported here for start-up time: its time-zone table is only needed by campaigns.
    from phonenumbers import timezone as pn_timezone

    zones = pn_timezone.time_zones_for_number(parsed)
    return tuple(z for z in zones if z != _UNKNOWN_ZONE)
