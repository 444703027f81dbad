"""The campaign journal: every contact, attempt, state change and outcome of a campaign, in a
one-file SQLite journal beside the CLI's list, or as one campaign's rows in a shared database (the
service's SQLite store or PostgreSQL, see :class:`JournalDatabase`), through the same code and the
same schema (:mod:`gcdial.campaign.journaldb`). The rules below are the one-file journal's; in a
shared database rules 1-3 hold alike, and a lease (:class:`Fence`) takes the place of the lock.

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
import json
import os
import sqlite3
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Self

from gcdial.campaign.journalattempts import AttemptReads, AttemptWrites
from gcdial.campaign.journalcontacts import ContactReads, ContactWrites
from gcdial.campaign.journalcore import Clock, JournalCore
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
    Attempt,
    AttemptState,
    CampaignInfo,
    ContactRecord,
    ContactStatus,
    _iso,
    _utc_now,
    page_key,
    redecided_due,
)
from gcdial.campaign.sqldialect import connect_sqlite
from gcdial.errors import (
    JournalDataError,
    JournalError,
    JournalFencedError,
    JournalLockedError,
    JournalMismatchError,
    JournalSchemaError,
)
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


class _SharedHome(JournalCore):
    """Making and opening a campaign's journal in a shared database (the service's store)."""

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
    ) -> Self:
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
    ) -> Self:
        if not campaign_id:
            raise ValueError("a campaign id is needed")
        try:
            conn = db.connect()
        except Exception as exc:
            raise db.failed(exc) from None
        try:
            version = db.version(conn)
            db.check_version(version)
            if version == 0:
                raise JournalError(
                    f"{db.label} has no campaign tables yet.",
                    hint="Call JournalDatabase.ensure_schema() once before using it.",
                )
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


class Journal(_SharedHome, ContactWrites, ContactReads, AttemptWrites, AttemptReads):
    """The durable record of one campaign: a one-file journal (:meth:`create`, :meth:`open`) or
    a campaign's rows in a shared database (:meth:`create_in`, :meth:`open_in`). Close when
    done."""

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
