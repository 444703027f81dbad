"""The campaign journal's schema, written once for SQLite and PostgreSQL, its one migrator, and
the shared databases a journal can live in (:class:`JournalDatabase`).

Every table holds the rows of many campaigns, told apart by ``campaign_id``: a one-file journal
beside the CLI's list holds one campaign (:data:`LOCAL_CAMPAIGN`); the service's store (its SQLite
file or PostgreSQL) holds all of its campaigns. Row ids (contacts, attempts, events) are global
and only grow.

Schema versions: 1-4 were the one-file journal's own tables (``meta``, ``contacts``, ...; see
:data:`OLD_STEPS`); 5 moved them to the ``campaign_*`` tables keyed per campaign.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from gcdial.campaign.sqldialect import DDL_TOKENS, Connection, connect_postgres, connect_sqlite
from gcdial.errors import JournalError, JournalSchemaError

__all__ = [
    "LOCAL_CAMPAIGN",
    "OLD_STEPS",
    "SCHEMA_VERSION",
    "TABLES",
    "Fence",
    "JournalDatabase",
    "create_tables",
    "delete_campaign",
    "move_to_campaign_tables",
    "schema_ddl",
]

SCHEMA_VERSION: Final = 5
"""1: the first journal. 2: attempts gain ``talk_s`` and ``tag``. 3: attempts gain ``sent_after``
and ``match_after``. 4: attempts gain the agent's wrap-up and ``wrapup_action``; the do-not-call
table. 5: every table is a ``campaign_*`` table keyed per campaign, so one database can hold many
campaigns (the service's store), and a one-file journal holds one (``local``)."""

LOCAL_CAMPAIGN: Final = "local"
"""The campaign id of a one-file journal's rows."""

TABLES: Final = (
    "campaign_meta",
    "campaign_contacts",
    "campaign_skipped_rows",
    "campaign_attempts",
    "campaign_events",
    "campaign_dnc",
)

_DDL: Final = """
CREATE TABLE campaign_meta (
    campaign_id TEXT NOT NULL,
    key         TEXT NOT NULL,
    value       TEXT NOT NULL,
    PRIMARY KEY (campaign_id, key)
);
CREATE TABLE campaign_contacts (
    id          {ID},
    campaign_id TEXT NOT NULL,
    line        {BIGINT} NOT NULL,
    phone       TEXT NOT NULL,
    name        TEXT,
    agent       TEXT,
    external_id TEXT,
    tz          TEXT,
    attributes  TEXT NOT NULL DEFAULT '{}',
    status      TEXT NOT NULL DEFAULT 'pending',
    outcome     TEXT,
    detail      TEXT,
    attempts    {BIGINT} NOT NULL DEFAULT 0,
    next_at     {TIME} NOT NULL DEFAULT '',
    updated_at  {TIME} NOT NULL,
    UNIQUE (campaign_id, line),
    UNIQUE (campaign_id, phone)
);
CREATE INDEX campaign_contacts_due ON campaign_contacts (campaign_id, status, next_at, id);
CREATE TABLE campaign_skipped_rows (
    campaign_id TEXT NOT NULL,
    line        {BIGINT} NOT NULL,
    col         TEXT,
    kind        TEXT NOT NULL,
    reason      TEXT NOT NULL,
    fix         TEXT NOT NULL,
    PRIMARY KEY (campaign_id, line)
);
CREATE TABLE campaign_attempts (
    id              {ID},
    campaign_id     TEXT NOT NULL,
    contact_id      {BIGINT} NOT NULL REFERENCES campaign_contacts (id),
    number          {BIGINT} NOT NULL,
    agent_id        TEXT NOT NULL,
    agent           TEXT,
    state           TEXT NOT NULL,
    conversation_id TEXT,
    created_at      {TIME} NOT NULL,
    accepted_at     {TIME},
    ended_at        {TIME},
    outcome         TEXT,
    error_code      TEXT,
    context_id      TEXT,
    detail          TEXT,
    talk_s          {REAL},
    tag             TEXT,
    sent_after      {TIME},
    match_after     {TIME},
    wrapup_code     TEXT,
    wrapup_name     TEXT,
    wrapup_notes    TEXT,
    wrapup_at       {TIME},
    wrapup_action   TEXT
);
CREATE INDEX campaign_attempts_contact ON campaign_attempts (contact_id, id);
CREATE INDEX campaign_attempts_state ON campaign_attempts (campaign_id, state);
CREATE TABLE campaign_dnc (
    campaign_id TEXT NOT NULL,
    phone       TEXT NOT NULL,
    added_at    {TIME} NOT NULL,
    attempt_id  {BIGINT},
    PRIMARY KEY (campaign_id, phone)
);
CREATE TABLE campaign_events (
    id          {ID},
    campaign_id TEXT NOT NULL,
    at          {TIME} NOT NULL,
    kind        TEXT NOT NULL,
    contact_id  {BIGINT},
    attempt_id  {BIGINT},
    detail      TEXT
);
CREATE INDEX campaign_events_campaign ON campaign_events (campaign_id, id)
"""

_VERSION_TABLE: Final = (
    "CREATE TABLE campaign_schema (one INTEGER PRIMARY KEY CHECK (one = 1), "
    "version INTEGER NOT NULL)"
)
"""Where a shared database keeps the journal schema's version (a one-file journal: its
``user_version``)."""


def schema_ddl(dialect: str) -> list[str]:
    """The statements that create the ``campaign_*`` tables, in ``dialect``."""
    text = _DDL
    for token, value in DDL_TOKENS[dialect].items():
        text = text.replace("{" + token + "}", value)
    return [s.strip() for s in text.split(";") if s.strip()]


def create_tables(conn: Connection) -> None:
    for statement in schema_ddl(conn.dialect):
        conn.execute(statement)


OLD_STEPS: Final[dict[int, tuple[str, ...]]] = {
    # A one-file journal's own steps, from version N to N + 1 (its old table names).
    1: (
        "ALTER TABLE attempts ADD COLUMN talk_s REAL",
        "ALTER TABLE attempts ADD COLUMN tag TEXT",
    ),
    2: (
        "ALTER TABLE attempts ADD COLUMN sent_after TEXT",
        "ALTER TABLE attempts ADD COLUMN match_after TEXT",
    ),
    3: (
        "ALTER TABLE attempts ADD COLUMN wrapup_code TEXT",
        "ALTER TABLE attempts ADD COLUMN wrapup_name TEXT",
        "ALTER TABLE attempts ADD COLUMN wrapup_notes TEXT",
        "ALTER TABLE attempts ADD COLUMN wrapup_at TEXT",
        "ALTER TABLE attempts ADD COLUMN wrapup_action TEXT",
        "CREATE TABLE dnc_numbers (phone TEXT PRIMARY KEY, added_at TEXT NOT NULL, "
        "attempt_id INTEGER)",
    ),
}

OLD_NAMES: Final = {
    "campaign_meta": "meta",
    "campaign_contacts": "contacts",
    "campaign_skipped_rows": "skipped_rows",
    "campaign_attempts": "attempts",
    "campaign_events": "events",
    "campaign_dnc": "dnc_numbers",
}
"""The one-file journal's tables before schema 5."""

_COLUMNS: Final = {
    "campaign_meta": "key, value",
    "campaign_contacts": "id, line, phone, name, agent, external_id, tz, attributes, status, "
    "outcome, detail, attempts, next_at, updated_at",
    "campaign_skipped_rows": "line, col, kind, reason, fix",
    "campaign_attempts": "id, contact_id, number, agent_id, agent, state, conversation_id, "
    "created_at, accepted_at, ended_at, outcome, error_code, context_id, detail, talk_s, tag, "
    "sent_after, match_after, wrapup_code, wrapup_name, wrapup_notes, wrapup_at, wrapup_action",
    "campaign_events": "id, at, kind, contact_id, attempt_id, detail",
    "campaign_dnc": "phone, added_at, attempt_id",
}


def move_to_campaign_tables(conn: Connection) -> None:
    """Step 4 -> 5 of a one-file journal (inside the caller's transaction): the ``campaign_*``
    tables made, every row copied into them as campaign ``local`` (ids kept), the old ones
    dropped (children first, so no foreign key is ever left dangling)."""
    create_tables(conn)
    for new, old in OLD_NAMES.items():
        columns = _COLUMNS[new]
        conn.execute(
            f"INSERT INTO {new} (campaign_id, {columns}) "  # noqa: S608 - the schema's own names
            f"SELECT '{LOCAL_CAMPAIGN}', {columns} FROM {old}"
        )
    for old in ("events", "attempts", "dnc_numbers", "skipped_rows", "contacts", "meta"):
        conn.execute(f"DROP TABLE {old}")


def old_views(conn: Connection) -> None:
    """Let a read-only connection to a one-file journal of schema 1-4 read it as schema 5:
    a temporary view per ``campaign_*`` table over the old one (columns it lacks read as None)."""
    present = conn.tables()
    for new, old in OLD_NAMES.items():
        if old in present:
            conn.execute(
                f"CREATE TEMP VIEW {new} AS "  # noqa: S608 - the schema's own names
                f"SELECT '{LOCAL_CAMPAIGN}' AS campaign_id, * FROM main.{old}"
            )


def delete_campaign(conn: Connection, campaign_id: str) -> None:
    """Delete every row of one campaign (inside the caller's transaction), children first."""
    for table in (
        "campaign_events",
        "campaign_dnc",
        "campaign_attempts",
        "campaign_skipped_rows",
        "campaign_contacts",
        "campaign_meta",
    ):
        conn.execute(f"DELETE FROM {table} WHERE campaign_id = ?", (campaign_id,))  # noqa: S608


@dataclass(frozen=True, slots=True)
class Fence:
    """The lease a replica must still hold for a journal to begin an attempt: the row of the
    store's ``leases`` table named ``lease``, owned by ``owner`` at ``epoch`` and not expired
    (``expires_at`` against ``now()``, in epoch seconds like the store's)."""

    lease: str
    owner: str
    epoch: int
    now: Callable[[], float] = field(default=time.time, compare=False)


class JournalDatabase:
    """A database that holds the journals of many campaigns: the service's SQLite store file or
    PostgreSQL. Each journal opened in it has a connection of its own (:meth:`connect`)."""

    def __init__(self, dialect: str, target: str, label: str) -> None:
        self.dialect = dialect
        self._target = target
        self.label = label

    @classmethod
    def sqlite(cls, path: str | Path) -> JournalDatabase:
        return cls("sqlite", str(path), str(path))

    @classmethod
    def postgres(cls, dsn: str) -> JournalDatabase:
        return cls("postgres", dsn, _pg_label(dsn))

    def __repr__(self) -> str:
        return f"JournalDatabase({self.dialect}, {self.label})"

    def connect(self) -> Connection:
        """A new connection (SQLite: WAL, a busy timeout, fsync per commit; PostgreSQL:
        autocommit with explicit transactions)."""
        if self.dialect == "postgres":
            return connect_postgres(self._target)
        raw = sqlite3.connect(self._target, isolation_level=None, check_same_thread=False)
        try:
            raw.execute("PRAGMA busy_timeout = 10000")
            raw.execute("PRAGMA journal_mode = WAL")
            raw.execute("PRAGMA synchronous = FULL")
            raw.execute("PRAGMA foreign_keys = ON")
        except sqlite3.Error:
            raw.close()
            raise
        return connect_sqlite(raw)

    @contextlib.contextmanager
    def connection(self) -> Iterator[Connection]:
        try:
            conn = self.connect()
        except Exception as exc:
            raise self.failed(exc) from None
        try:
            yield conn
        except Exception as exc:
            if isinstance(exc, conn.errors):
                raise self.failed(exc) from None
            raise
        finally:
            conn.close()

    def failed(self, exc: Exception) -> JournalError:
        return JournalError(
            f"The campaign journal database {self.label} cannot be used: {exc}.",
            hint="Check that the database is reachable and that gcdial may write to it.",
        )

    def version(self, conn: Connection) -> int:
        """The journal schema's version in this database (0: no campaign tables yet)."""
        if "campaign_schema" not in conn.tables():
            return 0
        row = conn.execute("SELECT version FROM campaign_schema WHERE one = 1").fetchone()
        return 0 if row is None else int(row[0])

    def check_version(self, version: int) -> None:
        if version > SCHEMA_VERSION:
            raise JournalSchemaError(
                f"The campaign tables in {self.label} were written by a newer gcdial (journal "
                f"schema {version}; this gcdial reads up to {SCHEMA_VERSION}).",
                hint="Upgrade gcdial (pip install -U gcdial) on every replica.",
            )

    def ensure_schema(self) -> None:
        """Create the ``campaign_*`` tables, or bring them to :data:`SCHEMA_VERSION`, in one
        transaction. Idempotent, and safe when several replicas call it at once."""
        with self.connection() as conn:
            conn.begin_write()
            try:
                conn.lock_schema()
                version = self.version(conn)
                self.check_version(version)
                if version == 0:
                    conn.execute(_VERSION_TABLE)
                    create_tables(conn)
                    conn.execute(
                        "INSERT INTO campaign_schema (one, version) VALUES (1, ?)",
                        (SCHEMA_VERSION,),
                    )
                # Later steps (from 5 on) go here, numbered like OLD_STEPS.
            except BaseException:
                conn.rollback()
                raise
            conn.commit()


def _pg_label(dsn: str) -> str:
    """The database named without its password (the DSN may carry one)."""
    try:
        from psycopg.conninfo import conninfo_to_dict

        info = conninfo_to_dict(dsn)
    except Exception:
        return "PostgreSQL"
    host, name = info.get("host") or "localhost", info.get("dbname") or ""
    return f"PostgreSQL {name}@{host}:{info.get('port') or 5432}"
