"""Read a contact list (CSV) as a stream, validating every row; never loads the whole file.

The reader yields :class:`Contact` records for good rows and records each bad row as a
:class:`RowProblem` (file, line, column, reason, how to fix) in a :class:`ValidationReport`.
File-level faults (bad encoding, no header, no phone column, broken quoting) raise
:class:`CsvFileError` at once: no row after them can be trusted.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import re
import sqlite3
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Final

from gcdial.campaign.contact import Contact, is_valid_time_zone
from gcdial.errors import (
    CsvFileError,
    CsvValidationError,
    InputFileError,
    InvalidPhoneNumberError,
)
from gcdial.phone import to_e164

__all__ = [
    "Contact",
    "ContactReader",
    "CsvFileError",
    "CsvValidationError",
    "InputFileError",
    "RowProblem",
    "ValidationReport",
    "decoded_lines",
    "file_fingerprint",
    "is_valid_time_zone",
    "read_contacts",
    "validate_csv",
]

PHONE_ALIASES: Final = (
    "phone",
    "phone_number",
    "phonenumber",
    "number",
    "telephone",
    "tel",
    "mobile",
    "msisdn",
)
NAME_ALIASES: Final = ("name", "full_name", "customer_name", "contact_name")
AGENT_ALIASES: Final = ("agent", "agent_email", "agent_id")
EXTERNAL_ID_ALIASES: Final = ("external_id", "externalid", "contact_id")
TIMEZONE_ALIASES: Final = ("timezone", "time_zone", "tz")

# Detailed problems kept in memory; beyond this only the counts grow (a 10M-row file of junk
# must not exhaust memory).
MAX_KEPT_PROBLEMS: Final = 1000
# Duplicate detection keeps keys in memory up to this many, then moves them to a temporary
# SQLite file so memory stays flat for very large lists.
SPILL_AT: Final = 200_000
_NORMALISE: Final = re.compile(r"[\s\-]+")


@dataclass(frozen=True, slots=True)
class RowProblem:
    """A row that will not be dialed: where it is, what is wrong, how to fix it."""

    file: str
    line: int
    column: str | None
    reason: str
    fix: str
    kind: str = "invalid"
    plain_reason: str | None = None  # the reason without the row's values, when it quotes them

    @property
    def value_free_reason(self) -> str:
        """The reason without any value of the row (what a shared page or log may show)."""
        return self.plain_reason or self.reason

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}"
        col = f" column {self.column!r}:" if self.column else ""
        return f"{where}:{col} {self.reason}. {self.fix}"


@dataclass(slots=True)
class ValidationReport:
    """What a pass over the file found: counts, and the first ``MAX_KEPT_PROBLEMS`` problems."""

    file: str
    columns: tuple[str, ...] = ()
    phone_column: str | None = None
    attribute_columns: tuple[str, ...] = ()
    rows: int = 0
    valid: int = 0
    problems: list[RowProblem] = field(default_factory=list)
    problem_counts: Counter[str] = field(default_factory=Counter)
    complete: bool = False

    @property
    def problem_count(self) -> int:
        """How many rows were refused (invalid or duplicate), including the ones not kept."""
        return sum(self.problem_counts.values())

    def add(self, problem: RowProblem) -> None:
        """Count a problem and keep its detail while under the limit."""
        self.problem_counts[problem.kind] += 1
        if len(self.problems) < MAX_KEPT_PROBLEMS:
            self.problems.append(problem)

    def summary(self) -> str:
        """One line: rows read, valid, refused by kind."""
        text = f"{self.file}: {self.rows} rows, {self.valid} valid"
        if self.problem_counts:
            kinds = ", ".join(f"{n} {kind}" for kind, n in sorted(self.problem_counts.items()))
            text += f", {self.problem_count} refused ({kinds})"
        return text


def _normalise(name: str) -> str:
    return _NORMALISE.sub("_", name.strip().lower())


def file_fingerprint(path: str | Path) -> str:
    """SHA-256 of the file's bytes (streamed), so a journal can tell its own list from another."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def decoded_lines(
    raw: BinaryIO, file: str, *, error: type[InputFileError] = InputFileError
) -> Iterator[str]:
    """Decode UTF-8 line by line (BOM accepted), so a bad byte is reported with line and offset."""
    offset = 0
    for number, data in enumerate(raw, start=1):
        if number == 1:
            if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
                raise error(
                    "the file is UTF-16, not UTF-8",
                    file=file,
                    line=1,
                    hint="Re-save it as 'CSV UTF-8' (Excel) or convert it: "
                    "iconv -f UTF-16 -t UTF-8 in.csv > out.csv.",
                )
            if data.startswith(codecs.BOM_UTF8):
                data = data[len(codecs.BOM_UTF8) :]
                offset += len(codecs.BOM_UTF8)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            bad = data[exc.start : exc.start + 1].hex().upper()
            raise error(
                f"byte 0x{bad} (file offset {offset + exc.start}, column {exc.start + 1}) "
                "is not valid UTF-8",
                file=file,
                line=number,
                hint="The file is probably in another encoding (Excel's plain 'CSV' is "
                "Windows-1252). Re-save it as 'CSV UTF-8', or convert it: "
                "iconv -f WINDOWS-1252 -t UTF-8 in.csv > out.csv.",
            ) from None
        offset += len(data)
        yield text


class _SeenIndex:
    """Remembers keys with the line they were first seen on; spills to SQLite when large."""

    def __init__(self, spill_at: int) -> None:
        self._spill_at = spill_at
        self._memory: dict[str, int] | None = {}
        self._db: sqlite3.Connection | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None

    def first_line(self, key: str, line: int) -> int | None:
        """Record ``key`` at ``line``; return the earlier line if the key was already seen."""
        if self._memory is not None:
            earlier = self._memory.setdefault(key, line)
            if earlier != line:
                return earlier
            if len(self._memory) > self._spill_at:
                self._spill()
            return None
        assert self._db is not None
        row = self._db.execute("SELECT line FROM seen WHERE key = ?", (key,)).fetchone()
        if row is not None:
            return int(row[0])
        self._db.execute("INSERT INTO seen (key, line) VALUES (?, ?)", (key, line))
        return None

    def _spill(self) -> None:
        assert self._memory is not None
        self._tmp = tempfile.TemporaryDirectory(prefix="gcdial-seen-")
        self._db = sqlite3.connect(Path(self._tmp.name) / "seen.db")
        self._db.execute("PRAGMA journal_mode = OFF")
        self._db.execute("PRAGMA synchronous = OFF")
        self._db.execute("CREATE TABLE seen (key TEXT PRIMARY KEY, line INTEGER) WITHOUT ROWID")
        self._db.executemany("INSERT INTO seen (key, line) VALUES (?, ?)", self._memory.items())
        self._memory = None

    def close(self) -> None:
        """Drop the keys and any temporary file."""
        self._memory = {}
        if self._db is not None:
            self._db.close()
            self._db = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None


def _pick(columns: Sequence[str], aliases: Iterable[str]) -> int | None:
    for alias in aliases:
        if alias in columns:
            return columns.index(alias)
    return None


@dataclass(frozen=True, slots=True)
class _Layout:
    header: tuple[str, ...]
    phone: int
    name: int | None
    agent: int | None
    external_id: int | None
    tz: int | None
    attributes: tuple[tuple[int, str], ...]


def _layout(header: list[str], *, file: str, phone_column: str | None) -> _Layout:
    names = [h.strip() for h in header]
    for index, name in enumerate(names, start=1):
        if not name:
            raise CsvFileError(
                f"column {index} of the header has no name",
                file=file,
                line=1,
                hint="Give every column a name in the first row, or delete the empty column.",
            )
    normal = [_normalise(n) for n in names]
    dupes = sorted({n for n in normal if normal.count(n) > 1})
    if dupes:
        raise CsvFileError(
            f"the header names a column twice: {', '.join(dupes)}",
            file=file,
            line=1,
            hint="Rename or remove the repeated column.",
        )
    if phone_column is not None:
        phone = _pick(normal, [_normalise(phone_column)])
    else:
        phone = _pick(normal, PHONE_ALIASES)
    if phone is None:
        wanted = repr(phone_column) if phone_column else "'phone'"
        raise CsvFileError(
            f"no phone column: expected {wanted}; the header has {', '.join(map(repr, names))}",
            file=file,
            line=1,
            hint="Name the column 'phone', or say which column holds the numbers with "
            "--phone-column NAME. The first row must be a header.",
        )
    taken = {phone}
    picked: list[int | None] = []
    for aliases in (NAME_ALIASES, AGENT_ALIASES, EXTERNAL_ID_ALIASES, TIMEZONE_ALIASES):
        found = _pick([n if i not in taken else "" for i, n in enumerate(normal)], aliases)
        if found is not None:
            taken.add(found)
        picked.append(found)
    attributes = tuple((i, names[i]) for i in range(len(names)) if i not in taken)
    return _Layout(
        header=tuple(names),
        phone=phone,
        name=picked[0],
        agent=picked[1],
        external_id=picked[2],
        tz=picked[3],
        attributes=attributes,
    )


class ContactReader:
    """Iterate over a CSV contact list: yields valid :class:`Contact` rows, records the rest.

    ``report`` fills in as iteration proceeds and is ``complete`` once the file is exhausted.
    With ``strict`` the first bad row raises :class:`CsvValidationError` instead.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        phone_column: str | None = None,
        default_country: str = "US",
        strict: bool = False,
        spill_at: int = SPILL_AT,
    ) -> None:
        self.path = Path(path)
        self.file = str(path)
        self.phone_column = phone_column
        self.default_country = default_country
        self.strict = strict
        self.report = ValidationReport(file=self.file)
        self._spill_at = spill_at

    def __iter__(self) -> Iterator[Contact]:
        try:
            raw = open(self.path, "rb")  # noqa: SIM115 - closed in finally, generator-scoped
        except FileNotFoundError:
            raise CsvFileError(
                "no such file", file=self.file, hint="Check the path of the contact list."
            ) from None
        except (IsADirectoryError, PermissionError) as exc:
            raise CsvFileError(
                f"cannot be read ({exc.strerror})",
                file=self.file,
                hint="Give the path of a readable CSV file.",
            ) from None
        phones = _SeenIndex(self._spill_at)
        external_ids = _SeenIndex(self._spill_at)
        try:
            yield from self._rows(raw, phones, external_ids)
        finally:
            raw.close()
            phones.close()
            external_ids.close()

    def _rows(
        self, raw: BinaryIO, phones: _SeenIndex, external_ids: _SeenIndex
    ) -> Iterator[Contact]:
        reader = csv.reader(decoded_lines(raw, self.file, error=CsvFileError), strict=True)
        previous_end = 0
        layout: _Layout | None = None
        while True:
            try:
                row = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                start = previous_end + 1
                upto = f" (read up to line {reader.line_num})" if reader.line_num > start else ""
                raise CsvFileError(
                    f"the CSV cannot be parsed: {exc}{upto}",
                    file=self.file,
                    line=start,
                    hint="Check the quoting on that line: a value containing commas or quotes "
                    'must be enclosed in double quotes, with inner quotes doubled ("").',
                ) from None
            line = previous_end + 1
            previous_end = reader.line_num
            if layout is None:
                layout = _layout(row, file=self.file, phone_column=self.phone_column)
                self.report.columns = layout.header
                self.report.phone_column = layout.header[layout.phone]
                self.report.attribute_columns = tuple(name for _, name in layout.attributes)
                continue
            if not any(cell.strip() for cell in row):
                continue
            self.report.rows += 1
            contact = self._contact(row, line, layout, phones, external_ids)
            if contact is not None:
                self.report.valid += 1
                yield contact
        if layout is None:
            raise CsvFileError(
                "the file is empty",
                file=self.file,
                hint="The first row must be a header naming the columns, e.g. phone,name,agent.",
            )
        self.report.complete = True

    def _problem(
        self,
        line: int,
        column: str | None,
        reason: str,
        fix: str,
        kind: str,
        plain: str | None = None,
    ) -> None:
        problem = RowProblem(self.file, line, column, reason, fix, kind, plain)
        if self.strict:
            self.report.add(problem)
            raise CsvValidationError(self.report)
        self.report.add(problem)

    def _contact(
        self,
        row: list[str],
        line: int,
        layout: _Layout,
        phones: _SeenIndex,
        external_ids: _SeenIndex,
    ) -> Contact | None:
        if len(row) != len(layout.header):
            self._problem(
                line,
                None,
                f"has {len(row)} fields but the header has {len(layout.header)}",
                "Quote values that contain commas, and check for a missing or extra separator.",
                "invalid",
            )
            return None
        phone_name = layout.header[layout.phone]
        raw_phone = row[layout.phone].strip()
        if not raw_phone:
            self._problem(
                line, phone_name, "no phone number", "Fill it in or delete the row.", "invalid"
            )
            return None
        try:
            phone = to_e164(raw_phone, default_country=self.default_country)
        except InvalidPhoneNumberError as exc:
            self._problem(
                line,
                phone_name,
                f"invalid phone number {exc.number!r}: {exc.reason}",
                "Write it in E.164 (+14155550100), or as a national number of the default "
                f"country ({self.default_country}).",
                "invalid",
                f"invalid phone number: {exc.reason}",
            )
            return None

        def cell(index: int | None) -> str | None:
            if index is None:
                return None
            return row[index].strip() or None

        tz = cell(layout.tz)
        if tz is not None and not is_valid_time_zone(tz):
            self._problem(
                line,
                layout.header[layout.tz] if layout.tz is not None else None,
                f"unknown time zone {tz!r}",
                "Use an IANA zone name such as America/New_York or Europe/London, or leave it "
                "empty to use the number's own zone.",
                "invalid",
                "unknown time zone",
            )
            return None
        earlier = phones.first_line(phone, line)
        if earlier is not None:
            self._problem(
                line,
                phone_name,
                f"duplicate of line {earlier} (same number {phone})",
                "Remove one of the rows: a number is dialed at most once per campaign.",
                "duplicate",
                f"duplicate of line {earlier} (same number)",
            )
            return None
        external_id = cell(layout.external_id)
        if external_id is not None:
            earlier = external_ids.first_line(external_id, line)
            if earlier is not None:
                column = (
                    layout.header[layout.external_id] if layout.external_id is not None else None
                )
                self._problem(
                    line,
                    column,
                    f"duplicate of line {earlier} (same external id {external_id!r})",
                    "External ids must be unique; remove or renumber one of the rows.",
                    "duplicate",
                    f"duplicate of line {earlier} (same external id)",
                )
                return None
        attributes = {name: row[i].strip() for i, name in layout.attributes if row[i].strip()}
        return Contact(
            line=line,
            phone_e164=phone,
            name=cell(layout.name),
            agent=cell(layout.agent),
            external_id=external_id,
            tz=tz,
            attributes=attributes,
        )


def read_contacts(
    path: str | Path,
    *,
    phone_column: str | None = None,
    default_country: str = "US",
    strict: bool = False,
) -> ContactReader:
    """A streaming reader over the contact list; iterate it, then read its ``report``."""
    return ContactReader(
        path, phone_column=phone_column, default_country=default_country, strict=strict
    )


def validate_csv(
    path: str | Path,
    *,
    phone_column: str | None = None,
    default_country: str = "US",
    strict: bool = False,
) -> ValidationReport:
    """Read the whole list once and return the report; with ``strict``, raise on any bad row.

    In strict mode every row is still read first, so the error lists all the problems at once.
    """
    reader = ContactReader(path, phone_column=phone_column, default_country=default_country)
    for _ in reader:
        pass
    if strict and reader.report.problem_count:
        raise CsvValidationError(reader.report)
    return reader.report
