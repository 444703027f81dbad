"""What every part of a campaign's journal shares: its connection, campaign, clock and
transactions, the event log's append, the campaign's values (meta), and the decorator that turns
a database failure into a :class:`JournalError` naming the journal.

The journal's parts (:mod:`journalcontacts`, :mod:`journalattempts`) are classes over this core;
:class:`gcdial.campaign.journal.Journal` puts them together with the file (or shared database)
it lives in.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import sqlite3
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, Final, ParamSpec, TypeVar, cast

from gcdial.campaign.journaldb import (
    LOCAL_CAMPAIGN,
    SCHEMA_VERSION,
    Fence,
    JournalDatabase,
)
from gcdial.campaign.journalfile import _FileLock, _unreadable
from gcdial.campaign.journalrows import (
    AttemptState,
    CampaignInfo,
    J,
    _Cells,
    _iso,
    _meta_value,
)
from gcdial.campaign.sqldialect import Connection, Row
from gcdial.errors import (
    JournalError,
    JournalMismatchError,
)

__all__ = ["Clock", "JournalCore", "guarded"]

_BATCH: Final = 5000

Clock = Callable[[], datetime]

P = ParamSpec("P")
R = TypeVar("R")


def guarded(method: Callable[P, R]) -> Callable[P, R]:
    """Turn a database failure inside a journal method into a :class:`JournalError` naming the
    journal (a damaged file may be found out at any read, not only when it is opened)."""

    if inspect.isgeneratorfunction(method):

        @functools.wraps(method)
        def gen_wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
            journal = cast("JournalCore", args[0])
            try:
                yield from cast("Iterator[Any]", method(*args, **kwargs))
            except Exception as exc:
                raise journal._failure(exc) from None

        return cast("Callable[P, R]", gen_wrapper)

    @functools.wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        journal = cast("JournalCore", args[0])
        try:
            return method(*args, **kwargs)
        except Exception as exc:
            raise journal._failure(exc) from None

    return wrapper


class JournalCore:
    """The state every part of a journal works on (see :class:`Journal`)."""

    def __init__(
        self,
        path: Path,
        conn: Connection,
        *,
        lock: _FileLock | None,
        clock: Clock,
        read_only: bool,
        campaign_id: str = LOCAL_CAMPAIGN,
        shared: JournalDatabase | None = None,
        fence: Fence | None = None,
    ) -> None:
        self.path = path
        self._conn = conn
        self._lock = lock
        self._clock = clock
        self.read_only = read_only
        self._held_ready = False
        self._version = SCHEMA_VERSION
        self.campaign_id = campaign_id
        self._shared = shared
        self._fence = fence
        # How messages name this journal: its file, or the campaign in its database.
        self.where = str(path) if shared is None else f"{shared.label} (campaign {campaign_id})"

    def _failure(self, exc: Exception) -> Exception:
        """``exc`` as a :class:`JournalError` naming the journal when the database raised it."""
        if not isinstance(exc, self._conn.errors):
            return exc
        if self._shared is not None:
            return JournalError(
                f"The journal of campaign {self.campaign_id} in {self._shared.label} failed: "
                f"{exc}.",
                hint="Check that the database is reachable and intact, then resume the campaign.",
            )
        return _unreadable(self.path, cast("sqlite3.Error", exc))

    @contextlib.contextmanager
    def _tx(self) -> Iterator[Connection]:
        if self.read_only:
            raise JournalError(f"The journal {self.where} was opened read-only.")
        self._conn.begin_write()
        try:
            yield self._conn
        except BaseException:
            self._conn.rollback()
            raise
        self._conn.commit()

    def _now(self) -> str:
        return _iso(self._clock())

    def _event(
        self,
        kind: str,
        *,
        contact_id: int | None = None,
        attempt_id: int | None = None,
        detail: str | None = None,
    ) -> None:
        self._conn.execute(
            "INSERT INTO campaign_events (campaign_id, at, kind, contact_id, attempt_id, detail) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (self.campaign_id, self._now(), kind, contact_id, attempt_id, detail),
        )

    @guarded
    def info(self) -> CampaignInfo:
        """Name, contact list and creation time of the campaign."""
        rows = self._conn.execute(
            "SELECT key, value FROM campaign_meta WHERE campaign_id = ?", (self.campaign_id,)
        ).fetchall()
        meta = {str(row["key"]): _meta_value(self.where, row) for row in rows}
        return CampaignInfo(
            name=meta.get("name", ""),
            csv_path=meta.get("csv_path", ""),
            csv_fingerprint=meta.get("csv_fingerprint", ""),
            created_at=meta.get("created_at", ""),
        )

    @guarded
    def settings(self) -> dict[str, Any]:
        """The settings the campaign was started with (rules, pacing), as stored at creation."""
        return self.meta_json("settings", dict) or {}

    @guarded
    def meta_json(self, key: str, kind: type[J]) -> J | None:
        """A campaign value stored as JSON (an object or an array), checked; None when unset."""
        row = self._conn.execute(
            "SELECT key, value FROM campaign_meta WHERE campaign_id = ? AND key = ?",
            (self.campaign_id, key),
        ).fetchone()
        if row is None:
            return None
        _meta_value(self.where, row)
        return _Cells(self.where, "campaign_meta", row).json("value", kind)

    @guarded
    def get_meta(self, key: str) -> str | None:
        """A free-form campaign value (None when unset)."""
        row = self._conn.execute(
            "SELECT value FROM campaign_meta WHERE campaign_id = ? AND key = ?",
            (self.campaign_id, key),
        ).fetchone()
        return None if row is None else str(row[0])

    @guarded
    def set_meta(self, key: str, value: str) -> None:
        """Store a free-form campaign value."""
        with self._tx() as conn:
            self._put_meta(conn, key, value)

    def _put_meta(self, conn: Connection, key: str, value: str) -> None:
        conn.execute(
            "INSERT INTO campaign_meta (campaign_id, key, value) VALUES (?, ?, ?) "
            "ON CONFLICT (campaign_id, key) DO UPDATE SET value = excluded.value",
            (self.campaign_id, key, value),
        )

    @property
    @guarded
    def contacts_loaded(self) -> bool:
        """Whether the whole contact list was loaded (a crash mid-load leaves this False)."""
        return self.get_meta("contacts_loaded") == "1"

    @guarded
    def record_event(
        self,
        kind: str,
        *,
        contact_id: int | None = None,
        attempt_id: int | None = None,
        detail: str | None = None,
    ) -> None:
        """Append a free-form event (call state changes, warnings) to the log."""
        with self._tx():
            self._event(kind, contact_id=contact_id, attempt_id=attempt_id, detail=detail)

    def _held_table(self) -> None:
        if not self._held_ready:
            self._conn.make_held()
            self._held_ready = True

    def _attempt_row(self, conn: Connection, attempt_id: int) -> Row:
        row: Row | None = conn.execute(
            "SELECT * FROM campaign_attempts WHERE id = ? AND campaign_id = ?",
            (attempt_id, self.campaign_id),
        ).fetchone()
        if row is None:
            raise KeyError(f"no attempt {attempt_id} in the journal")
        return row

    def _require(self, row: Row, *allowed: AttemptState) -> None:
        if row["state"] not in allowed:
            raise JournalError(
                f"Attempt {row['id']} is {row['state']}; expected "
                f"{' or '.join(str(a) for a in allowed)}."
            )

    def _check_identity(self, name: str | None, fingerprint: str | None) -> None:
        info = self.info()
        if name is not None and name != info.name:
            raise JournalMismatchError(
                f"The journal {self.where} belongs to campaign {info.name!r} (list "
                f"{info.csv_path}), not {name!r}.",
                hint="Give a new journal path to start another campaign, or the original "
                "campaign name to resume this one.",
            )
        if fingerprint is not None and fingerprint != info.csv_fingerprint:
            raise JournalMismatchError(
                f"The contact list differs from the one campaign {info.name!r} started with "
                f"({info.csv_path}; fingerprint {info.csv_fingerprint[:12]}, now "
                f"{fingerprint[:12]}).",
                hint="Resume with the original, unchanged file, or start a new campaign (with a "
                "new journal path) for the edited list.",
            )
