"""One-file journals as older gcdials wrote them (schemas 1-4, tables without ``campaign_``), for
the tests of the migration to schema 5: :func:`back_to_schema` turns a journal made now back
into one of an older schema, with every row kept, using the old DDL as it was."""

from __future__ import annotations

import sqlite3
from pathlib import Path

__all__ = ["OLD_DDL_4", "back_to_schema"]

OLD_DDL_4 = """
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE contacts (
    id          INTEGER PRIMARY KEY,
    line        INTEGER NOT NULL UNIQUE,
    phone       TEXT NOT NULL UNIQUE,
    name        TEXT,
    agent       TEXT,
    external_id TEXT,
    tz          TEXT,
    attributes  TEXT NOT NULL DEFAULT '{}',
    status      TEXT NOT NULL DEFAULT 'pending',
    outcome     TEXT,
    detail      TEXT,
    attempts    INTEGER NOT NULL DEFAULT 0,
    next_at     TEXT NOT NULL DEFAULT '',
    updated_at  TEXT NOT NULL
);
CREATE INDEX contacts_due ON contacts (status, next_at, id);
CREATE TABLE skipped_rows (
    line   INTEGER PRIMARY KEY,
    col    TEXT,
    kind   TEXT NOT NULL,
    reason TEXT NOT NULL,
    fix    TEXT NOT NULL
);
CREATE TABLE attempts (
    id              INTEGER PRIMARY KEY,
    contact_id      INTEGER NOT NULL REFERENCES contacts (id),
    number          INTEGER NOT NULL,
    agent_id        TEXT NOT NULL,
    agent           TEXT,
    state           TEXT NOT NULL,
    conversation_id TEXT,
    created_at      TEXT NOT NULL,
    accepted_at     TEXT,
    ended_at        TEXT,
    outcome         TEXT,
    error_code      TEXT,
    context_id      TEXT,
    detail          TEXT,
    talk_s          REAL,
    tag             TEXT,
    sent_after      TEXT,
    match_after     TEXT,
    wrapup_code     TEXT,
    wrapup_name     TEXT,
    wrapup_notes    TEXT,
    wrapup_at       TEXT,
    wrapup_action   TEXT
);
CREATE INDEX attempts_contact ON attempts (contact_id, id);
CREATE INDEX attempts_state ON attempts (state);
CREATE TABLE dnc_numbers (
    phone      TEXT PRIMARY KEY,
    added_at   TEXT NOT NULL,
    attempt_id INTEGER
);
CREATE TABLE events (
    id         INTEGER PRIMARY KEY,
    at         TEXT NOT NULL,
    kind       TEXT NOT NULL,
    contact_id INTEGER,
    attempt_id INTEGER,
    detail     TEXT
)
"""

_OLD = {
    "meta": "campaign_meta",
    "contacts": "campaign_contacts",
    "skipped_rows": "campaign_skipped_rows",
    "attempts": "campaign_attempts",
    "dnc_numbers": "campaign_dnc",
    "events": "campaign_events",
}


def back_to_schema(path: Path, version: int) -> None:
    """Rewrite the (closed) schema-5 journal at ``path`` as an older gcdial's of ``version``."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("BEGIN")
        for statement in OLD_DDL_4.split(";"):
            conn.execute(statement)
        for old, new in _OLD.items():
            columns = [row[1] for row in conn.execute(f"PRAGMA table_info({old})")]
            listed = ", ".join(columns)
            conn.execute(f"INSERT INTO {old} ({listed}) SELECT {listed} FROM {new}")  # noqa: S608
        for new in reversed(_OLD.values()):
            conn.execute(f"DROP TABLE {new}")
        if version <= 3:
            for column in ("wrapup_code", "wrapup_name", "wrapup_notes", "wrapup_at"):
                conn.execute(f"ALTER TABLE attempts DROP COLUMN {column}")
            conn.execute("ALTER TABLE attempts DROP COLUMN wrapup_action")
            conn.execute("DROP TABLE dnc_numbers")
        if version <= 2:
            for column in ("sent_after", "match_after"):
                conn.execute(f"ALTER TABLE attempts DROP COLUMN {column}")
        if version <= 1:
            for column in ("talk_s", "tag"):
                conn.execute(f"ALTER TABLE attempts DROP COLUMN {column}")
        conn.execute(f"PRAGMA user_version = {version}")
        conn.execute("COMMIT")
    finally:
        conn.close()
