"""The campaign journal's records, and the one boundary between its rows and them.

Every value read back from a journal goes through :class:`_Cells`, which turns a value gcdial
does not write into a :class:`JournalDataError` naming the journal, table, row and column. The
sieves (:data:`_SIEVES`) let SQLite pick out the suspicious rows for :meth:`Journal.verify`.
"""

from __future__ import annotations

import contextlib
import functools
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Final, TypeVar, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from gcdial.campaign.csvinput import Contact, RowProblem
from gcdial.campaign.sqldialect import Row
from gcdial.errors import JournalDataError
from gcdial.monitor.wrapup import Wrapup

__all__ = [
    "IN_FLIGHT",
    "Attempt",
    "AttemptState",
    "CampaignInfo",
    "ContactRecord",
    "ContactStatus",
    "page_key",
    "redecided_due",
]


class AttemptState(StrEnum):
    """Where one dial attempt stands."""

    INTENT = "intent"  # committed before the POST; may or may not have been sent
    ACCEPTED = "accepted"  # Genesys answered 200 with a conversation id
    UNKNOWN = "unknown"  # may have rung; never re-dialed automatically, a human decides
    NOT_SENT = "not_sent"  # provably not placed (refused by the API, or never sent)
    ENDED = "ended"  # followed to its end; ``outcome`` says how


IN_FLIGHT: Final = (AttemptState.INTENT, AttemptState.ACCEPTED)


class ContactStatus(StrEnum):
    """Where one contact stands."""

    PENDING = "pending"  # to dial, at ``next_at`` or as soon as possible
    ACTIVE = "active"  # an attempt is in flight
    DONE = "done"  # finished; ``outcome`` says how
    SKIPPED = "skipped"  # never dialed by rule (do-not-call, outside every window, ...)
    UNKNOWN = "unknown"  # an attempt's outcome is unknown: needs a human


@dataclass(frozen=True, slots=True)
class CampaignInfo:
    """Who the journal belongs to."""

    name: str
    csv_path: str
    csv_fingerprint: str
    created_at: str


@dataclass(frozen=True, slots=True)
class ContactRecord:
    """A contact as journaled, with where it stands."""

    id: int
    line: int
    phone: str
    name: str | None
    agent: str | None
    external_id: str | None
    tz: str | None
    attributes: Mapping[str, str]
    status: ContactStatus
    outcome: str | None
    detail: str | None
    attempts: int
    next_at: datetime | None
    updated_at: datetime

    def as_contact(self) -> Contact:
        """The CSV-side view of this contact (what the rules and the runner work on)."""
        return Contact(
            line=self.line,
            phone_e164=self.phone,
            name=self.name,
            agent=self.agent,
            external_id=self.external_id,
            tz=self.tz,
            attributes=dict(self.attributes),
        )


@dataclass(frozen=True, slots=True)
class Attempt:
    """One dial attempt."""

    id: int
    contact_id: int
    number: int
    agent_id: str
    agent: str | None
    state: AttemptState
    conversation_id: str | None
    created_at: datetime
    accepted_at: datetime | None
    ended_at: datetime | None
    outcome: str | None
    error_code: str | None
    context_id: str | None
    detail: str | None
    talk_s: float | None = None
    tag: str | None = None
    sent_after: datetime | None = None
    """The server's latest ``Date`` before the POST left (None: never seen, or an older row)."""
    match_after: datetime | None = None
    """A server time surely passed before the POST left: an untagged call that started earlier
    is not this attempt's (None: unknown, or an older row)."""
    wrapup: Wrapup | None = None
    """The agent's wrap-up of the call, when one came."""
    wrapup_action: str | None = None
    """What the campaign's rules made of it (a WrapupAction value), or ``missing``."""


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _iso(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("journal times must be timezone-aware")
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")


_WRAPUP_ACTIONS: Final = frozenset(
    {"policy", "done", "retry", "callback", "dnc", "wrong_number", "missing"}
)
"""What ``attempts.wrapup_action`` may hold: a :class:`WrapupAction` value, or ``missing``."""


E = TypeVar("E", bound=StrEnum)
J = TypeVar("J", dict, list)  # type: ignore[type-arg]


class _Cells:
    """One row read back from the journal, each value checked as it is taken out.

    This is the one boundary between the file and the records: SQLite keeps whatever was put in
    a column (a hand edit, a damaged page), so a value that is not one gcdial writes becomes a
    :class:`JournalDataError` naming the file, table, row and column here, not a ValueError deep
    in a report or a run. A column an older schema lacks reads as None.
    """

    def __init__(self, path: object, table: str, row: Row, *, where: str | None = None):
        self.path, self.table, self._row = path, table, row
        self._keys = set(row.keys())
        self._where = where

    def _row_name(self) -> str:
        if self._where is not None:
            return self._where
        parts = [f"{key} {self._row[key]!r}" for key in ("id", "key", "line") if key in self._keys]
        return ", ".join(parts) or "a row"

    def bad(self, column: str, value: object, expected: str) -> JournalDataError:
        """The error for a value that is not one gcdial writes."""
        shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
        return JournalDataError(
            f"The journal {self.path} holds a value gcdial did not write: table {self.table}, "
            f"row {self._row_name()}, column {column} is {shown}, not {expected}.",
            hint="The file was edited or damaged. Restore it from a backup, or review that row "
            f"with the sqlite3 tool (`sqlite3 {self.path}`) and put back a valid value; then run "
            "the command again.",
        )

    def _raw(self, column: str) -> object:
        return self._row[column] if column in self._keys else None

    def text(self, column: str) -> str:
        value = self._raw(column)
        if not isinstance(value, str):
            raise self.bad(column, value, "text")
        return value

    def opt_text(self, column: str) -> str | None:
        value = self._raw(column)
        return None if value is None else self.text(column)

    def integer(self, column: str) -> int:
        value = self._raw(column)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise self.bad(column, value, "a whole number")
        return value

    def opt_number(self, column: str) -> float | None:
        value = self._raw(column)
        if value is None:
            return None
        if not isinstance(value, int | float) or isinstance(value, bool) or value != value:
            raise self.bad(column, value, "a number")
        return float(value)

    def opt_time(self, column: str) -> datetime | None:
        value = self._raw(column)
        if value is None or value == "":
            return None
        moment = None
        if isinstance(value, str):
            with contextlib.suppress(ValueError):
                moment = datetime.fromisoformat(value)
        if moment is None or moment.tzinfo is None:
            raise self.bad(column, value, "a time like 2026-01-31T09:00:00.000+00:00")
        return moment

    def time(self, column: str) -> datetime:
        moment = self.opt_time(column)
        if moment is None:
            raise self.bad(column, self._raw(column), "a time like 2026-01-31T09:00:00.000+00:00")
        return moment

    def choice(self, column: str, kind: type[E]) -> E:
        value = self._raw(column)
        if isinstance(value, str) and value in set(kind):
            return kind(value)
        raise self.bad(column, value, f"one of {', '.join(kind)}")

    def zone(self, column: str) -> str | None:
        value = self.opt_text(column)
        if value and not _known_zone(value):
            raise self.bad(column, value, "a time zone like America/New_York")
        return value

    def json(self, column: str, kind: type[J]) -> J:
        text = self.text(column)
        try:
            loaded = json.loads(text)
        except ValueError:
            loaded = None
        if not isinstance(loaded, kind):
            raise self.bad(column, text, f"a JSON {'object' if kind is dict else 'array'}")
        return loaded

    def text_map(self, column: str) -> dict[str, str]:
        loaded = self.json(column, dict)
        if not all(isinstance(v, str) for v in loaded.values()):
            raise self.bad(column, self._raw(column), "a JSON object of texts")
        return cast("dict[str, str]", loaded)


def redecided_due(record: ContactRecord) -> datetime | None:
    """When a pending contact is due for a run that decides its rules anew: its retry time,
    or None (now) for a contact never dialed (see :meth:`Pending.redecide_deferrals`)."""
    return record.next_at if record.attempts else None


def page_key(contact: ContactRecord) -> tuple[str, int]:
    """The key of a contact in :meth:`Pending.page` order (for paging)."""
    return (_iso(contact.next_at) if contact.next_at else "", contact.id)


def _contact(path: object, row: Row) -> ContactRecord:
    cells = _Cells(path, "campaign_contacts", row)
    return ContactRecord(
        id=cells.integer("id"),
        line=cells.integer("line"),
        phone=cells.text("phone"),
        name=cells.opt_text("name"),
        agent=cells.opt_text("agent"),
        external_id=cells.opt_text("external_id"),
        tz=cells.zone("tz"),
        attributes=cells.text_map("attributes"),
        status=cells.choice("status", ContactStatus),
        outcome=cells.opt_text("outcome"),
        detail=cells.opt_text("detail"),
        attempts=cells.integer("attempts"),
        next_at=cells.opt_time("next_at"),
        updated_at=cells.time("updated_at"),
    )


def _attempt(path: object, row: Row) -> Attempt:
    cells = _Cells(path, "campaign_attempts", row)
    action = cells.opt_text("wrapup_action")
    if action is not None and action not in _WRAPUP_ACTIONS:
        raise cells.bad("wrapup_action", action, f"one of {', '.join(sorted(_WRAPUP_ACTIONS))}")
    return Attempt(
        id=cells.integer("id"),
        contact_id=cells.integer("contact_id"),
        number=cells.integer("number"),
        agent_id=cells.text("agent_id"),
        agent=cells.opt_text("agent"),
        state=cells.choice("state", AttemptState),
        conversation_id=cells.opt_text("conversation_id"),
        created_at=cells.time("created_at"),
        accepted_at=cells.opt_time("accepted_at"),
        ended_at=cells.opt_time("ended_at"),
        outcome=cells.opt_text("outcome"),
        error_code=cells.opt_text("error_code"),
        context_id=cells.opt_text("context_id"),
        detail=cells.opt_text("detail"),
        talk_s=cells.opt_number("talk_s"),
        tag=cells.opt_text("tag"),
        sent_after=cells.opt_time("sent_after"),
        match_after=cells.opt_time("match_after"),
        wrapup=_wrapup(cells),
        wrapup_action=action,
    )


def _wrapup(cells: _Cells) -> Wrapup | None:
    code, name = cells.opt_text("wrapup_code"), cells.opt_text("wrapup_name")
    notes, at = cells.opt_text("wrapup_notes"), cells.opt_time("wrapup_at")
    if code is None and name is None:
        return None
    return Wrapup(code=code, name=name, notes=notes, at=at)


def _skipped(csv_path: str, cells: _Cells) -> RowProblem:
    return RowProblem(
        csv_path,
        cells.integer("line"),
        cells.opt_text("col"),
        cells.text("reason"),
        cells.text("fix"),
        cells.text("kind"),
    )


_CHOICES: Final[dict[tuple[str, str], type[StrEnum]]] = {  # by count_by's names
    ("contacts", "status"): ContactStatus,
    ("attempts", "state"): AttemptState,
}


def _event(path: object, row: Row) -> dict[str, Any]:
    cells = _Cells(path, "campaign_events", row)
    cells.integer("id")
    cells.time("at")
    cells.text("kind")
    for column in ("contact_id", "attempt_id"):
        if row[column] is not None:
            cells.integer(column)
    cells.opt_text("detail")
    return {key: row[key] for key in row.keys() if key != "campaign_id"}  # noqa: SIM118 - a Row


_META_JSON: Final = {
    "settings": True,
    "attribute_columns": False,
    "waiting_for_agents": True,
    "agent_states": True,
}
"""The campaign values stored as JSON: True for an object, False for an array."""


def _meta_value(path: object, row: Row) -> str:
    """A ``meta`` value, checked for what its key holds (free-form keys are text)."""
    cells = _Cells(path, "campaign_meta", row)
    key = cells.text("key")
    if key in _META_JSON:
        if _META_JSON[key]:
            cells.json("value", dict)
        else:
            cells.json("value", list)
    elif key == "created_at":
        cells.time("value")
    elif key == "contacts_loaded" and row["value"] not in ("0", "1"):
        raise cells.bad("value", row["value"], "0 or 1")
    return cells.text("value")


def _time_test(column: str, *, optional: bool) -> str:
    readable = (
        f"julianday({column}) IS NOT NULL AND typeof({column}) = 'text' "
        f"AND (substr({column}, -6, 1) IN ('+', '-') OR substr({column}, -1) = 'Z')"
    )
    if optional:
        return f"{column} IS NOT NULL AND {column} != '' AND NOT ({readable})"
    return f"NOT ({readable})"


def _int_test(column: str, *, optional: bool = False) -> str:
    wrong = f"typeof({column}) != 'integer' OR {column} < 0"
    return f"{column} IS NOT NULL AND ({wrong})" if optional else wrong


def _text_test(column: str, *, optional: bool = True) -> str:
    wrong = f"typeof({column}) != 'text'"
    return f"{column} IS NOT NULL AND {wrong}" if optional else wrong


def _among(column: str, values: Iterable[str]) -> str:
    listed = ", ".join(f"'{v}'" for v in values)
    return f"{column} IS NULL OR {column} NOT IN ({listed})"


_SIEVES: Final[dict[str, tuple[tuple[str, str], ...]]] = {
    "campaign_contacts": (
        ("line", _int_test("line")),
        ("phone", _text_test("phone", optional=False)),
        *((c, _text_test(c)) for c in ("name", "agent", "external_id", "tz", "outcome", "detail")),
        ("attributes", "NOT json_valid(attributes) OR json_type(attributes) != 'object'"),
        ("status", _among("status", ContactStatus)),
        ("attempts", _int_test("attempts")),
        ("next_at", _time_test("next_at", optional=True)),
        ("updated_at", _time_test("updated_at", optional=False)),
    ),
    "campaign_attempts": (
        ("contact_id", _int_test("contact_id")),
        ("number", _int_test("number")),
        ("agent_id", _text_test("agent_id", optional=False)),
        ("state", _among("state", AttemptState)),
        ("created_at", _time_test("created_at", optional=False)),
        *(
            (c, _time_test(c, optional=True))
            for c in ("accepted_at", "ended_at", "sent_after", "match_after", "wrapup_at")
        ),
        *(
            (c, _text_test(c))
            for c in (
                "agent",
                "conversation_id",
                "outcome",
                "error_code",
                "context_id",
                "detail",
                "tag",
                "wrapup_code",
                "wrapup_name",
                "wrapup_notes",
            )
        ),
        ("talk_s", "talk_s IS NOT NULL AND typeof(talk_s) NOT IN ('integer', 'real')"),
        (
            "wrapup_action",
            f"wrapup_action IS NOT NULL AND ({_among('wrapup_action', _WRAPUP_ACTIONS)})",
        ),
    ),
    "campaign_events": (
        ("at", _time_test("at", optional=False)),
        ("kind", _text_test("kind", optional=False)),
        ("contact_id", _int_test("contact_id", optional=True)),
        ("attempt_id", _int_test("attempt_id", optional=True)),
        ("detail", _text_test("detail")),
    ),
    "campaign_skipped_rows": (
        ("col", _text_test("col")),
        *((c, _text_test(c, optional=False)) for c in ("kind", "reason", "fix")),
    ),
    "campaign_dnc": (
        ("phone", _text_test("phone", optional=False)),
        ("added_at", _time_test("added_at", optional=False)),
        ("attempt_id", _int_test("attempt_id", optional=True)),
    ),
}
"""Per table, a test per column that picks out the rows whose value the boundary would refuse
(see :meth:`Journal.verify`): only a sieve, the conversions decide."""


def _dnc_row(path: object, row: Row) -> None:
    cells = _Cells(path, "campaign_dnc", row, where=f"phone {row['phone']!r}")
    cells.text("phone")
    cells.time("added_at")
    if row["attempt_id"] is not None:
        cells.integer("attempt_id")


_CONVERTERS: Final[dict[str, Callable[[object, Row], object]]] = {
    "campaign_contacts": _contact,
    "campaign_attempts": _attempt,
    "campaign_events": _event,
    "campaign_skipped_rows": lambda path, row: _skipped(
        "", _Cells(path, "campaign_skipped_rows", row)
    ),
    "campaign_dnc": _dnc_row,
}


@functools.cache
def _known_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ValueError, ZoneInfoNotFoundError):
        return False
    return True
