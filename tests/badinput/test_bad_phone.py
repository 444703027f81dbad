"""Phone numbers people type: E.164 out, or InvalidPhoneNumberError saying why; nothing else."""

from __future__ import annotations

import re

import phonenumbers
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from gcdial.errors import InvalidPhoneNumberError
from gcdial.phone import to_e164

from .props import QUICK, assert_clear

E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")

separators = st.sampled_from([" ", "-", ".", "(", ")", "/", "\u00a0", "\t", ""])
digit_runs = st.text(alphabet="0123456789", min_size=1, max_size=6)
# Numbers shaped like what people paste: digit groups, separators, a + or tel: in front.
typed_numbers = st.builds(
    lambda prefix, groups, seps: (
        prefix + "".join(g + s for g, s in zip(groups, seps + [""] * len(groups), strict=False))
    ),
    st.sampled_from(["", "+", "+1", "+44 ", "00", "tel:", "TEL:+", " ", "++"]),
    st.lists(digit_runs, min_size=1, max_size=5),
    st.lists(separators, max_size=5),
)
# Unicode digits, letters, emoji, controls, right-to-left marks, very long strings.
odd_text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=80)
countries = st.one_of(
    st.sampled_from(["US", "us", "GB", "DE", "FR", "IN", "BR", "ZZ", "001", "", " ", "ß", "U S"]),
    st.text(max_size=4),
)


def check(raw: str, country: str) -> None:
    try:
        result = to_e164(raw, default_country=country)
    except InvalidPhoneNumberError as exc:
        refusal: InvalidPhoneNumberError | None = exc
    else:
        refusal = None
    if refusal is not None:
        assert_clear(refusal)
        assert refusal.reason.strip()
        assert len(str(refusal)) < 1000, "one paragraph, even for huge input"
        return
    assert E164.match(result), result
    assert phonenumbers.is_valid_number(phonenumbers.parse(result, None))
    # Normalising twice changes nothing: what gcdial sends is what it would accept back.
    assert to_e164(result, default_country=country) == result


@QUICK
@given(raw=st.one_of(typed_numbers, odd_text), country=countries)
@example(raw="+1 415 555 0100", country="US")
@example(raw="٠١٢٣٤٥٦٧٨٩", country="EG")
@example(raw="+¹⁴¹⁵⁵⁵⁵⁰¹⁰⁰", country="US")
@example(raw="1" * 10_000, country="US")
@example(raw="+1 415 555 0100\x00", country="US")
@example(raw="(415) 555-0100 ext. 12", country="US")
@example(raw="\u202e0010555514+", country="US")
def test_any_text_is_e164_or_a_clear_refusal(raw: str, country: str) -> None:
    check(raw, country)


@QUICK
@given(raw=typed_numbers)
def test_typed_numbers_in_a_valid_country(raw: str) -> None:
    check(raw, "US")


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", "empty"),
        ("tel:", "empty"),
        ("1-800-FLOWERS", "letters"),
        ("+1 415 555 0100 ext 5", "letters"),
        ("+1 415+555 0100", "'+'"),
        ("555-0100", "local"),
        ("1" * 65, "too long"),
    ],
)
def test_refusals_say_why(raw: str, reason: str) -> None:
    with pytest.raises(InvalidPhoneNumberError) as caught:
        to_e164(raw, default_country="US")
    assert reason in caught.value.reason
    assert_clear(caught.value)
