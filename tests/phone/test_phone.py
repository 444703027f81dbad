import pytest
from hypothesis import given
from hypothesis import strategies as st

from gcdial.errors import InputError, InvalidPhoneNumberError
from gcdial.phone import is_known_region, time_zones, to_e164


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("+14155550100", "+14155550100"),
        ("+1 415 555 0100", "+14155550100"),
        ("(415) 555-0100", "+14155550100"),
        ("415.555.0100", "+14155550100"),
        ("1-415-555-0100", "+14155550100"),
        ("tel:+1-317-555-1234", "+13175551234"),
        ("TEL:+13175551250", "+13175551250"),
        ("  +44 20 7123 4567 ", "+442071234567"),
        ("011 44 20 7123 4567", "+442071234567"),
        ("+1/415/555/0199", "+14155550199"),
    ],
)
def test_accepts_common_spellings(raw: str, expected: str) -> None:
    assert to_e164(raw) == expected


def test_national_number_read_in_default_country() -> None:
    assert to_e164("020 7123 4567", default_country="GB") == "+442071234567"
    assert to_e164("020 7123 4567", default_country="gb") == "+442071234567"


def test_emulator_and_readme_numbers_are_valid() -> None:
    # The emulator keys outcomes on the last two digits, so all of 00..99 must be accepted.
    for nn in range(100):
        assert to_e164(f"+1 415 555 01{nn:02d}") == f"+141555501{nn:02d}"
        assert to_e164(f"+1 317 555 12{nn:02d}") == f"+131755512{nn:02d}"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", "empty"),
        ("tel:", "empty"),
        ("   ", "empty"),
        ("123", "too short"),
        ("+1 415 555", "too short"),
        ("+1 415 555 0100 1234567", "too long"),
        ("+999 1234567", "invalid country code"),
        ("1-800-FLOWERS", "letters"),
        ("+1 415 555 0100 x12", "letters"),
        ("+1 000 555 0100", "not a valid number"),
        ("+1 415 555 01#0", "unexpected character"),
        ("+1 415 +555 0100", "'+' may only start"),
        ("9" * 200, "too long"),
    ],
)
def test_refuses_with_reason(raw: str, reason: str) -> None:
    with pytest.raises(InvalidPhoneNumberError) as info:
        to_e164(raw)
    assert reason in str(info.value)
    assert isinstance(info.value, InputError)


def test_unknown_default_country_is_an_input_error() -> None:
    with pytest.raises(InvalidPhoneNumberError, match="default country"):
        to_e164("415 555 0100", default_country="XX")
    assert is_known_region("us")
    assert not is_known_region("XX")


def test_time_zones() -> None:
    assert time_zones("+14155550100") == ("America/Los_Angeles",)
    assert time_zones("+13175551234") == ("America/New_York",)
    assert time_zones("+442071234567") == ("Europe/London",)
    assert set(time_zones("+16055550100")) == {"America/Denver", "America/North_Dakota/Center"}


def test_time_zones_unknown_is_empty() -> None:
    assert time_zones("not a number") == ()
    # +800 is the international freephone code: no geography, so phonenumbers says Etc/Unknown.
    assert time_zones("+80012345678") == ()


@given(st.text(max_size=80))
def test_any_text_gives_e164_or_a_clear_error(raw: str) -> None:
    try:
        out = to_e164(raw)
    except InvalidPhoneNumberError as exc:
        message = str(exc)
        assert message.startswith("Invalid phone number")
    else:
        assert out.startswith("+")
        assert out[1:].isdigit()
        assert to_e164(out) == out


@given(st.from_regex(r"\+?[0-9 ()./-]{0,30}", fullmatch=True))
def test_digit_like_strings_never_crash(raw: str) -> None:
    try:
        out = to_e164(raw)
    except InvalidPhoneNumberError:
        return
    assert to_e164(out) == out
    assert isinstance(time_zones(out), tuple)
