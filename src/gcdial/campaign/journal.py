"""The campaign journal: every contact, attempt, state change and outcome of a campaign, in a
one-file SQLite journal beside the CLI's list, or as one campaign's rows in a shared database (the
service's SQLite store or PostgreSQL, see :class:`JournalDatabase`), through the same code and the
same schema (:mod:`gcdial.campaign.journaldb`). The rules below are the one-file journal's; in a
shared database rules 1-3 hold alike, and a lease (:class:`Fence`) takes the place of the lock.

Crash-safety rules, in order of importance:

1. The intent to dial is committed *before* the create-call POST (``journal.attempts.begin``,
   :meth:`Attempts.begin`). After a crash, every attempt still in ``intent`` or ``accepted`` shows
   up in ``journal.attempts.in_flight()`` and must be reconciled; an attempt is never silently
   re-dialed.
2. Each state change is its own transaction, so the file is consistent at every instant.
3. ``synchronous = FULL``: with WAL, ``NORMAL`` survives a killed process but may lose the last
   commits on power loss or an OS crash; losing a committed *intent* after its POST went out could
   ring a customer twice on resume. A campaign commits a handful of changes per second, so one
   fsync per commit costs nothing that matters.
4. One process at a time: an exclusive ``flock`` on ``<journal>.lock``. The kernel drops it when
   the process dies, even by ``kill -9``, so a crash never leaves a stale lock behind. A clean
   exit removes the lock file and SQLite's ``-wal`` and ``-shm`` (after a checkpoint): between
   runs a campaign is its one journal file.
5. Creation is atomic: the schema, the campaign's identity and WAL mode are written to a
   temporary file which is then renamed into place, so a journal either does not exist or is
   complete, already in WAL mode (a kill in the first milliseconds leaves nothing to trip over on
   the next run). A rollback journal left hot by a killed writer anyway (``-journal``: an older
   gcdial switching to WAL, or a hand edit) is rolled back under the lock before any read-only
   open, which cannot roll it back and would refuse the file for good.
6. A file that cannot be read as a journal (not SQLite, truncated, a table missing, another
   schema) is a :class:`JournalError` naming the file, whenever it is found out: on open or in
   the middle of a run. Only the journal's modules know its files (``-wal``, ``-shm``, lock,
   temporary).

The journal is composed, not inherited: a :class:`Journal` owns its core (the connection, its
transactions, the campaign's values, :meth:`Journal.verify`, :meth:`Journal.close`) and hands it to
its parts, which callers reach as attributes: ``journal.contacts`` (:class:`Contacts`: the list,
verdicts), ``journal.pending`` (:class:`Pending`: what is due, waits, skips, holds),
``journal.attempts`` (:class:`Attempts`: each dial's state machine) and ``journal.events``
(:class:`Events`: the log). Opening and making journals is :mod:`gcdial.campaign.journalhome`.

Secrets never enter the journal: it holds contacts, agents, conversation ids and outcomes only.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from gcdial.campaign.journalattempts import Attempts, Events
from gcdial.campaign.journalcontacts import Contacts, Pending
from gcdial.campaign.journalcore import Clock, JournalCore, guarded
from gcdial.campaign.journaldb import (
    SCHEMA_VERSION,
    Fence,
    JournalDatabase,
    delete_campaign,
)
from gcdial.campaign.journalfile import _FileLock, _roll_back_hot, _side_files, _unreadable
from gcdial.campaign.journalhome import (
    build,
    campaign_present,
    check_schema,
    checkpoint,
    connect_file,
    half_made,
    migrate,
    shared_core,
)
from gcdial.campaign.journalrows import (
    _CONVERTERS,
    _SIEVES,
    Attempt,
    AttemptState,
    CampaignInfo,
    ContactRecord,
    ContactStatus,
    J,
    _iso,
    _known_zone,
    _meta_value,
    _utc_now,
    page_key,
    redecided_due,
)
from gcdial.campaign.sqldialect import Connection, connect_sqlite
from gcdial.errors import (
    JournalDataError,
    JournalError,
    JournalFencedError,
    JournalLockedError,
    JournalMismatchError,
    JournalSchemaError,
)

__all__ = [
    "SCHEMA_VERSION",
    "Attempt",
    "AttemptState",
    "Attempts",
    "CampaignInfo",
    "ContactRecord",
    "ContactStatus",
    "Contacts",
    "Events",
    "Fence",
    "Journal",
    "JournalDataError",
    "JournalDatabase",
    "JournalError",
    "JournalFencedError",
    "JournalLockedError",
    "JournalMismatchError",
    "JournalSchemaError",
    "Pending",
    "page_key",
    "redecided_due",
]


class Journal:
    """The durable record of one campaign: a one-file journal (:meth:`create`, :meth:`open`) or
    a campaign's rows in a shared database (:meth:`create_in`, :meth:`open_in`). Close when
    done.

    Its parts share its core: ``contacts`` (:class:`Contacts`), ``pending`` (:class:`Pending`),
    ``attempts`` (:class:`Attempts`) and ``events`` (:class:`Events`).
    """

    def __init__(self, core: JournalCore) -> None:
        self._core = core
        self.path = core.path
        self.read_only = core.read_only
        self.campaign_id = core.campaign_id
        self.where = core.where  # how messages name this journal
        self.contacts = Contacts(core)
        self.pending = Pending(core)
        self.attempts = Attempts(core)
        self.events = Events(core)

    @classmethod
    def create(
        cls,
        path: str | Path,
        *,
        name: str,
        csv_path: str,
        csv_fingerprint: str,
        settings: Mapping[str, Any] | None = None,
        clock: Clock = _utc_now,
    ) -> Self:
        """Start a new journal at ``path`` (which must not exist yet) for the named campaign."""
        path = Path(path)
        lock = _FileLock(path)
        lock.acquire()
        try:
            if path.exists() and not half_made(path):
                raise JournalError(
                    f"A journal already exists at {path}.",
                    hint="Resume it with the same command, or give a new journal path to start "
                    "another campaign.",
                )
            build(
                path,
                {
                    "name": name,
                    "csv_path": csv_path,
                    "csv_fingerprint": csv_fingerprint,
                    "created_at": _iso(clock()),
                    "contacts_loaded": "0",
                    "settings": json.dumps(dict(settings or {}), sort_keys=True),
                },
            )
            conn = connect_sqlite(connect_file(path, read_only=False))
            journal = cls(JournalCore(path, conn, lock=lock, clock=clock, read_only=False))
            journal.events.record("campaign.created", detail=name)
        except BaseException:
            lock.release()
            raise
        return journal

    @staticmethod
    def exists(path: str | Path) -> bool:
        """Whether a journal (complete, or half-made by an older gcdial) is at ``path``."""
        path = Path(path)
        return path.is_file() and not half_made(path)

    @staticmethod
    def holder(path: str | Path) -> int | None:
        """The pid of the gcdial process running the campaign of ``path`` (0 if unknown), or None
        when no process holds it."""
        return _FileLock.holder(Path(path))

    @classmethod
    def open(
        cls,
        path: str | Path,
        *,
        expect_name: str | None = None,
        expect_fingerprint: str | None = None,
        read_only: bool = False,
        clock: Clock = _utc_now,
    ) -> Self:
        """Open an existing journal; refuse one of another campaign, a newer schema, or a held lock.

        ``read_only`` takes no lock (for status and report while a campaign runs).
        """
        path = Path(path)
        if not path.is_file():
            raise JournalError(
                f"No journal at {path}.", hint="Check the path, or start the campaign first."
            )
        if read_only:
            _roll_back_hot(path)
        lock = None if read_only else _FileLock(path)
        if lock is not None:
            lock.acquire()
        try:
            conn = connect_sqlite(connect_file(path, read_only=read_only))
            core = JournalCore(path, conn, lock=lock, clock=clock, read_only=read_only)
            try:
                check_schema(core)
                if not read_only:
                    migrate(core)
                core.check_identity(expect_name, expect_fingerprint)
            except BaseException:
                conn.close()
                raise
        except sqlite3.Error as exc:
            if lock is not None:
                lock.release(remove=True)
            raise _unreadable(path, exc) from None
        except BaseException:
            if lock is not None:
                lock.release(remove=True)  # a refused journal is left as it was found
            raise
        return cls(core)

    @classmethod
    def create_in(
        cls,
        db: JournalDatabase,
        campaign_id: str,
        *,
        name: str,
        csv_path: str = "",
        csv_fingerprint: str = "",
        settings: Mapping[str, Any] | None = None,
        fence: Fence | None = None,
        clock: Clock = _utc_now,
    ) -> Self:
        """Start the journal of a new campaign ``campaign_id`` in ``db`` (whose schema
        :meth:`JournalDatabase.ensure_schema` made); refuses an id already there."""
        meta = {
            "name": name,
            "csv_path": csv_path,
            "csv_fingerprint": csv_fingerprint,
            "created_at": _iso(clock()),
            "contacts_loaded": "0",
            "settings": json.dumps(dict(settings or {}), sort_keys=True),
        }
        core = shared_core(db, campaign_id, fence=fence, clock=clock, read_only=False)
        try:
            with core.tx() as conn:
                taken = conn.execute(
                    "INSERT INTO campaign_meta (campaign_id, key, value) VALUES (?, 'name', ?) "
                    "ON CONFLICT DO NOTHING RETURNING key",
                    (campaign_id, name),
                ).fetchone()
                if taken is None:
                    raise JournalError(
                        f"A campaign {campaign_id} already exists in {db.label}.",
                        hint="Resume it, or give the new campaign another id.",
                    )
                conn.executemany(
                    "INSERT INTO campaign_meta (campaign_id, key, value) VALUES (?, ?, ?)",
                    [(campaign_id, k, v) for k, v in meta.items() if k != "name"],
                )
                core.event("campaign.created", detail=name)
        except Exception as exc:
            core.conn.close()
            raise core.failure(exc) from None
        return cls(core)

    @classmethod
    def open_in(
        cls,
        db: JournalDatabase,
        campaign_id: str,
        *,
        fence: Fence | None = None,
        expect_name: str | None = None,
        expect_fingerprint: str | None = None,
        read_only: bool = False,
        clock: Clock = _utc_now,
    ) -> Self:
        """Open the journal of campaign ``campaign_id`` in ``db``. With ``fence``, every
        :meth:`Attempts.begin` first checks that this replica still holds the campaign's lease."""
        core = shared_core(db, campaign_id, fence=fence, clock=clock, read_only=read_only)
        try:
            if not campaign_present(core):
                raise JournalError(
                    f"No campaign {campaign_id} in {db.label}.",
                    hint="Check the campaign id, or create the campaign first.",
                )
            core.check_identity(expect_name, expect_fingerprint)
        except Exception as exc:
            core.conn.close()
            raise core.failure(exc) from None
        return cls(core)

    @classmethod
    def read_in(
        cls,
        db: JournalDatabase,
        campaign_id: str,
        *,
        conn: Connection,
        give_back: Callable[[Connection], None],
    ) -> Self | None:
        """The journal of campaign ``campaign_id`` in ``db``, read-only, over ``conn`` lent by a
        pool: closing the journal gives the connection back through ``give_back`` (and the
        journal can no longer use it). None, the connection given back, when ``db`` holds no
        such campaign."""
        core = shared_core(db, campaign_id, fence=None, clock=_utc_now, read_only=True, conn=conn)
        try:
            if not campaign_present(core):
                give_back(conn)
                return None
            core.check_identity(None, None)
        except Exception as exc:
            conn.close()
            raise core.failure(exc) from None
        core.lent = give_back
        return cls(core)

    @staticmethod
    def exists_in(db: JournalDatabase, campaign_id: str) -> bool:
        """Whether ``db`` holds a journal of campaign ``campaign_id``."""
        core = shared_core(db, campaign_id, fence=None, clock=_utc_now, read_only=True)
        try:
            return campaign_present(core)
        except Exception as exc:
            raise core.failure(exc) from None
        finally:
            core.conn.close()

    @staticmethod
    def drop_in(db: JournalDatabase, campaign_id: str) -> None:
        """Delete every row of campaign ``campaign_id`` from ``db`` (in one transaction)."""
        core = shared_core(db, campaign_id, fence=None, clock=_utc_now, read_only=False)
        try:
            with core.tx() as conn:
                delete_campaign(conn, campaign_id)
        except Exception as exc:
            raise core.failure(exc) from None
        finally:
            core.conn.close()

    def discard(self) -> None:
        """Close and delete this journal and its side files (a new campaign whose list turned out
        unreadable before anything was dialed)."""
        core = self._core
        if core.read_only:
            raise JournalError(f"The journal {self.where} was opened read-only.")
        if core.shared is not None:
            with core.tx() as conn:
                delete_campaign(conn, core.campaign_id)
            core.conn.close()
            return
        core.conn.close()
        for side in [self.path, *_side_files(self.path)]:
            with contextlib.suppress(OSError):
                side.unlink()
        if core.lock is not None:
            with contextlib.suppress(OSError):
                core.lock.path.unlink()
            core.lock.release()
            core.lock = None

    @guarded
    def verify(self) -> None:
        """Find out now a value gcdial did not write anywhere in the journal, named (file, table,
        row, column), rather than midway through a run or a report, or never by a command that
        reads only some rows.

        The rows that matter go through the one boundary (the row-to-record conversion), which
        alone decides and words the error. A query per table sieves the rows first (a value of
        the wrong type, a time SQLite cannot read or without its offset, an unknown status, JSON
        that is not an object), so that a large journal costs one indexed-free scan in SQLite,
        not a Python conversion per row; a value the sieve lets through and the boundary refuses
        is still named when a command reads it.
        """
        cid = (self.campaign_id,)
        for row in self._core.conn.execute(
            "SELECT key, value FROM campaign_meta WHERE campaign_id = ?", cid
        ):
            _meta_value(self.where, row)
        sieve = self._core.conn.dialect == "sqlite"
        for table, convert in _CONVERTERS.items():
            present = self._core.conn.columns(table)
            if not present:
                continue
            query = f"SELECT * FROM {table} WHERE campaign_id = ?"  # noqa: S608 - own names
            if sieve:
                # PostgreSQL's columns hold only their type: every row goes through the boundary.
                tests = [test for column, test in _SIEVES[table] if column in present]
                query += " AND (" + " OR ".join(f"({t})" for t in tests) + ")"
            for row in self._core.conn.execute(query, cid):
                convert(self.where, row)
        zones = self._core.conn.execute(
            "SELECT tz, MIN(id) FROM campaign_contacts WHERE campaign_id = ? AND tz IS NOT NULL "
            "AND tz != '' GROUP BY tz",
            cid,
        ).fetchall()
        for zone, contact_id in zones:
            if not _known_zone(zone):
                self.contacts.get(contact_id)

    @guarded
    def info(self) -> CampaignInfo:
        """Name, contact list and creation time of the campaign."""
        return self._core.info()

    @guarded
    def settings(self) -> dict[str, Any]:
        """The settings the campaign was started with (rules, pacing), as stored at creation."""
        return self._core.meta_json("settings", dict) or {}

    @guarded
    def meta_json(self, key: str, kind: type[J]) -> J | None:
        """A campaign value stored as JSON (an object or an array), checked; None when unset."""
        return self._core.meta_json(key, kind)

    @guarded
    def get_meta(self, key: str) -> str | None:
        """A free-form campaign value (None when unset)."""
        return self._core.get_meta(key)

    @guarded
    def set_meta(self, key: str, value: str) -> None:
        """Store a free-form campaign value."""
        with self._core.tx() as conn:
            self._core.put_meta(conn, key, value)

    def close(self) -> None:
        """Close the database and release the lock, leaving only the journal file behind.

        A campaign's clean exit removes its lock file; SQLite removes ``-wal`` and ``-shm`` when
        the last connection that may write closes. A read-only connection (status, report)
        cannot, so it leaves them: closing one checkpoints with a writable connection when no
        campaign holds the journal. Between runs a campaign is one file, as documented.
        """
        core = self._core
        if core.lent is not None:
            give_back, core.lent = core.lent, None
            give_back(core.conn.handover())  # this journal's wrapper of it is closed
            return
        core.conn.close()
        if core.shared is not None:
            return
        if core.lock is not None:
            core.lock.release(remove=True)
            core.lock = None
        elif _FileLock.holder(self.path) is None:
            checkpoint(self.path)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
