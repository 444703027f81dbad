"""What every part of a campaign's journal shares: its connection, campaign, clock and
transactions, the event log's append, the campaign's values (meta), and the decorator that turns
a database failure into a :class:`JournalError` naming the journal.

:class:`gcdial.campaign.journal.Journal` owns one :class:`JournalCore` and gives it to each of
its parts (:class:`JournalPart`: ``journal.contacts``, ``journal.pending``, ``journal.attempts``,
``journal.events``), which share it rather than inherit from it. Only the journal's own modules
use the core.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import sqlite3
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, Final, ParamSpec, Protocol, TypeVar, cast

from gcdial.campaign.journaldb import (
    LOCAL_CAMPAIGN,
    SCHEMA_VERSION,
    Fence,
    JournalDatabase,
)
from gcdial.campaign.journalfile import _FileLock, _unreadable
from gcdial.campaign.journalrows import (
    _CHOICES,
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

__all__ = ["Clock", "JournalCore", "JournalPart", "count_by", "guarded"]

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
            journal = cast("_OnCore", args[0])._core
            try:
                yield from cast("Iterator[Any]", method(*args, **kwargs))
            except Exception as exc:
                raise journal.failure(exc) from None

        return cast("Callable[P, R]", gen_wrapper)

    @functools.wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        journal = cast("_OnCore", args[0])._core
        try:
            return method(*args, **kwargs)
        except Exception as exc:
            raise journal.failure(exc) from None

    return wrapper


class JournalCore:
    """The state every part of a journal works on: one connection, used by one thread at a time
    (see :class:`gcdial.campaign.journal.Journal`)."""

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
        self.conn = conn
        self.lock = lock
        self.clock = clock
        self.read_only = read_only
        self.held_ready = False
        self.version = SCHEMA_VERSION
        self.campaign_id = campaign_id
        self.shared = shared
        self.fence = fence
        # A connection lent by a pool: closing the journal gives it back through this.
        self.lent: Callable[[Connection], None] | None = None
        # How messages name this journal: its file, or the campaign in its database.
        self.where = str(path) if shared is None else f"{shared.label} (campaign {campaign_id})"

    def failure(self, exc: Exception) -> Exception:
        """``exc`` as a :class:`JournalError` naming the journal when the database raised it."""
        if not isinstance(exc, self.conn.errors):
            return exc
        if self.shared is not None:
            return JournalError(
                f"The journal of campaign {self.campaign_id} in {self.shared.label} failed: {exc}.",
                hint="Check that the database is reachable and intact, then resume the campaign.",
            )
        return _unreadable(self.path, cast("sqlite3.Error", exc))

    @contextlib.contextmanager
    def tx(self) -> Iterator[Connection]:
        if self.read_only:
            raise JournalError(f"The journal {self.where} was opened read-only.")
        self.conn.begin_write()
        try:
            yield self.conn
        except BaseException:
            self.conn.rollback()
            raise
        self.conn.commit()

    def now(self) -> str:
        return _iso(self.clock())

    def event(
        self,
        kind: str,
        *,
        contact_id: int | None = None,
        attempt_id: int | None = None,
        detail: str | None = None,
    ) -> None:
        self.conn.execute(
            "INSERT INTO campaign_events (campaign_id, at, kind, contact_id, attempt_id, detail) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (self.campaign_id, self.now(), kind, contact_id, attempt_id, detail),
        )

    def info(self) -> CampaignInfo:
        """Name, contact list and creation time of the campaign."""
        rows = self.conn.execute(
            "SELECT key, value FROM campaign_meta WHERE campaign_id = ?", (self.campaign_id,)
        ).fetchall()
        meta = {str(row["key"]): _meta_value(self.where, row) for row in rows}
        return CampaignInfo(
            name=meta.get("name", ""),
            csv_path=meta.get("csv_path", ""),
            csv_fingerprint=meta.get("csv_fingerprint", ""),
            created_at=meta.get("created_at", ""),
        )

    def meta_json(self, key: str, kind: type[J]) -> J | None:
        """A campaign value stored as JSON (an object or an array), checked; None when unset."""
        row = self.conn.execute(
            "SELECT key, value FROM campaign_meta WHERE campaign_id = ? AND key = ?",
            (self.campaign_id, key),
        ).fetchone()
        if row is None:
            return None
        _meta_value(self.where, row)
        return _Cells(self.where, "campaign_meta", row).json("value", kind)

    def get_meta(self, key: str) -> str | None:
        """A free-form campaign value (None when unset)."""
        row = self.conn.execute(
            "SELECT value FROM campaign_meta WHERE campaign_id = ? AND key = ?",
            (self.campaign_id, key),
        ).fetchone()
        return None if row is None else str(row[0])

    def put_meta(self, conn: Connection, key: str, value: str) -> None:
        conn.execute(
            "INSERT INTO campaign_meta (campaign_id, key, value) VALUES (?, ?, ?) "
            "ON CONFLICT (campaign_id, key) DO UPDATE SET value = excluded.value",
            (self.campaign_id, key, value),
        )

    def attempt_row(self, conn: Connection, attempt_id: int) -> Row:
        row: Row | None = conn.execute(
            "SELECT * FROM campaign_attempts WHERE id = ? AND campaign_id = ?",
            (attempt_id, self.campaign_id),
        ).fetchone()
        if row is None:
            raise KeyError(f"no attempt {attempt_id} in the journal")
        return row

    def check_identity(self, name: str | None, fingerprint: str | None) -> None:
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


class _OnCore(Protocol):
    _core: JournalCore


class JournalPart:
    """One part of a journal (its contacts, its attempts...): a view over the journal's core,
    which it shares with the other parts."""

    def __init__(self, core: JournalCore) -> None:
        self._core = core
        self._conn = core.conn
        self.campaign_id = core.campaign_id
        self.where = core.where


def count_by(core: JournalCore, table: str, column: str) -> dict[str, int]:
    """Row counts grouped by one column (``contacts``/``attempts`` by status/state/outcome)."""
    allowed = {
        ("contacts", "status"),
        ("contacts", "outcome"),
        ("attempts", "state"),
        ("attempts", "outcome"),
        ("attempts", "agent"),
    }
    if (table, column) not in allowed:
        raise ValueError(f"cannot count {table} by {column}")
    name = f"campaign_{table}"
    rows = core.conn.execute(
        f"SELECT {column}, COUNT(*) FROM {name} WHERE campaign_id = ? GROUP BY {column}",  # noqa: S608 - allow-listed
        (core.campaign_id,),
    ).fetchall()
    kind = _CHOICES.get((table, column))
    if kind is not None:
        for key, _ in rows:
            if key not in set(kind):
                row = core.conn.execute(
                    f"SELECT * FROM {name} WHERE campaign_id = ? "  # noqa: S608 - allow-listed
                    f"AND {column} IS NOT DISTINCT FROM ? LIMIT 1",
                    (core.campaign_id, key),
                ).fetchone()
                _Cells(core.where, name, row).choice(column, kind)
    return {str(key) if key is not None else "": int(n) for key, n in rows}
