"""The campaign journal: one SQLite file recording every contact, attempt, state change and outcome.

Crash-safety rules, in order of importance:

1. The intent to dial is committed *before* the create-call POST (:meth:`Journal.begin_attempt`).
   After a crash, every attempt still in ``intent`` or ``accepted`` shows up in
   :meth:`Journal.in_flight` and must be reconciled; an attempt is never silently re-dialed.
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
   the middle of a run. Only this module knows the journal's files (``-wal``, ``-shm``, lock,
   temporary).

Secrets never enter the journal: it holds contacts, agents, conversation ids and outcomes only.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import json
import os
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Final, ParamSpec, Self, TypeVar, cast

from gcdial.campaign.csvinput import Contact, RowProblem
from gcdial.campaign.journaldb import (
    LOCAL_CAMPAIGN,
    OLD_NAMES,
    OLD_STEPS,
    SCHEMA_VERSION,
    TABLES,
    Fence,
    JournalDatabase,
    create_tables,
    delete_campaign,
    move_to_campaign_tables,
    old_views,
)
from gcdial.campaign.journalfile import (
    _FileLock,
    _roll_back_hot,
    _side_files,
    _temp_path,
    _unreadable,
)
from gcdial.campaign.journalrows import (
    _CHOICES,
    _CONVERTERS,
    _SIEVES,
    IN_FLIGHT,
    Attempt,
    AttemptState,
    CampaignInfo,
    ContactRecord,
    ContactStatus,
    J,
    _attempt,
    _Cells,
    _contact,
    _event,
    _iso,
    _known_zone,
    _meta_value,
    _skipped,
    _utc_now,
    page_key,
    redecided_due,
)
from gcdial.campaign.sqldialect import Connection, Row, connect_sqlite
from gcdial.errors import (
    JournalDataError,
    JournalError,
    JournalFencedError,
    JournalLockedError,
    JournalMismatchError,
    JournalSchemaError,
    ReviewConflictError,
)
from gcdial.monitor.wrapup import Wrapup
from gcdial.private_files import create_private, secure_sqlite

__all__ = [
    "SCHEMA_VERSION",
    "Attempt",
    "AttemptState",
    "CampaignInfo",
    "ContactRecord",
    "ContactStatus",
    "Fence",
    "Journal",
    "JournalDataError",
    "JournalDatabase",
    "JournalError",
    "JournalFencedError",
    "JournalLockedError",
    "JournalMismatchError",
    "JournalSchemaError",
    "page_key",
    "redecided_due",
]

# PRAGMA application_id marks the file as a gcdial journal ("gcdj").
APPLICATION_ID: Final = 0x6763646A
_BATCH: Final = 5000

Clock = Callable[[], datetime]


P = ParamSpec("P")
R = TypeVar("R")


def _guarded(method: Callable[P, R]) -> Callable[P, R]:
    """Turn an SQLite failure inside a journal method into a :class:`JournalError` naming the file
    (a damaged file may be found out at any read, not only when it is opened)."""

    if inspect.isgeneratorfunction(method):

        @functools.wraps(method)
        def gen_wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
            journal = cast("Journal", args[0])
            try:
                yield from cast("Iterator[Any]", method(*args, **kwargs))
            except Exception as exc:
                raise journal._failure(exc) from None

        return cast("Callable[P, R]", gen_wrapper)

    @functools.wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        journal = cast("Journal", args[0])
        try:
            return method(*args, **kwargs)
        except Exception as exc:
            raise journal._failure(exc) from None

    return wrapper


class Journal:
    """The durable record of one campaign: a one-file journal (:meth:`create`, :meth:`open`) or
    a campaign's rows in a shared database (:meth:`create_in`, :meth:`open_in`). Close when
    done."""

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
    ) -> Journal:
        """Start a new journal at ``path`` (which must not exist yet) for the named campaign."""
        path = Path(path)
        lock = _FileLock(path)
        lock.acquire()
        try:
            if path.exists() and not cls._half_made(path):
                raise JournalError(
                    f"A journal already exists at {path}.",
                    hint="Resume it with the same command, or give a new journal path to start "
                    "another campaign.",
                )
            cls._build(
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
            conn = connect_sqlite(cls._connect(path, read_only=False))
            journal = cls(path, conn, lock=lock, clock=clock, read_only=False)
            journal.record_event("campaign.created", detail=name)
        except BaseException:
            lock.release()
            raise
        return journal

    @staticmethod
    def _half_made(path: Path) -> bool:
        """An empty file, or an SQLite file with no journal schema: left by a crash while an
        older gcdial created it non-atomically; nothing was ever dialed from it."""
        if path.stat().st_size == 0:
            return True
        _roll_back_hot(path)
        try:
            conn = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True)
            try:
                version = conn.execute("PRAGMA user_version").fetchone()[0]
                app_id = conn.execute("PRAGMA application_id").fetchone()[0]
                objects = conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()[0]
            finally:
                conn.close()
        except sqlite3.Error:
            return False
        # Only a database with nothing in it: never anybody else's file.
        return version == 0 and app_id in (0, APPLICATION_ID) and objects == 0

    @classmethod
    def _build(cls, path: Path, meta: Mapping[str, str]) -> None:
        """Write a complete, empty journal under a temporary name, then rename it to ``path``.

        Called with the lock held, so no other gcdial is creating or using ``path``.
        """
        for leftover in _side_files(path):
            with contextlib.suppress(OSError):
                leftover.unlink()
        temp = _temp_path(path)
        try:
            create_private(temp)  # the journal holds customers' numbers: 0600 from the start
            conn = sqlite3.connect(temp, isolation_level=None)
            try:
                conn.execute("BEGIN")
                create_tables(connect_sqlite(conn))
                conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                conn.executemany(
                    "INSERT INTO campaign_meta (campaign_id, key, value) VALUES (?, ?, ?)",
                    [(LOCAL_CAMPAIGN, key, value) for key, value in meta.items()],
                )
                conn.execute("COMMIT")
                # WAL is a property of the file: set here, the first open of the journal has no
                # mode to switch, so no rollback journal (which a kill could leave hot) is made.
                conn.execute("PRAGMA journal_mode = WAL")
            finally:
                conn.close()
            with open(temp, "rb+") as handle:
                os.fsync(handle.fileno())
            os.replace(temp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                temp.unlink()
            raise
        with contextlib.suppress(OSError):
            fd = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def discard(self) -> None:
        """Close and delete this journal and its side files (a new campaign whose list turned out
        unreadable before anything was dialed)."""
        if self.read_only:
            raise JournalError(f"The journal {self.where} was opened read-only.")
        if self._shared is not None:
            with self._tx() as conn:
                delete_campaign(conn, self.campaign_id)
            self._conn.close()
            return
        self._conn.close()
        for side in [self.path, *_side_files(self.path)]:
            with contextlib.suppress(OSError):
                side.unlink()
        if self._lock is not None:
            with contextlib.suppress(OSError):
                self._lock.path.unlink()
            self._lock.release()
            self._lock = None

    @staticmethod
    def exists(path: str | Path) -> bool:
        """Whether a journal (complete, or half-made by an older gcdial) is at ``path``."""
        path = Path(path)
        return path.is_file() and not Journal._half_made(path)

    @staticmethod
    def holder(path: str | Path) -> int | None:
        """The pid of the gcdial process running the campaign of ``path`` (0 if unknown), or None
        when no process holds it."""
        return _FileLock.holder(Path(path))

    # A campaign's rows in a shared database (the service's store)

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
    ) -> Journal:
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
        journal = cls._in(db, campaign_id, fence=fence, clock=clock, read_only=False)
        try:
            with journal._tx() as conn:
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
                journal._event("campaign.created", detail=name)
        except Exception as exc:
            journal._conn.close()
            raise journal._failure(exc) from None
        return journal

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
    ) -> Journal:
        """Open the journal of campaign ``campaign_id`` in ``db``. With ``fence``, every
        :meth:`begin_attempt` first checks that this replica still holds the campaign's lease."""
        journal = cls._in(db, campaign_id, fence=fence, clock=clock, read_only=read_only)
        try:
            if not journal._campaign_present():
                raise JournalError(
                    f"No campaign {campaign_id} in {db.label}.",
                    hint="Check the campaign id, or create the campaign first.",
                )
            journal._check_identity(expect_name, expect_fingerprint)
        except Exception as exc:
            journal._conn.close()
            raise journal._failure(exc) from None
        return journal

    @classmethod
    def exists_in(cls, db: JournalDatabase, campaign_id: str) -> bool:
        """Whether ``db`` holds a journal of campaign ``campaign_id``."""
        journal = cls._in(db, campaign_id, fence=None, clock=_utc_now, read_only=True)
        try:
            return journal._campaign_present()
        except Exception as exc:
            raise journal._failure(exc) from None
        finally:
            journal._conn.close()

    @classmethod
    def drop_in(cls, db: JournalDatabase, campaign_id: str) -> None:
        """Delete every row of campaign ``campaign_id`` from ``db`` (in one transaction)."""
        journal = cls._in(db, campaign_id, fence=None, clock=_utc_now, read_only=False)
        try:
            with journal._tx() as conn:
                delete_campaign(conn, campaign_id)
        except Exception as exc:
            raise journal._failure(exc) from None
        finally:
            journal._conn.close()

    @classmethod
    def _in(
        cls,
        db: JournalDatabase,
        campaign_id: str,
        *,
        fence: Fence | None,
        clock: Clock,
        read_only: bool,
    ) -> Journal:
        if not campaign_id:
            raise ValueError("a campaign id is needed")
        try:
            conn = db.connect()
        except Exception as exc:
            raise db.failed(exc) from None
        try:
            db.check_version(db.version(conn))
        except Exception as exc:
            conn.close()
            if isinstance(exc, conn.errors):
                raise db.failed(exc) from None
            raise
        return cls(
            Path(db.label),
            conn,
            lock=None,
            clock=clock,
            read_only=read_only,
            campaign_id=campaign_id,
            shared=db,
            fence=fence,
        )

    def _campaign_present(self) -> bool:
        row = self._conn.execute(
            "SELECT 1 FROM campaign_meta WHERE campaign_id = ? AND key = 'name'",
            (self.campaign_id,),
        ).fetchone()
        return row is not None

    @classmethod
    def open(
        cls,
        path: str | Path,
        *,
        expect_name: str | None = None,
        expect_fingerprint: str | None = None,
        read_only: bool = False,
        clock: Clock = _utc_now,
    ) -> Journal:
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
            conn = connect_sqlite(cls._connect(path, read_only=read_only))
            journal = cls(path, conn, lock=lock, clock=clock, read_only=read_only)
            try:
                journal._check_schema()
                if not read_only:
                    journal._migrate()
                journal._check_identity(expect_name, expect_fingerprint)
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
        return journal

    @staticmethod
    def _connect(path: Path, *, read_only: bool) -> sqlite3.Connection:
        secure_sqlite(path)  # one made by an older gcdial, or copied, may be readable by others
        try:
            if read_only:
                uri = path.resolve().as_uri() + "?mode=ro"
                conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
            else:
                # One connection, used by one thread at a time: the runner moves all journal work
                # to a single worker thread so that fsyncs never stall the event loop.
                conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA busy_timeout = 5000")
            if not read_only:
                conn.execute("PRAGMA journal_mode = WAL")
                conn.execute("PRAGMA synchronous = FULL")
            conn.execute("PRAGMA foreign_keys = ON")
        except sqlite3.DatabaseError as exc:
            raise JournalSchemaError(
                f"{path} is not a gcdial journal ({exc}).",
                hint="Give the path of the journal file the campaign created (a .db file).",
            ) from None
        return conn

    def _check_schema(self) -> None:
        try:
            app_id = self._conn.raw.execute("PRAGMA application_id").fetchone()[0]
            version = self._conn.raw.execute("PRAGMA user_version").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            raise JournalSchemaError(
                f"{self.path} is not a gcdial journal ({exc}).",
                hint="Give the path of the journal file the campaign created.",
            ) from None
        if app_id != APPLICATION_ID:
            raise JournalSchemaError(
                f"{self.path} is an SQLite file but not a gcdial journal.",
                hint="Give the path of the journal file the campaign created.",
            )
        if version > SCHEMA_VERSION:
            raise JournalSchemaError(
                f"{self.path} was written by a newer gcdial (journal schema {version}; this "
                f"gcdial reads up to {SCHEMA_VERSION}).",
                hint="Upgrade gcdial (pip install -U gcdial) to resume or report this campaign.",
            )
        if version < 1:
            raise JournalSchemaError(
                f"{self.path} has no journal schema (version {version}); it was never completed.",
                hint="Start the campaign again with `gcdial campaign run` (it finishes a journal "
                "that was never completed), or give a new journal path.",
            )
        present = self._conn.tables()
        if version < SCHEMA_VERSION:
            # dnc_numbers came with schema 4.
            wanted = [OLD_NAMES[t] for t in TABLES if t != "campaign_dnc" or version >= 4]
        else:
            wanted = list(TABLES)
        missing = [table for table in wanted if table not in present]
        if missing:
            raise JournalSchemaError(
                f"The journal {self.path} is damaged: table {', '.join(missing)} is missing.",
                hint="Restore the journal from a backup, or start the campaign again with a new "
                "journal path (contacts dialed in it would be dialed again).",
            )
        self._version = int(version)
        if self._version < SCHEMA_VERSION and self.read_only:
            old_views(self._conn)  # read as it is, through the new tables' names

    def _migrate(self) -> None:
        """Bring an older journal to :data:`SCHEMA_VERSION` in one transaction: a step that
        fails (a damaged journal) leaves the file as it was, at its own version, for the error
        (naming the file) to be acted on; never half-way between two schemas."""
        if self._version >= SCHEMA_VERSION:
            return
        try:
            with self._tx() as conn:
                for version in range(self._version, SCHEMA_VERSION - 1):
                    for statement in OLD_STEPS[version]:
                        conn.execute(statement)
                move_to_campaign_tables(conn)
                for version in range(self._version, SCHEMA_VERSION):
                    self._event("journal.migrated", detail=f"schema {version + 1}")
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        except sqlite3.Error as exc:
            raise JournalSchemaError(
                f"The journal {self.path} (schema {self._version}) cannot be brought to schema "
                f"{SCHEMA_VERSION} ({exc}): it is damaged. It was left as it was.",
                hint="Restore it from a backup and resume again; `gcdial campaign status` and "
                "`report` still read it as it is.",
            ) from None
        self._version = SCHEMA_VERSION

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

    def close(self) -> None:
        """Close the database and release the lock, leaving only the journal file behind.

        A campaign's clean exit removes its lock file; SQLite removes ``-wal`` and ``-shm`` when
        the last connection that may write closes. A read-only connection (status, report)
        cannot, so it leaves them: closing one checkpoints with a writable connection when no
        campaign holds the journal. Between runs a campaign is one file, as documented.
        """
        self._conn.close()
        if self._shared is not None:
            return
        if self._lock is not None:
            self._lock.release(remove=True)
            self._lock = None
        elif _FileLock.holder(self.path) is None:
            self._checkpoint()

    def _checkpoint(self) -> None:
        """Fold the write-ahead log into the journal; SQLite deletes ``-wal`` and ``-shm`` when
        this connection closes if it is the last one (its own locks decide: a reader or a
        campaign that opened it meanwhile keeps them), so no lock of ours is needed."""
        if not any(self.path.with_name(self.path.name + s).exists() for s in ("-wal", "-shm")):
            return
        with contextlib.suppress(sqlite3.Error, OSError):
            conn = sqlite3.connect(self.path, isolation_level=None)
            try:
                conn.execute("PRAGMA busy_timeout = 1000")
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            finally:
                conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

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

    # Campaign meta

    @_guarded
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

    @_guarded
    def settings(self) -> dict[str, Any]:
        """The settings the campaign was started with (rules, pacing), as stored at creation."""
        return self.meta_json("settings", dict) or {}

    @_guarded
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
        for row in self._conn.execute(
            "SELECT key, value FROM campaign_meta WHERE campaign_id = ?", cid
        ):
            _meta_value(self.where, row)
        sieve = self._conn.dialect == "sqlite"
        for table, convert in _CONVERTERS.items():
            present = self._conn.columns(table)
            if not present:
                continue
            query = f"SELECT * FROM {table} WHERE campaign_id = ?"  # noqa: S608 - own names
            if sieve:
                # PostgreSQL's columns hold only their type: every row goes through the boundary.
                tests = [test for column, test in _SIEVES[table] if column in present]
                query += " AND (" + " OR ".join(f"({t})" for t in tests) + ")"
            for row in self._conn.execute(query, cid):
                convert(self.where, row)
        zones = self._conn.execute(
            "SELECT tz, MIN(id) FROM campaign_contacts WHERE campaign_id = ? AND tz IS NOT NULL "
            "AND tz != '' GROUP BY tz",
            cid,
        ).fetchall()
        for zone, contact_id in zones:
            if not _known_zone(zone):
                self.contact(contact_id)

    @_guarded
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

    @_guarded
    def get_meta(self, key: str) -> str | None:
        """A free-form campaign value (None when unset)."""
        row = self._conn.execute(
            "SELECT value FROM campaign_meta WHERE campaign_id = ? AND key = ?",
            (self.campaign_id, key),
        ).fetchone()
        return None if row is None else str(row[0])

    @_guarded
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

    # Loading contacts

    @property
    @_guarded
    def contacts_loaded(self) -> bool:
        """Whether the whole contact list was loaded (a crash mid-load leaves this False)."""
        return self.get_meta("contacts_loaded") == "1"

    @_guarded
    def add_contacts(self, contacts: Iterable[Contact]) -> int:
        """Journal contacts in batches (each its own transaction); rows already present are kept.

        Returns how many were new, so reloading after a crash mid-load is safe and cheap.
        """
        added = 0
        batch: list[tuple[Any, ...]] = []
        for contact in contacts:
            batch.append(
                (
                    contact.line,
                    contact.phone_e164,
                    contact.name,
                    contact.agent,
                    contact.external_id,
                    contact.tz,
                    json.dumps(dict(contact.attributes), ensure_ascii=False),
                )
            )
            if len(batch) >= _BATCH:
                added += self._insert_contacts(batch)
                batch = []
        if batch:
            added += self._insert_contacts(batch)
        return added

    def _insert_contacts(self, batch: list[tuple[Any, ...]]) -> int:
        now = self._now()
        count = "SELECT COUNT(*) FROM campaign_contacts WHERE campaign_id = ?"
        with self._tx() as conn:
            before = int(conn.execute(count, (self.campaign_id,)).fetchone()[0])
            conn.executemany(
                "INSERT INTO campaign_contacts (campaign_id, line, phone, name, agent, "
                "external_id, tz, attributes, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT DO NOTHING",
                [(self.campaign_id, *row, now) for row in batch],
            )
            return int(conn.execute(count, (self.campaign_id,)).fetchone()[0]) - before

    @_guarded
    def add_skipped_rows(self, problems: Iterable[RowProblem]) -> None:
        """Record CSV rows refused by validation, so the report can list them."""
        rows = [(self.campaign_id, p.line, p.column, p.kind, p.reason, p.fix) for p in problems]
        with self._tx() as conn:
            conn.executemany(
                "INSERT INTO campaign_skipped_rows (campaign_id, line, col, kind, reason, fix) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                rows,
            )

    @_guarded
    def finish_loading(
        self, *, rows: int, valid: int, refused: int, attribute_columns: Iterable[str] = ()
    ) -> None:
        """Mark the contact list as fully loaded, with the validation counts and the list's own
        columns (those passed as call attributes, in file order)."""
        with self._tx() as conn:
            for key, value in {
                "contacts_loaded": "1",
                "csv_rows": str(rows),
                "csv_valid": str(valid),
                "csv_refused": str(refused),
                "attribute_columns": json.dumps(list(attribute_columns), ensure_ascii=False),
            }.items():
                self._put_meta(conn, key, value)
            self._event("contacts.loaded", detail=f"{valid} contacts, {refused} rows refused")

    # Attempts: the crash-safe state machine

    @_guarded
    def begin_attempt(
        self,
        contact_id: int,
        *,
        agent_id: str,
        agent: str | None = None,
        tag: str | None = None,
        sent_after: datetime | None = None,
        match_after: datetime | None = None,
    ) -> int:
        """Commit the intent to dial ``contact_id`` through ``agent_id``; return the attempt id.

        ``tag`` is the attempt id the call carries in its attributes (the dialing core's), kept
        so that a resume can look the call up by it. ``sent_after`` and ``match_after`` are the
        server-time lower bounds of the call (:class:`gcdial.resolve.Attempt`), taken before this
        call and so never later than the POST: a later resolution keeps an earlier call of the
        agent to the same number from being taken for this attempt.

        Call this *before* sending the create-call request. Refuses when the contact already has an
        attempt in flight or of unknown outcome, or is finished: that is what keeps a customer
        from being rung twice.
        """
        with self._tx() as conn:
            self._check_fence(conn)
            row = conn.execute(
                "SELECT status, attempts FROM campaign_contacts WHERE id = ? AND campaign_id = ?",
                (contact_id, self.campaign_id),
            ).fetchone()
            if row is None:
                raise KeyError(f"no contact {contact_id} in the journal")
            if row["status"] != ContactStatus.PENDING:
                raise JournalError(
                    f"Contact {contact_id} is {row['status']}, not pending: not dialing it again."
                )
            unresolved = conn.execute(
                "SELECT id, state FROM campaign_attempts WHERE contact_id = ? "
                "AND state IN (?, ?, ?)",
                (contact_id, *IN_FLIGHT, AttemptState.UNKNOWN),
            ).fetchone()
            if unresolved is not None:
                raise JournalError(
                    f"Contact {contact_id} already has attempt {unresolved['id']} in state "
                    f"{unresolved['state']}: not dialing it again."
                )
            now = self._now()
            cursor = conn.execute(
                "INSERT INTO campaign_attempts (campaign_id, contact_id, number, agent_id, agent, "
                "state, created_at, tag, sent_after, match_after) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                (
                    self.campaign_id,
                    contact_id,
                    row["attempts"] + 1,
                    agent_id,
                    agent,
                    AttemptState.INTENT,
                    now,
                    tag,
                    None if sent_after is None else _iso(sent_after),
                    None if match_after is None else _iso(match_after),
                ),
            )
            attempt_id = int(cursor.fetchone()[0])
            conn.execute(
                "UPDATE campaign_contacts SET status = ?, attempts = attempts + 1, updated_at = ? "
                "WHERE id = ?",
                (ContactStatus.ACTIVE, now, contact_id),
            )
            self._event(
                "attempt.intent", contact_id=contact_id, attempt_id=attempt_id, detail=agent_id
            )
        return attempt_id

    def _check_fence(self, conn: Connection) -> None:
        """In a write transaction: refuse (writing nothing) unless this replica still holds the
        campaign's lease at the epoch it was opened with. PostgreSQL locks the lease row until
        the commit, so a takeover's update waits for the attempt to be journaled; SQLite's write
        transaction already keeps every other writer out."""
        fence = self._fence
        if fence is None:
            return
        held = conn.execute(
            "SELECT 1 FROM leases WHERE name = ? AND owner = ? AND epoch = ? AND expires_at > ?"  # noqa: S608 - a fixed clause
            + conn.for_share,
            (fence.lease, fence.owner, fence.epoch, fence.now()),
        ).fetchone()
        if held is None:
            raise JournalFencedError(
                f"This replica no longer holds campaign {self.campaign_id} (lease {fence.lease} "
                f"at epoch {fence.epoch}): nothing was dialed or written.",
                hint="Another replica took the campaign over; it carries on from the journal.",
            )

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

    @_guarded
    def mark_accepted(self, attempt_id: int, conversation_id: str) -> None:
        """Genesys accepted the call: store its conversation id (also to settle an unknown)."""
        with self._tx() as conn:
            row = self._attempt_row(conn, attempt_id)
            self._require(row, AttemptState.INTENT, AttemptState.UNKNOWN)
            now = self._now()
            conn.execute(
                "UPDATE campaign_attempts SET state = ?, conversation_id = ?, accepted_at = ? "
                "WHERE id = ?",
                (AttemptState.ACCEPTED, conversation_id, now, attempt_id),
            )
            conn.execute(
                "UPDATE campaign_contacts SET status = ?, updated_at = ? WHERE id = ?",
                (ContactStatus.ACTIVE, now, row["contact_id"]),
            )
            self._event(
                "attempt.accepted",
                contact_id=row["contact_id"],
                attempt_id=attempt_id,
                detail=conversation_id,
            )

    @_guarded
    def mark_unknown(self, attempt_id: int, detail: str) -> None:
        """The call may or may not have been placed: park the contact for a human, never re-dial."""
        with self._tx() as conn:
            row = self._attempt_row(conn, attempt_id)
            self._require(row, *IN_FLIGHT)
            now = self._now()
            conn.execute(
                "UPDATE campaign_attempts SET state = ?, detail = ? WHERE id = ?",
                (AttemptState.UNKNOWN, detail, attempt_id),
            )
            conn.execute(
                "UPDATE campaign_contacts SET status = ?, outcome = 'unknown', detail = ?, "
                "updated_at = ? WHERE id = ?",
                (ContactStatus.UNKNOWN, detail, now, row["contact_id"]),
            )
            self._event(
                "attempt.unknown",
                contact_id=row["contact_id"],
                attempt_id=attempt_id,
                detail=detail,
            )

    @_guarded
    def mark_not_sent(
        self,
        attempt_id: int,
        reason: str,
        *,
        error_code: str | None = None,
        context_id: str | None = None,
        retry_at: datetime | None = None,
        outcome: str = "not_sent",
    ) -> None:
        """The call was provably not placed (the API refused it, or it never left).

        With ``retry_at`` the contact waits for another attempt; otherwise it is done with
        ``outcome``. A not-sent attempt does not count towards the contact's attempts.
        """
        with self._tx() as conn:
            row = self._attempt_row(conn, attempt_id)
            self._require(row, AttemptState.INTENT)
            now = self._now()
            conn.execute(
                "UPDATE campaign_attempts SET state = ?, ended_at = ?, outcome = ?, "
                "error_code = ?, "
                "context_id = ?, detail = ? WHERE id = ?",
                (AttemptState.NOT_SENT, now, outcome, error_code, context_id, reason, attempt_id),
            )
            self._settle_contact(conn, row["contact_id"], outcome, reason, retry_at, now)
            conn.execute(
                "UPDATE campaign_contacts SET attempts = attempts - 1 WHERE id = ?",
                (row["contact_id"],),
            )
            self._event(
                "attempt.not_sent",
                contact_id=row["contact_id"],
                attempt_id=attempt_id,
                detail=f"{error_code or ''} {reason}".strip(),
            )

    @_guarded
    def record_outcome(
        self,
        attempt_id: int,
        outcome: str,
        *,
        ended_at: datetime | None = None,
        error_code: str | None = None,
        detail: str | None = None,
        retry_at: datetime | None = None,
        talk_s: float | None = None,
        wrapup: Wrapup | None = None,
        wrapup_action: str | None = None,
        dnc: bool = False,
    ) -> None:
        """The call ended with ``outcome`` (``talk_s`` seconds of conversation, when known); the
        contact is done, or waits until ``retry_at``. Its wrap-up and what the rules made of it
        are kept with the attempt; ``dnc`` puts the contact's number on the do-not-call list in
        the same transaction (a resume never dials it again)."""
        with self._tx() as conn:
            row = self._attempt_row(conn, attempt_id)
            self._require(row, AttemptState.ACCEPTED, AttemptState.UNKNOWN)
            now = self._now()
            conn.execute(
                "UPDATE campaign_attempts SET state = ?, ended_at = ?, outcome = ?, "
                "error_code = ?, "
                "detail = COALESCE(?, detail), talk_s = ?, wrapup_code = ?, wrapup_name = ?, "
                "wrapup_notes = ?, wrapup_at = ?, wrapup_action = ? WHERE id = ?",
                (
                    AttemptState.ENDED,
                    _iso(ended_at) if ended_at else now,
                    outcome,
                    error_code,
                    detail,
                    talk_s,
                    wrapup.code if wrapup else None,
                    wrapup.name if wrapup else None,
                    wrapup.notes if wrapup else None,
                    _iso(wrapup.at) if wrapup and wrapup.at else None,
                    wrapup_action,
                    attempt_id,
                ),
            )
            if dnc:
                phone = conn.execute(
                    "SELECT phone FROM campaign_contacts WHERE id = ?", (row["contact_id"],)
                ).fetchone()[0]
                conn.execute(
                    "INSERT INTO campaign_dnc (campaign_id, phone, added_at, attempt_id) "
                    "VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                    (self.campaign_id, phone, now, attempt_id),
                )
            self._settle_contact(conn, row["contact_id"], outcome, detail, retry_at, now)
            self._event(
                "attempt.ended", contact_id=row["contact_id"], attempt_id=attempt_id, detail=outcome
            )

    def _settle_contact(
        self,
        conn: Connection,
        contact_id: int,
        outcome: str,
        detail: str | None,
        retry_at: datetime | None,
        now: str,
    ) -> None:
        if retry_at is not None:
            conn.execute(
                "UPDATE campaign_contacts SET status = ?, outcome = ?, detail = ?, next_at = ?, "
                "updated_at = ? WHERE id = ?",
                (ContactStatus.PENDING, outcome, detail, _iso(retry_at), now, contact_id),
            )
        else:
            # A call that was placed but whose end nobody saw is for a human to check, like an
            # attempt whose POST may or may not have acted.
            status = ContactStatus.UNKNOWN if outcome == "unknown" else ContactStatus.DONE
            conn.execute(
                "UPDATE campaign_contacts SET status = ?, outcome = ?, detail = ?, next_at = '', "
                "updated_at = ? WHERE id = ?",
                (status, outcome, detail, now, contact_id),
            )

    @_guarded
    def defer(self, contact_id: int, until: datetime, reason: str) -> None:
        """Keep a pending contact waiting until ``until`` (calling window, retry delay)."""
        self.defer_many([(contact_id, until, reason)])

    @_guarded
    def skip(self, contact_id: int, outcome: str, reason: str) -> None:
        """Never dial this pending contact (do-not-call, no legal hour, campaign over...)."""
        self.skip_many([(contact_id, outcome, reason)])

    @_guarded
    def redecide_deferrals(self) -> int:
        """Make the pending contacts never dialed due now, for this run's rules to decide again.

        Their only wait is the one the rules gave them (the calling window, the end time): a run
        with other rules (``--window 00:00-24:00`` after a night run with the default) must not
        keep the last run's wait. A retry delay (a contact with attempts) is kept as it was.
        The same reading is :func:`redecided_due`, for the dry run's plan.
        """
        with self._tx() as conn:
            changed = conn.execute(
                "UPDATE campaign_contacts SET next_at = '' WHERE campaign_id = ? "
                "AND status = 'pending' AND attempts = 0 AND next_at > ''",
                (self.campaign_id,),
            ).rowcount
        return int(changed)

    @_guarded
    def defer_many(self, items: Iterable[tuple[int, datetime, str]]) -> None:
        """Defer several pending contacts ``(contact_id, until, reason)`` in one transaction."""
        rows = [(_iso(until), reason, cid) for cid, until, reason in items]
        if not rows:
            return
        now = self._now()
        with self._tx() as conn:
            conn.executemany(
                "UPDATE campaign_contacts SET next_at = ?, detail = ?, updated_at = ? "
                "WHERE id = ? AND campaign_id = ? AND status = 'pending'",
                [(at, reason, now, cid, self.campaign_id) for at, reason, cid in rows],
            )
            conn.executemany(
                "INSERT INTO campaign_events (campaign_id, at, kind, contact_id, detail) "
                "VALUES (?, ?, ?, ?, ?)",
                [(self.campaign_id, now, "contact.deferred", cid, r) for _, r, cid in rows],
            )

    @_guarded
    def skip_many(self, items: Iterable[tuple[int, str, str]]) -> None:
        """Skip several pending contacts ``(contact_id, outcome, reason)`` in one transaction."""
        rows = list(items)
        if not rows:
            return
        now = self._now()
        with self._tx() as conn:
            conn.executemany(
                "UPDATE campaign_contacts SET status = 'skipped', outcome = ?, detail = ?, "
                "next_at = '', "
                "updated_at = ? WHERE id = ? AND campaign_id = ? AND status = 'pending'",
                [(outcome, reason, now, cid, self.campaign_id) for cid, outcome, reason in rows],
            )
            conn.executemany(
                "INSERT INTO campaign_events (campaign_id, at, kind, contact_id, detail) "
                "VALUES (?, ?, ?, ?, ?)",
                [
                    (self.campaign_id, now, "contact.skipped", cid, f"{o}: {r}")
                    for cid, o, r in rows
                ],
            )

    @_guarded
    def finish_pending(self, contact_id: int, outcome: str, reason: str) -> None:
        """Finish a pending contact with ``outcome`` without another call (its retry is no longer
        allowed)."""
        with self._tx() as conn:
            conn.execute(
                "UPDATE campaign_contacts SET status = 'done', outcome = ?, detail = ?, "
                "next_at = '', "
                "updated_at = ? WHERE id = ? AND campaign_id = ? AND status = 'pending'",
                (outcome, reason, self._now(), contact_id, self.campaign_id),
            )
            self._event("contact.finished", contact_id=contact_id, detail=f"{outcome}: {reason}")

    @_guarded
    def contact_at_line(self, line: int) -> ContactRecord | None:
        """The contact of CSV line ``line`` (None when that line holds no contact)."""
        row = self._conn.execute(
            "SELECT * FROM campaign_contacts WHERE campaign_id = ? AND line = ?",
            (self.campaign_id, line),
        ).fetchone()
        return None if row is None else _contact(self.where, row)

    @_guarded
    def record_verdict(
        self, contact_id: int, *, placed: bool, note: str, by: str | None = None
    ) -> None:
        """A person's verdict on a contact whose call may or may not have been placed.

        ``placed``: the contact is done (outcome ``placed``). Not placed: its open attempt becomes
        ``not_sent`` and the contact is pending again, without using up an attempt. A call that
        Genesys accepted (it has a conversation id) was placed: "not placed" is refused for it.
        ``by`` names who decided (kept in the event log). The check and the change are one
        transaction, so of two verdicts at the same moment exactly one applies.
        """
        with self._tx() as conn:
            contact = conn.execute(
                "SELECT status, line FROM campaign_contacts WHERE id = ? AND campaign_id = ?",
                (contact_id, self.campaign_id),
            ).fetchone()
            if contact is None:
                raise KeyError(f"no contact {contact_id} in the journal")
            # People know a contact by its line in their list, never by the journal's row id.
            where = f"Line {contact['line']} of the list"
            if contact["status"] != ContactStatus.UNKNOWN:
                raise ReviewConflictError(
                    f"{where} is {contact['status']}, not waiting for review.",
                    hint="`gcdial campaign review JOURNAL` lists the contacts that need one.",
                )
            row = conn.execute(
                "SELECT * FROM campaign_attempts WHERE contact_id = ? ORDER BY id DESC LIMIT 1",
                (contact_id,),
            ).fetchone()
            now = self._now()
            if placed:
                if row is not None and row["state"] == AttemptState.UNKNOWN:
                    conn.execute(
                        "UPDATE campaign_attempts SET state = ?, outcome = 'placed', ended_at = ?, "
                        "detail = ? WHERE id = ?",
                        (AttemptState.ENDED, now, note, row["id"]),
                    )
                conn.execute(
                    "UPDATE campaign_contacts SET status = 'done', outcome = 'placed', detail = ?, "
                    "next_at = '', updated_at = ? WHERE id = ?",
                    (note, now, contact_id),
                )
            else:
                if row is None or row["state"] != AttemptState.UNKNOWN or row["conversation_id"]:
                    raise ReviewConflictError(
                        f"{where}: its call was accepted by Genesys Cloud (conversation "
                        f"{row['conversation_id'] if row is not None else '?'}): it was placed.",
                        hint="Record it as placed; only a call whose create request got no clear "
                        "answer can be found not placed.",
                    )
                conn.execute(
                    "UPDATE campaign_attempts SET state = ?, outcome = 'not_sent', ended_at = ?, "
                    "detail = ? WHERE id = ?",
                    (AttemptState.NOT_SENT, now, note, row["id"]),
                )
                conn.execute(
                    "UPDATE campaign_contacts SET status = 'pending', outcome = NULL, detail = ?, "
                    "next_at = '', attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END, "
                    "updated_at = ? WHERE id = ?",
                    (note, now, contact_id),
                )
            self._event(
                "contact.verdict",
                contact_id=contact_id,
                attempt_id=row["id"] if row is not None else None,
                detail=f"{'placed' if placed else 'not placed'}"
                + (f" by {by}" if by else "")
                + f": {note}",
            )

    @_guarded
    def last_verdict(self, contact_id: int) -> tuple[datetime, str] | None:
        """When the last verdict on a contact was recorded, and what it said (who, which, why)."""
        row = self._conn.execute(
            "SELECT id, at, detail FROM campaign_events WHERE campaign_id = ? "
            "AND kind = 'contact.verdict' AND contact_id = ? ORDER BY id DESC LIMIT 1",
            (self.campaign_id, contact_id),
        ).fetchone()
        if row is None:
            return None
        cells = _Cells(self.where, "campaign_events", row)
        return cells.time("at"), cells.opt_text("detail") or ""

    @_guarded
    def reassign(self, agent: str, to: str | None) -> int:
        """Give the pending contacts pinned to ``agent`` (case-insensitive) to ``to``, or to any
        agent (None). Returns how many moved."""
        with self._tx() as conn:
            cursor = conn.execute(
                "UPDATE campaign_contacts SET agent = ?, updated_at = ? "
                "WHERE campaign_id = ? AND status = 'pending' "
                "AND lower(trim(agent)) = lower(trim(?))",
                (to, self._now(), self.campaign_id, agent),
            )
            moved = cursor.rowcount
            self._event("contacts.reassigned", detail=f"{moved} from {agent} to {to or 'any'}")
        return moved

    @_guarded
    def pinned_pending(self) -> dict[str, int]:
        """Pending contacts that name their agent, counted by agent."""
        rows = self._conn.execute(
            "SELECT MIN(agent), COUNT(*) FROM campaign_contacts WHERE campaign_id = ? "
            "AND status = 'pending' AND agent IS NOT NULL AND agent != '' "
            "GROUP BY lower(trim(agent)) ORDER BY 1",
            (self.campaign_id,),
        ).fetchall()
        return {str(agent): int(n) for agent, n in rows}

    @_guarded
    def reopen(self, contact_id: int, reason: str) -> None:
        """Put a contact finished as ``not_sent`` (never placed) back to pending."""
        with self._tx() as conn:
            conn.execute(
                "UPDATE campaign_contacts SET status = 'pending', next_at = '', detail = ?, "
                "updated_at = ? "
                "WHERE id = ? AND campaign_id = ? AND status = 'done' AND outcome = 'not_sent'",
                (reason, self._now(), contact_id, self.campaign_id),
            )
            self._event("contact.reopened", contact_id=contact_id, detail=reason)

    # Holding: contacts a running campaign already has in memory (or set aside for this run) are
    # kept in a temporary table, so that the due-contact queries skip them without the runner
    # holding the whole list in memory. The table lives as long as the connection.

    def _held_table(self) -> None:
        if not self._held_ready:
            self._conn.make_held()
            self._held_ready = True

    @_guarded
    def hold(self, contact_ids: Iterable[int]) -> None:
        """Leave these contacts out of :meth:`due_now` and :meth:`next_due_time` until released."""
        self._held_table()
        self._conn.executemany(
            "INSERT INTO temp.held (id) VALUES (?) ON CONFLICT DO NOTHING",
            [(i,) for i in contact_ids],
        )

    @_guarded
    def release(self, contact_ids: Iterable[int]) -> None:
        """Let held contacts be found by :meth:`due_now` again."""
        self._held_table()
        self._conn.executemany("DELETE FROM temp.held WHERE id = ?", [(i,) for i in contact_ids])

    @_guarded
    def due_now(self, now: datetime, *, limit: int) -> list[ContactRecord]:
        """Pending contacts due at ``now`` and not held: those due at a set time first (soonest
        first), then those never tried, in list order."""
        self._held_table()
        timed = self._conn.execute(
            "SELECT * FROM campaign_contacts WHERE campaign_id = ? AND status = 'pending' "
            "AND next_at > '' AND next_at <= ? "
            "AND id NOT IN (SELECT id FROM temp.held) ORDER BY next_at, id LIMIT ?",
            (self.campaign_id, _iso(now), limit),
        ).fetchall()
        rows = list(timed)
        if len(rows) < limit:
            rows += self._conn.execute(
                "SELECT * FROM campaign_contacts WHERE campaign_id = ? AND status = 'pending' "
                "AND next_at = '' AND id NOT IN (SELECT id FROM temp.held) ORDER BY id LIMIT ?",
                (self.campaign_id, limit - len(rows)),
            ).fetchall()
        return [_contact(self.where, r) for r in rows]

    @_guarded
    def next_due_time(self) -> datetime | None:
        """When the earliest pending contact that is not held is due (``datetime.min`` in UTC
        for one never tried); None when there is none."""
        self._held_table()
        fresh = self._conn.execute(
            "SELECT 1 FROM campaign_contacts WHERE campaign_id = ? AND status = 'pending' "
            "AND next_at = '' AND id NOT IN (SELECT id FROM temp.held) LIMIT 1",
            (self.campaign_id,),
        ).fetchone()
        if fresh is not None:
            return datetime.min.replace(tzinfo=UTC)
        row = self._conn.execute(
            "SELECT id, line, next_at FROM campaign_contacts WHERE campaign_id = ? "
            "AND status = 'pending' AND next_at > '' "
            "AND id NOT IN (SELECT id FROM temp.held) ORDER BY next_at, id LIMIT 1",
            (self.campaign_id,),
        ).fetchone()
        if row is None:
            return None
        return _Cells(self.where, "campaign_contacts", row).opt_time("next_at")

    @_guarded
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

    # Reading

    @_guarded
    def unresolved(self) -> list[Attempt]:
        """Attempts of unknown outcome still waiting for a verdict (their contact is
        ``unknown``), oldest first: what a resume tries to resolve again."""
        rows = self._conn.execute(
            "SELECT a.* FROM campaign_attempts a JOIN campaign_contacts c ON c.id = a.contact_id "
            "WHERE a.campaign_id = ? AND a.state = ? AND c.status = ? ORDER BY a.id",
            (self.campaign_id, AttemptState.UNKNOWN, ContactStatus.UNKNOWN),
        ).fetchall()
        return [_attempt(self.where, r) for r in rows]

    @_guarded
    def wrapup_counts(self) -> tuple[dict[str, int], int]:
        """Calls by wrap-up (name, else code id), and how many never got the one waited for."""
        if self._version < 4:
            return {}, 0
        rows = self._conn.execute(
            "SELECT COALESCE(wrapup_name, wrapup_code), COUNT(*) FROM campaign_attempts "
            "WHERE campaign_id = ? AND (wrapup_code IS NOT NULL OR wrapup_name IS NOT NULL) "
            "GROUP BY 1",
            (self.campaign_id,),
        ).fetchall()
        (missing,) = self._conn.execute(
            "SELECT COUNT(*) FROM campaign_attempts WHERE campaign_id = ? "
            "AND wrapup_action = 'missing'",
            (self.campaign_id,),
        ).fetchone()
        return {str(key): int(n) for key, n in rows}, int(missing)

    @_guarded
    def missing_wrapups(self) -> list[Attempt]:
        """Ended calls whose wrap-up was waited for and never came, oldest first (for review)."""
        if self._version < 4:
            return []
        rows = self._conn.execute(
            "SELECT * FROM campaign_attempts WHERE campaign_id = ? AND wrapup_action = 'missing' "
            "ORDER BY id",
            (self.campaign_id,),
        ).fetchall()
        return [_attempt(self.where, r) for r in rows]

    @_guarded
    def dnc_numbers(self) -> set[str]:
        """The numbers wrap-ups put on the do-not-call list (none in a journal before schema 4)."""
        if self._version < 4:
            return set()
        rows = self._conn.execute(
            "SELECT phone FROM campaign_dnc WHERE campaign_id = ?", (self.campaign_id,)
        )
        return {row[0] for row in rows}

    @_guarded
    def in_flight(self) -> list[Attempt]:
        """Attempts begun but not settled (``intent``, ``accepted``): reconcile these on resume."""
        rows = self._conn.execute(
            "SELECT * FROM campaign_attempts WHERE campaign_id = ? AND state IN (?, ?) ORDER BY id",
            (self.campaign_id, *IN_FLIGHT),
        ).fetchall()
        return [_attempt(self.where, r) for r in rows]

    @_guarded
    def attempts(self, contact_id: int | None = None) -> list[Attempt]:
        """Every attempt (of one contact, or of all), oldest first."""
        if contact_id is None:
            rows = self._conn.execute(
                "SELECT * FROM campaign_attempts WHERE campaign_id = ? ORDER BY id",
                (self.campaign_id,),
            ).fetchall()
        else:
            rows = self._conn.execute(
                "SELECT * FROM campaign_attempts WHERE campaign_id = ? AND contact_id = ? "
                "ORDER BY id",
                (self.campaign_id, contact_id),
            ).fetchall()
        return [_attempt(self.where, r) for r in rows]

    @_guarded
    def attempts_page(
        self,
        *,
        limit: int,
        before: int | None = None,
        agent: str | None = None,
        states: Sequence[AttemptState] | None = None,
        outcome: str | None = None,
        outcome_states: Sequence[AttemptState] = (),
    ) -> list[Attempt]:
        """Attempts newest first (by id, which only grows), those with an id below ``before``.

        ``agent`` matches the attempt's agent as given or its user id, case-insensitively;
        ``outcome`` matches the attempt's outcome, or (for one without any) ``outcome_states``.
        """
        where: list[str] = ["campaign_id = ?"]
        args: list[object] = [self.campaign_id]
        if before is not None:
            where.append("id < ?")
            args.append(before)
        if agent is not None:
            where.append("(lower(agent) = lower(?) OR lower(agent_id) = lower(?))")
            args += [agent, agent]
        if states is not None:
            where.append(f"state IN ({', '.join('?' for _ in states) or 'NULL'})")
            args += [str(state) for state in states]
        if outcome is not None:
            marks = ", ".join("?" for _ in outcome_states) or "NULL"
            where.append(f"(outcome = ? OR (outcome IS NULL AND state IN ({marks})))")
            args += [outcome, *(str(state) for state in outcome_states)]
        rows = self._conn.execute(
            f"SELECT * FROM campaign_attempts WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT ?",  # noqa: S608 - placeholders only
            (*args, limit),
        ).fetchall()
        return [_attempt(self.where, r) for r in rows]

    @_guarded
    def attempt(self, attempt_id: int) -> Attempt:
        """One attempt by id."""
        return _attempt(self.where, self._attempt_row(self._conn, attempt_id))

    @_guarded
    def contact(self, contact_id: int) -> ContactRecord:
        """One contact by id."""
        row = self._conn.execute(
            "SELECT * FROM campaign_contacts WHERE id = ? AND campaign_id = ?",
            (contact_id, self.campaign_id),
        ).fetchone()
        if row is None:
            raise KeyError(f"no contact {contact_id} in the journal")
        return _contact(self.where, row)

    @_guarded
    def contacts(self, *, status: ContactStatus | None = None) -> Iterator[ContactRecord]:
        """Every contact (or those in one status) in list order, streamed."""
        if status is None:
            cursor = self._conn.execute(
                "SELECT * FROM campaign_contacts WHERE campaign_id = ? ORDER BY id",
                (self.campaign_id,),
            )
        else:
            cursor = self._conn.execute(
                "SELECT * FROM campaign_contacts WHERE campaign_id = ? AND status = ? ORDER BY id",
                (self.campaign_id, status),
            )
        for row in cursor:
            yield _contact(self.where, row)

    @_guarded
    def due_contacts(
        self, *, limit: int, after: tuple[str, int] | None = None
    ) -> list[ContactRecord]:
        """Pending contacts, soonest due first (then list order), one page at a time.

        Pass the ``page_key`` of the last contact of a page as ``after`` for the next page.
        """
        if after is None:
            rows = self._conn.execute(
                "SELECT * FROM campaign_contacts WHERE campaign_id = ? AND status = ? "
                "ORDER BY next_at, id LIMIT ?",
                (self.campaign_id, ContactStatus.PENDING, limit),
            ).fetchall()
        else:
            rows = self._conn.execute(
                "SELECT * FROM campaign_contacts WHERE campaign_id = ? AND status = ? "
                "AND (next_at, id) > (?, ?) ORDER BY next_at, id LIMIT ?",
                (self.campaign_id, ContactStatus.PENDING, after[0], after[1], limit),
            ).fetchall()
        return [_contact(self.where, r) for r in rows]

    @_guarded
    def contact_summaries(self) -> Iterator[tuple[ContactRecord, Attempt | None, datetime | None]]:
        """Every contact in list order with its latest attempt and first attempt time, streamed."""
        cursor = self._conn.execute(
            "SELECT c.*, a.id AS a_id, "
            "(SELECT MIN(created_at) FROM campaign_attempts WHERE contact_id = c.id) "
            "AS created_at FROM campaign_contacts c LEFT JOIN campaign_attempts a "
            "ON a.id = (SELECT MAX(id) FROM campaign_attempts WHERE contact_id = c.id) "
            "WHERE c.campaign_id = ? ORDER BY c.id",
            (self.campaign_id,),
        )
        for row in cursor:
            last = None if row["a_id"] is None else self.attempt(row["a_id"])
            first = _Cells(self.where, "campaign_attempts", row, where=f"of contact id {row['id']}")
            yield _contact(self.where, row), last, first.opt_time("created_at")

    @_guarded
    def attribute_columns(self) -> list[str]:
        """The contact list's own columns (passed as call attributes), in file order."""
        stored = self.meta_json("attribute_columns", list)
        if stored is not None:
            return [str(c) for c in stored]
        # A journal loaded before the columns were recorded: gather them from the contacts.
        seen: dict[str, None] = {}
        for row in self._conn.execute(
            "SELECT id, line, attributes FROM campaign_contacts WHERE campaign_id = ?",
            (self.campaign_id,),
        ):
            cells = _Cells(self.where, "campaign_contacts", row)
            seen.update(dict.fromkeys(cells.text_map("attributes")))
        return list(seen)

    @_guarded
    def due_summary(self, now: datetime) -> tuple[int, datetime | None]:
        """Pending contacts due at ``now`` (never tried, or their time has come), and when the
        earliest of the others is due (None when none waits)."""
        at = _iso(now)
        due = self._conn.execute(
            "SELECT COUNT(*) FROM campaign_contacts WHERE campaign_id = ? AND status = ? "
            "AND next_at <= ?",
            (self.campaign_id, ContactStatus.PENDING, at),
        ).fetchone()[0]
        row = self._conn.execute(
            "SELECT id, line, next_at FROM campaign_contacts WHERE campaign_id = ? "
            "AND status = ? AND next_at > ? ORDER BY next_at, id LIMIT 1",
            (self.campaign_id, ContactStatus.PENDING, at),
        ).fetchone()
        later = (
            None
            if row is None
            else _Cells(self.where, "campaign_contacts", row).opt_time("next_at")
        )
        return int(due), later

    @_guarded
    def attempt_times(self, since: datetime) -> list[datetime]:
        """When each attempt since ``since`` was begun (its intent committed), oldest first."""
        rows = self._conn.execute(
            "SELECT id, created_at FROM campaign_attempts WHERE campaign_id = ? "
            "AND created_at >= ? ORDER BY created_at",
            (self.campaign_id, _iso(since)),
        ).fetchall()
        return [_Cells(self.where, "campaign_attempts", r).time("created_at") for r in rows]

    @_guarded
    def settled_outcomes(self) -> dict[str, int]:
        """Contacts finished one way or another (done, skipped, unknown), by outcome."""
        rows = self._conn.execute(
            "SELECT COALESCE(outcome, status), COUNT(*) FROM campaign_contacts "
            "WHERE campaign_id = ? AND status IN (?, ?, ?) GROUP BY 1",
            (self.campaign_id, ContactStatus.DONE, ContactStatus.SKIPPED, ContactStatus.UNKNOWN),
        ).fetchall()
        return {str(key): int(n) for key, n in rows}

    @_guarded
    def deferred(self, now: datetime, *, limit: int) -> tuple[int, list[ContactRecord]]:
        """Pending contacts due after ``now`` (a retry delay, the calling window): how many, and
        the ``limit`` soonest due."""
        at = _iso(now)
        total = self._conn.execute(
            "SELECT COUNT(*) FROM campaign_contacts WHERE campaign_id = ? AND status = ? "
            "AND next_at > ?",
            (self.campaign_id, ContactStatus.PENDING, at),
        ).fetchone()[0]
        rows = self._conn.execute(
            "SELECT * FROM campaign_contacts WHERE campaign_id = ? AND status = ? "
            "AND next_at > ? ORDER BY next_at, id LIMIT ?",
            (self.campaign_id, ContactStatus.PENDING, at, limit),
        ).fetchall()
        return int(total), [_contact(self.where, r) for r in rows]

    @_guarded
    def skipped_rows(self) -> list[RowProblem]:
        """CSV rows refused by validation, in file order."""
        info = self.info()
        rows = self._conn.execute(
            "SELECT * FROM campaign_skipped_rows WHERE campaign_id = ? ORDER BY line",
            (self.campaign_id,),
        ).fetchall()
        return [
            _skipped(info.csv_path, _Cells(self.where, "campaign_skipped_rows", r)) for r in rows
        ]

    @_guarded
    def events(self, *, limit: int | None = None) -> list[dict[str, Any]]:
        """The event log, oldest first (or the last ``limit`` events)."""
        if limit is None:
            rows = self._conn.execute(
                "SELECT * FROM campaign_events WHERE campaign_id = ? ORDER BY id",
                (self.campaign_id,),
            ).fetchall()
        else:
            rows = self._conn.execute(
                "SELECT * FROM (SELECT * FROM campaign_events WHERE campaign_id = ? "
                "ORDER BY id DESC LIMIT ?) AS last ORDER BY id",
                (self.campaign_id, limit),
            ).fetchall()
        return [_event(self.where, r) for r in rows]

    @_guarded
    def contact_events(self, contact_ids: Iterable[int]) -> dict[int, list[dict[str, Any]]]:
        """The events of some contacts (what was seen and decided), oldest first, by contact; one
        pass over the log whatever the number of contacts."""
        wanted = sorted(set(contact_ids))
        found: dict[int, list[dict[str, Any]]] = {cid: [] for cid in wanted}
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = self._conn.execute(
                f"SELECT * FROM campaign_events WHERE campaign_id = ? AND contact_id IN ({marks}) "  # noqa: S608 - placeholders only
                "ORDER BY id",
                (self.campaign_id, *chunk),
            ).fetchall()
            for row in rows:
                found[row["contact_id"]].append(_event(self.where, row))
        return found

    @_guarded
    def count_by(self, table: str, column: str) -> dict[str, int]:
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
        rows = self._conn.execute(
            f"SELECT {column}, COUNT(*) FROM {name} WHERE campaign_id = ? GROUP BY {column}",  # noqa: S608 - allow-listed
            (self.campaign_id,),
        ).fetchall()
        kind = _CHOICES.get((table, column))
        if kind is not None:
            for key, _ in rows:
                if key not in set(kind):
                    row = self._conn.execute(
                        f"SELECT * FROM {name} WHERE campaign_id = ? "  # noqa: S608 - allow-listed
                        f"AND {column} IS NOT DISTINCT FROM ? LIMIT 1",
                        (self.campaign_id, key),
                    ).fetchone()
                    _Cells(self.where, name, row).choice(column, kind)
        return {str(key) if key is not None else "": int(n) for key, n in rows}
