"""A do-not-call CSV file for ``gcdial serve dnc import``: read whole, checked row by row.

A header names the columns: the number's (``phone``, ``number``... as in a contact list) and,
optionally, ``reason``. Every bad row is reported in the contact list's words (file, line,
column, what to fix), and one bad row refuses the whole file: an import is all or none.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from gcdial.campaign.csvinput import PHONE_ALIASES, RowProblem, decoded_lines
from gcdial.errors import DncFileError, InvalidPhoneNumberError
from gcdial.phone import to_e164

__all__ = ["DncRow", "read_dnc_csv"]

SHOWN_PROBLEMS: Final = 20
MAX_REASON: Final = 500


@dataclass(frozen=True, slots=True)
class DncRow:
    """One good row: the number in E.164 and the reason given, if any."""

    number: str
    reason: str | None
    line: int


def _columns(header: list[str], file: str) -> tuple[int, int | None]:
    names = [name.strip().lower().replace(" ", "_") for name in header]
    phone = next((i for i, name in enumerate(names) if name in PHONE_ALIASES), None)
    if phone is None:
        raise DncFileError(
            f"no phone column in the header ({', '.join(header) or 'empty'})",
            file=file,
            line=1,
            hint="Start the file with a header line such as: phone,reason",
        )
    reason = names.index("reason") if "reason" in names else None
    return phone, reason


def read_dnc_csv(path: str | Path, *, default_country: str = "US") -> list[DncRow]:
    """Every row of the file, or a ``DncFileError`` listing each bad row (nothing is kept)."""
    file = str(path)
    try:
        raw = open(path, "rb")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise DncFileError(
            f"cannot be read ({exc.strerror})", file=file, hint="Check the path of the CSV file."
        ) from None
    rows: list[DncRow] = []
    problems: list[RowProblem] = []
    with raw:
        reader = csv.reader(decoded_lines(raw, file, error=DncFileError), strict=True)
        try:
            header = next(reader, None)
            if header is None:
                raise DncFileError("the file is empty", file=file, hint="Give a header: phone")
            phone_at, reason_at = _columns(header, file)
            column = header[phone_at].strip()
            for values in reader:
                line = reader.line_num
                if not any(v.strip() for v in values):
                    continue
                found = values[phone_at].strip() if phone_at < len(values) else ""
                reason = (
                    values[reason_at].strip() if reason_at is not None and reason_at < len(values)
                    else ""
                )  # fmt: skip
                try:
                    number = to_e164(found, default_country=default_country)
                except InvalidPhoneNumberError as exc:
                    problems.append(
                        RowProblem(
                            file, line, column,
                            f"not a phone number ({exc.reason}): {found[:40]!r}",
                            f"Give a number in E.164 (+14155550100) or national for "
                            f"--country {default_country}, or delete the row.",
                        )
                    )  # fmt: skip
                    continue
                if len(reason) > MAX_REASON:
                    problems.append(
                        RowProblem(
                            file, line, "reason", f"the reason is over {MAX_REASON} characters",
                            "Shorten it.",
                        )
                    )  # fmt: skip
                    continue
                rows.append(DncRow(number, reason or None, line))
        except csv.Error as exc:
            raise DncFileError(
                f"not valid CSV ({exc})",
                file=file,
                line=reader.line_num,
                hint="Check the quotes on that line.",
            ) from None
    if problems:
        shown = "\n".join(str(p) for p in problems[:SHOWN_PROBLEMS])
        more = len(problems) - SHOWN_PROBLEMS
        raise DncFileError(
            f"{len(problems)} bad row(s); nothing was imported:\n{shown}"
            + (f"\n... and {more} more" if more > 0 else ""),
            file=file,
            hint="Fix or delete the rows listed, then import the file again.",
        )
    return rows
