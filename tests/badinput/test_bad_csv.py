"""Contact lists: any bytes, any rows; valid contacts out and every other row accounted for."""

from __future__ import annotations

import csv
import io
import tempfile
from pathlib import Path

from hypothesis import example, given
from hypothesis import strategies as st

from gcdial.campaign.csvinput import Contact, CsvFileError, ValidationReport, read_contacts
from gcdial.errors import GcdialError

from .props import QUICK, assert_clear
from .test_bad_phone import E164

cells = st.one_of(
    st.text(max_size=20),
    st.sampled_from(
        [
            "+14155550100",
            "+14155550101",
            "(415) 555-0102",
            "+44 20 7946 0958",
            "Europe/London",
            "Mars/Olympus",
            "../../etc/passwd",
            '"',
            ",",
            "\n",
            "\r\n",
            "=cmd|' /C calc'!A0",
            "",
        ]
    ),
)
headers = st.lists(
    st.one_of(
        st.sampled_from(
            ["phone", "Phone Number", "name", "agent", "external_id", "tz", "crmId", "", "phone"]
        ),
        st.text(max_size=8),
    ),
    min_size=1,
    max_size=6,
)


def write_csv(header: list[str], rows: list[list[str]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")


def read_all(data: bytes) -> tuple[list[Contact], ValidationReport | None, GcdialError | None]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "contacts.csv"
        path.write_bytes(data)
        reader = read_contacts(path)
        contacts: list[Contact] = []
        try:
            contacts.extend(reader)
        except GcdialError as exc:
            return contacts, None, exc
        return contacts, reader.report, None


def check(data: bytes) -> None:
    contacts, report, error = read_all(data)
    if error is not None:
        assert isinstance(error, CsvFileError), f"{type(error).__name__}: {error}"
        assert_clear(error)
        assert "contacts.csv" in str(error), "a file error names the file"
        return
    assert report is not None
    assert report.complete
    assert report.rows == report.valid + report.problem_count, report.summary()
    assert report.valid == len(contacts)
    phones = [c.phone_e164 for c in contacts]
    assert len(set(phones)) == len(phones), "a number reached the dialer twice"
    assert all(E164.match(p) for p in phones)
    lines = [c.line for c in contacts]
    assert lines == sorted(lines)
    assert all(line >= 2 for line in lines)
    for problem in report.problems:
        assert problem.line >= 2
        assert problem.reason
        assert problem.fix
        assert str(problem).startswith(f"{report.file}:{problem.line}:")


@QUICK
@given(data=st.binary(max_size=400))
@example(data=b"")
@example(data=b"\xef\xbb\xbf")
@example(data=b"\xff\xfephone\n")
@example(data=b"phone\n\x00+14155550100\n")
@example(data=b'phone\n"+14155550100\n')
@example(data=b"phone\n+14155550100\xe9\n")
@example(data=b"phone,phone\n1,2\n")
@example(data=b"phone\r+14155550100\r+14155550100\r")
def test_any_bytes_read_or_refused_with_file_and_line(data: bytes) -> None:
    check(data)


@QUICK
@given(
    header=headers,
    rows=st.lists(st.lists(cells, min_size=0, max_size=7), max_size=12),
)
def test_any_rows_are_contacts_or_recorded_problems(
    header: list[str], rows: list[list[str]]
) -> None:
    check(write_csv(header, rows))


@QUICK
@given(rows=st.lists(st.lists(cells, min_size=1, max_size=3), max_size=15))
def test_rows_under_a_good_header(rows: list[list[str]]) -> None:
    check(write_csv(["phone", "tz", "crmId"], rows))


def test_a_huge_field_is_a_file_error_not_a_crash() -> None:
    contacts, _, error = read_all(b"phone,notes\n+14155550100," + b"x" * 200_000 + b"\n")
    assert contacts == []
    assert isinstance(error, CsvFileError)
    assert_clear(error)
