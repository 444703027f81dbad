"""Making and opening a campaign's journal, for :class:`gcdial.campaign.journal.Journal`: the
one-file journal beside the CLI's list (built atomically, its schema checked and migrated, its
write-ahead log folded back on close) and a campaign's rows in a shared database. Its crash-safety
rules are in :mod:`gcdial.campaign.journal`."""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Mapping
from pathlib import Path
from typing import Final

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
    move_to_campaign_tables,
    old_views,
)
from gcdial.campaign.journalfile import _roll_back_hot, _side_files, _temp_path
from gcdial.campaign.sqldialect import Connection, connect_sqlite
from gcdial.errors import JournalError, JournalSchemaError
from gcdial.private_files import create_private, secure_sqlite

__all__ = [
    "APPLICATION_ID",
    "build",
    "campaign_present",
    "check_schema",
    "checkpoint",
    "connect_file",
    "half_made",
    "migrate",
    "shared_core",
]

# PRAGMA application_id marks the file as a gcdial journal ("gcdj").
APPLICATION_ID: Final = 0x6763646A


def half_made(path: Path) -> bool:
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


def build(path: Path, meta: Mapping[str, str]) -> None:
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


def connect_file(path: Path, *, read_only: bool) -> sqlite3.Connection:
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


def check_schema(core: JournalCore) -> None:
    try:
        app_id = core.conn.raw.execute("PRAGMA application_id").fetchone()[0]
        version = core.conn.raw.execute("PRAGMA user_version").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        raise JournalSchemaError(
            f"{core.path} is not a gcdial journal ({exc}).",
            hint="Give the path of the journal file the campaign created.",
        ) from None
    if app_id != APPLICATION_ID:
        raise JournalSchemaError(
            f"{core.path} is an SQLite file but not a gcdial journal.",
            hint="Give the path of the journal file the campaign created.",
        )
    if version > SCHEMA_VERSION:
        raise JournalSchemaError(
            f"{core.path} was written by a newer gcdial (journal schema {version}; this "
            f"gcdial reads up to {SCHEMA_VERSION}).",
            hint="Upgrade gcdial (pip install -U gcdial) to resume or report this campaign.",
        )
    if version < 1:
        raise JournalSchemaError(
            f"{core.path} has no journal schema (version {version}); it was never completed.",
            hint="Start the campaign again with `gcdial campaign run` (it finishes a journal "
            "that was never completed), or give a new journal path.",
        )
    present = core.conn.tables()
    if version < SCHEMA_VERSION:
        # dnc_numbers came with schema 4.
        wanted = [OLD_NAMES[t] for t in TABLES if t != "campaign_dnc" or version >= 4]
    else:
        wanted = list(TABLES)
    missing = [table for table in wanted if table not in present]
    if missing:
        raise JournalSchemaError(
            f"The journal {core.path} is damaged: table {', '.join(missing)} is missing.",
            hint="Restore the journal from a backup, or start the campaign again with a new "
            "journal path (contacts dialed in it would be dialed again).",
        )
    core.version = int(version)
    if core.version < SCHEMA_VERSION and core.read_only:
        old_views(core.conn)  # read as it is, through the new tables' names


def migrate(core: JournalCore) -> None:
    """Bring an older journal to :data:`SCHEMA_VERSION` in one transaction: a step that
    fails (a damaged journal) leaves the file as it was, at its own version, for the error
    (naming the file) to be acted on; never half-way between two schemas."""
    if core.version >= SCHEMA_VERSION:
        return
    try:
        with core.tx() as conn:
            for version in range(core.version, SCHEMA_VERSION - 1):
                for statement in OLD_STEPS[version]:
                    conn.execute(statement)
            move_to_campaign_tables(conn)
            for version in range(core.version, SCHEMA_VERSION):
                core.event("journal.migrated", detail=f"schema {version + 1}")
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    except sqlite3.Error as exc:
        raise JournalSchemaError(
            f"The journal {core.path} (schema {core.version}) cannot be brought to schema "
            f"{SCHEMA_VERSION} ({exc}): it is damaged. It was left as it was.",
            hint="Restore it from a backup and resume again; `gcdial campaign status` and "
            "`report` still read it as it is.",
        ) from None
    core.version = SCHEMA_VERSION


def checkpoint(path: Path) -> None:
    """Fold the write-ahead log into the journal; SQLite deletes ``-wal`` and ``-shm`` when
    this connection closes if it is the last one (its own locks decide: a reader or a
    campaign that opened it meanwhile keeps them), so no lock of ours is needed."""
    if not any(path.with_name(path.name + s).exists() for s in ("-wal", "-shm")):
        return
    with contextlib.suppress(sqlite3.Error, OSError):
        conn = sqlite3.connect(path, isolation_level=None)
        try:
            conn.execute("PRAGMA busy_timeout = 1000")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            conn.close()


def shared_core(
    db: JournalDatabase,
    campaign_id: str,
    *,
    fence: Fence | None,
    clock: Clock,
    read_only: bool,
    conn: Connection | None = None,
) -> JournalCore:
    """The core of campaign ``campaign_id``'s journal in ``db``, over a new connection or
    ``conn``; its schema version checked (the connection is closed when it is refused)."""
    if not campaign_id:
        raise ValueError("a campaign id is needed")
    if conn is None:
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
    return JournalCore(
        Path(db.label),
        conn,
        lock=None,
        clock=clock,
        read_only=read_only,
        campaign_id=campaign_id,
        shared=db,
        fence=fence,
    )


def campaign_present(core: JournalCore) -> bool:
    row = core.conn.execute(
        "SELECT 1 FROM campaign_meta WHERE campaign_id = ? AND key = 'name'",
        (core.campaign_id,),
    ).fetchone()
    return row is not None
