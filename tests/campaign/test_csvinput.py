import csv
import io
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gcdial.campaign.csvinput import (
    Contact,
    CsvFileError,
    CsvValidationError,
    file_fingerprint,
    read_contacts,
    validate_csv,
)
from gcdial.errors import InputError


def write(tmp_path: Path, text: str, name: str = "contacts.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8", newline="")
    return path


def test_reads_known_columns_and_attributes(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "Phone,Name,Agent,External ID,Time Zone,Plan,Notes\n"
        "+1 415 555 0100,Ann,alice@example.com,c-1,America/Los_Angeles,gold,\n"
        "(317) 555-1234,Bob,,c-2,,silver,call after lunch\n",
    )
    reader = read_contacts(path)
    contacts = list(reader)
    assert contacts == [
        Contact(
            line=2,
            phone_e164="+14155550100",
            name="Ann",
            agent="alice@example.com",
            external_id="c-1",
            tz="America/Los_Angeles",
            attributes={"Plan": "gold"},
        ),
        Contact(
            line=3,
            phone_e164="+13175551234",
            name="Bob",
            external_id="c-2",
            attributes={"Plan": "silver", "Notes": "call after lunch"},
        ),
    ]
    report = reader.report
    assert report.complete
    assert report.rows == 2
    assert report.valid == 2
    assert report.phone_column == "Phone"
    assert report.attribute_columns == ("Plan", "Notes")


def test_phone_column_alias_and_configured_name(tmp_path: Path) -> None:
    path = write(tmp_path, "mobile,name\n+14155550100,Ann\n")
    assert [c.phone_e164 for c in read_contacts(path)] == ["+14155550100"]
    path = write(tmp_path, "cell,phone\n+14155550101,+14155550102\n")
    contacts = list(read_contacts(path, phone_column="Cell"))
    assert contacts[0].phone_e164 == "+14155550101"
    assert contacts[0].attributes == {"phone": "+14155550102"}


def test_default_country_reads_national_numbers(tmp_path: Path) -> None:
    path = write(tmp_path, "phone\n020 7123 4567\n")
    assert [c.phone_e164 for c in read_contacts(path, default_country="GB")] == ["+442071234567"]


def test_missing_phone_column_lists_columns(tmp_path: Path) -> None:
    path = write(tmp_path, "name,email\nAnn,a@example.com\n")
    with pytest.raises(CsvFileError) as info:
        list(read_contacts(path))
    message = str(info.value)
    assert "no phone column" in message
    assert "'name', 'email'" in message
    assert "--phone-column" in message
    assert isinstance(info.value, InputError)


def test_bad_rows_are_skipped_and_recorded(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "phone,name,external_id,timezone\n"
        "+14155550100,Ann,a,\n"
        "not-a-number,Bob,b,\n"
        ",Carol,c,\n"
        "+14155550101,Dan,d,Mars/Olympus\n"
        "+14155550102,Eve\n"
        "+1 (415) 555-0100,Ann again,e,\n"
        "+14155550103,Fay,a,\n"
        "\n"
        "+14155550104,Gus,g,Europe/London\n",
    )
    reader = read_contacts(path)
    good = list(reader)
    assert [(c.line, c.name) for c in good] == [(2, "Ann"), (10, "Gus")]
    report = reader.report
    assert report.rows == 8
    assert report.valid == 2
    assert report.problem_counts == {"invalid": 4, "duplicate": 2}
    texts = [str(p) for p in report.problems]
    assert texts[0].startswith(f"{path}:3: column 'phone': invalid phone number 'not-a-number'")
    assert "E.164" in texts[0]
    assert texts[1].startswith(f"{path}:4: column 'phone': no phone number")
    assert texts[2].startswith(f"{path}:5: column 'timezone': unknown time zone 'Mars/Olympus'")
    assert texts[3].startswith(f"{path}:6: has 2 fields but the header has 4")
    assert "duplicate of line 2 (same number +14155550100)" in texts[4]
    assert "duplicate of line 2 (same external id 'a')" in texts[5]
    assert "6 refused (2 duplicate, 4 invalid)" in report.summary()


def test_strict_raises_on_first_bad_row(tmp_path: Path) -> None:
    path = write(tmp_path, "phone\n+14155550100\n12\n+14155550101\n")
    with pytest.raises(CsvValidationError) as info:
        list(read_contacts(path, strict=True))
    assert f"{path}:3:" in str(info.value)


def test_validate_csv_strict_lists_every_problem(tmp_path: Path) -> None:
    path = write(tmp_path, "phone\n12\n+14155550100\n+14155550100\n")
    with pytest.raises(CsvValidationError) as info:
        validate_csv(path, strict=True)
    assert info.value.report.problem_count == 2
    assert f"{path}:2:" in str(info.value)
    assert f"{path}:4:" in str(info.value)
    report = validate_csv(path)
    assert report.valid == 1


def test_multiline_quoted_field_keeps_start_line(tmp_path: Path) -> None:
    path = write(tmp_path, 'phone,notes\n+14155550100,"two\nlines"\nbad,x\n')
    reader = read_contacts(path)
    contacts = list(reader)
    assert contacts[0].attributes == {"notes": "two\nlines"}
    assert reader.report.problems[0].line == 4


def test_non_utf8_names_byte_and_line(tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes("phone,name\n+14155550100,Ann\n+14155550101,Ren\u00e9e\n".encode("latin-1"))
    with pytest.raises(CsvFileError) as info:
        list(read_contacts(path))
    message = str(info.value)
    assert f"{path}:3:" in message
    assert "0xE9" in message
    assert "UTF-8" in message
    assert info.value.line == 3


def test_utf8_bom_accepted_utf16_refused(tmp_path: Path) -> None:
    path = tmp_path / "bom.csv"
    path.write_bytes("phone,name\n+14155550100,Zo\u00eb\n".encode("utf-8-sig"))
    assert [c.name for c in read_contacts(path)] == ["Zo\u00eb"]
    path.write_bytes("phone\n+14155550100\n".encode("utf-16"))
    with pytest.raises(CsvFileError, match="UTF-16"):
        list(read_contacts(path))


def test_empty_file_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CsvFileError, match="empty"):
        list(read_contacts(write(tmp_path, "")))
    with pytest.raises(CsvFileError, match="no such file"):
        list(read_contacts(tmp_path / "nope.csv"))


def test_header_problems(tmp_path: Path) -> None:
    with pytest.raises(CsvFileError, match="column 2 of the header has no name"):
        list(read_contacts(write(tmp_path, "phone,,name\n")))
    with pytest.raises(CsvFileError, match="names a column twice: phone"):
        list(read_contacts(write(tmp_path, "phone,Phone\n")))


def test_broken_quoting_is_a_file_error(tmp_path: Path) -> None:
    path = write(tmp_path, 'phone,name\n+14155550100,"Ann\n+14155550101,Bob\n')
    with pytest.raises(CsvFileError) as info:
        list(read_contacts(path))
    assert info.value.line == 2
    assert "quot" in str(info.value)


def test_streams_without_reading_ahead(tmp_path: Path) -> None:
    # The good first rows come out before the broken encoding further down is reached.
    path = tmp_path / "stream.csv"
    path.write_bytes(b"phone\n+14155550100\n+14155550101\n\xff\xfe\n")
    reader = iter(read_contacts(path))
    assert next(reader).phone_e164 == "+14155550100"
    assert next(reader).phone_e164 == "+14155550101"
    with pytest.raises(CsvFileError, match=":4:"):
        next(reader)


def test_duplicates_still_found_after_spilling_to_disk(tmp_path: Path) -> None:
    rows = [f"+1415555{n:04d}" for n in range(0, 40)] + ["+14155550003"]
    path = write(tmp_path, "phone\n" + "\n".join(rows) + "\n")
    from gcdial.campaign.csvinput import ContactReader

    reader = ContactReader(path, spill_at=10)
    assert len(list(reader)) == 40
    assert [str(p).split(": ", 1)[1] for p in reader.report.problems] == [
        "column 'phone': duplicate of line 5 (same number +14155550003). "
        "Remove one of the rows: a number is dialed at most once per campaign."
    ]


def test_fingerprint_changes_with_content(tmp_path: Path) -> None:
    a = write(tmp_path, "phone\n+14155550100\n", "a.csv")
    b = write(tmp_path, "phone\n+14155550101\n", "b.csv")
    assert file_fingerprint(a) != file_fingerprint(b)
    assert file_fingerprint(a) == file_fingerprint(
        write(tmp_path, "phone\n+14155550100\n", "c.csv")
    )


cells = st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=20)


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.lists(cells, min_size=0, max_size=5), max_size=8))
def test_any_rows_give_contacts_or_recorded_problems(tmp_path: Path, rows: list[list[str]]) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["phone", "name", "timezone", "extra"])
    writer.writerows(rows)
    path = tmp_path / "fuzz.csv"
    path.write_text(buffer.getvalue(), encoding="utf-8", newline="")
    reader = read_contacts(path)
    error: CsvFileError | None = None
    try:
        contacts = list(reader)
    except CsvFileError as exc:
        error = exc
    if error is not None:
        # Only the csv module's own limits (e.g. NUL bytes) may stop the whole file.
        assert error.line is not None
        return
    report = reader.report
    assert report.complete
    assert report.valid == len(contacts)
    assert report.valid + report.problem_count == report.rows
    assert len({c.phone_e164 for c in contacts}) == len(contacts)


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=200))
def test_any_bytes_never_crash(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "bytes.csv"
    path.write_bytes(b"phone,name\n" + data)
    reader = read_contacts(path)
    message = ""
    try:
        list(reader)
    except CsvFileError as exc:
        message = str(exc)
    assert not message or message.startswith(str(path))
