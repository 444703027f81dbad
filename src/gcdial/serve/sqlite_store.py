"""The SQLite store: one file, no setup, one process (the default for ``gcdial serve``).

WAL mode; every write is its own ``BEGIN IMMEDIATE`` transaction. Commits survive a crash of the
process at once (``synchronous=NORMAL``); a durable write (the idempotency claim, or the call's
row with ``insert_call(durable=True)``) is also fsynced before it returns (``synchronous=FULL``
for that one commit, which flushes every earlier one too: the log is appended in order, and
recovery replays it only up to its last intact commit), so even a power loss cannot forget a
claim whose create-call may have left. A dial claims its key with ``durable=False`` and syncs
once, with its call's row, before the POST. One connection guarded by a lock: the service's
writes are tiny and SQLite serialises writers anyway; each request's key lookup reads on a
connection of its own, from the event loop's thread (``find_api_key_inline``): a WAL reader
never waits for the writer.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from gcdial.private_files import create_private, secure_sqlite
from gcdial.serve._rows import (
    API_KEY_COLUMNS,
    AUDIT_COLUMNS,
    CALL_COLUMNS,
    CAMPAIGN_COLUMNS,
    DELIVERY_COLUMNS,
    DNC_COLUMNS,
    PURGE_LEASES,
    SharedReads,
    agent_busy,
    api_key_args,
    api_key_record,
    audit_args,
    call_args,
    call_record,
    campaign_args,
    campaign_update,
    check_call_changes,
    clear_secrets,
    delivery_record,
    dnc_args,
    existing_claim,
    idempotency_record,
    name_taken,
    webhook_record,
)
from gcdial.serve.budget import (
    BUDGET_COLUMNS,
    BudgetEvidence,
    BudgetGrant,
    budget_args,
    budget_row,
    decide,
)
from gcdial.serve.secretbox import SecretBox, load_box
from gcdial.serve.store import (
    SCHEMA_VERSION,
    ApiKeyRecord,
    AuditEntry,
    CallRecord,
    CampaignRecord,
    Claim,
    Delivery,
    DncEntry,
    Event,
    StoreError,
    WebhookEndpoint,
)

__all__ = ["SqliteStore"]

logger = logging.getLogger("gcdial.serve")

_MIGRATIONS: dict[int, str] = {
    1: """
    CREATE TABLE idempotency (
        scope TEXT NOT NULL, key TEXT NOT NULL, fingerprint TEXT NOT NULL,
        call_id TEXT NOT NULL, state TEXT NOT NULL, owner TEXT NOT NULL DEFAULT '',
        created_at REAL NOT NULL, expires_at REAL NOT NULL,
        status_code INTEGER, response_body TEXT,
        PRIMARY KEY (scope, key)
    );
    CREATE TABLE calls (
        id TEXT PRIMARY KEY, api_key_id TEXT NOT NULL, agent TEXT NOT NULL,
        agent_id TEXT, "to" TEXT NOT NULL, status TEXT NOT NULL,
        idempotency_key TEXT NOT NULL DEFAULT '', conversation_id TEXT,
        outcome TEXT, detail TEXT, request TEXT NOT NULL DEFAULT '{}',
        created_at REAL NOT NULL, updated_at REAL NOT NULL
    );
    CREATE INDEX calls_created ON calls (created_at);
    CREATE INDEX calls_status ON calls (status);
    CREATE TABLE audit (
        id INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL, api_key_id TEXT NOT NULL,
        action TEXT NOT NULL, result TEXT NOT NULL, call_id TEXT, agent TEXT, number TEXT,
        detail TEXT
    );
    CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
    CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
    CREATE TABLE events (
        id INTEGER PRIMARY KEY AUTOINCREMENT, type TEXT NOT NULL, call_id TEXT,
        data TEXT NOT NULL, at REAL NOT NULL
    );
    CREATE INDEX events_call ON events (call_id, id);
    CREATE TABLE webhooks (
        id TEXT PRIMARY KEY, url TEXT NOT NULL, secret TEXT NOT NULL, created_at REAL NOT NULL,
        api_key_id TEXT NOT NULL DEFAULT '', description TEXT NOT NULL DEFAULT '',
        active INTEGER NOT NULL DEFAULT 1
    );
    CREATE TABLE outbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT, endpoint_id TEXT NOT NULL,
        event_id INTEGER NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at REAL NOT NULL, leased_by TEXT, leased_until REAL,
        state TEXT NOT NULL DEFAULT 'pending', last_error TEXT, done_at REAL
    );
    CREATE INDEX outbox_due ON outbox (state, next_attempt_at);
    CREATE TABLE api_keys (
        id TEXT PRIMARY KEY, name TEXT NOT NULL, key_hash TEXT NOT NULL UNIQUE,
        prefix TEXT NOT NULL DEFAULT '', scopes TEXT NOT NULL, agents TEXT NOT NULL,
        rate_per_minute INTEGER NOT NULL, created_at REAL NOT NULL, revoked_at REAL,
        extra TEXT NOT NULL DEFAULT '{}'
    );
    CREATE TABLE leases (
        name TEXT PRIMARY KEY, owner TEXT NOT NULL, expires_at REAL NOT NULL
    );
    """,
    2: """
    ALTER TABLE calls ADD COLUMN source TEXT NOT NULL DEFAULT 'api';
    ALTER TABLE calls ADD COLUMN campaign_id TEXT;
    ALTER TABLE calls ADD COLUMN attempt_id INTEGER;
    ALTER TABLE calls ADD COLUMN origin TEXT NOT NULL DEFAULT '{}';
    CREATE INDEX calls_campaign ON calls (campaign_id, attempt_id);
    """,
    3: """
    ALTER TABLE calls ADD COLUMN wrapup TEXT;
    """,
    4: """
    ALTER TABLE webhooks ADD COLUMN events TEXT;
    CREATE INDEX outbox_endpoint ON outbox (endpoint_id, id);
    """,
    5: """
    CREATE TABLE live_agents (
        agent TEXT PRIMARY KEY, call_id TEXT NOT NULL, owner TEXT NOT NULL,
        claimed_at REAL NOT NULL, expires_at REAL NOT NULL
    );
    """,
    6: """
    CREATE TABLE genesys_budget (
        key TEXT PRIMARY KEY, win INTEGER NOT NULL, spent INTEGER NOT NULL,
        lim INTEGER, reset_at REAL, started_at REAL NOT NULL, paused_until REAL
    );
    """,
    7: """
    CREATE TABLE dnc (
        number TEXT PRIMARY KEY, added_at REAL NOT NULL, added_by TEXT NOT NULL, reason TEXT
    );
    CREATE INDEX dnc_added ON dnc (added_at, number);
    ALTER TABLE api_keys ADD COLUMN rules TEXT NOT NULL DEFAULT 'enforce';
    """,
    8: """
    ALTER TABLE genesys_budget ADD COLUMN carry INTEGER NOT NULL DEFAULT 0;
    """,
    9: """
    ALTER TABLE leases ADD COLUMN epoch INTEGER NOT NULL DEFAULT 0;
    UPDATE leases SET epoch = 1;
    CREATE TABLE campaigns (
        id TEXT PRIMARY KEY, name TEXT NOT NULL, api_key_id TEXT NOT NULL,
        created_at REAL NOT NULL, settings TEXT NOT NULL, state TEXT NOT NULL,
        contacts INTEGER, error TEXT, stop_reason TEXT, history TEXT NOT NULL DEFAULT '[]',
        csv TEXT NOT NULL
    );
    CREATE INDEX campaigns_created ON campaigns (created_at, id);
    CREATE INDEX campaigns_state ON campaigns (state);
    """,
}


class SqliteStore(SharedReads):
    """``Store`` on one SQLite file; safe to share between the threads of one process."""

    #: One connection behind one lock: its callers gain nothing from several threads.
    serialised = True

    def __init__(self, path: str | Path, *, box: SecretBox | None = None) -> None:
        self.path = Path(path)
        self._lock = threading.RLock()
        self._reader: sqlite3.Connection | None = None  # find_api_key_inline's
        self._reader_lock = threading.Lock()
        self._box = box or load_box(self.path.with_name(self.path.name + ".key"))
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            create_private(self.path)  # before SQLite makes it: its -wal and -shm copy the mode
            self._db = sqlite3.connect(
                str(self.path), isolation_level=None, check_same_thread=False, timeout=10.0
            )
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA busy_timeout=10000")
            self._migrate()
            self._seal_secrets()
            secure_sqlite(self.path)
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"cannot open the store {self.path}: {exc}") from None

    def _migrate(self) -> None:
        with self._tx() as db:
            db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            row = db.execute("SELECT MAX(version) AS v FROM schema_version").fetchone()
            current = row["v"] or 0
            if current > SCHEMA_VERSION:
                raise StoreError(
                    f"the store {self.path} has schema version {current}, newer than this "
                    f"gcdial ({SCHEMA_VERSION}); upgrade gcdial"
                )
            for version in range(current + 1, SCHEMA_VERSION + 1):
                for statement in _split(_MIGRATIONS[version]):
                    db.execute(statement)
                db.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))

    def _seal_secrets(self) -> None:
        """Encrypt the webhook secrets an older gcdial stored in clear."""
        rows = self._db.execute("SELECT id, secret FROM webhooks").fetchall()
        changes = clear_secrets(rows, self._box)
        if changes:
            with self._tx() as db:
                db.executemany(
                    "UPDATE webhooks SET secret = ? WHERE id = ? AND secret = ?", changes
                )
            logger.warning("sealed %d webhook secret(s) stored in clear", len(changes))

    @contextmanager
    def _tx(self, *, fsync: bool = False) -> Iterator[sqlite3.Connection]:
        with self._lock:
            if fsync:
                self._db.execute("PRAGMA synchronous=FULL")
            try:
                with self._transaction() as db:
                    yield db
            finally:
                if fsync:
                    self._db.execute("PRAGMA synchronous=NORMAL")

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise StoreError(f"the store {self.path} is not writable: {exc}") from None
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            else:
                try:
                    self._db.execute("COMMIT")
                except sqlite3.Error as exc:
                    self._db.execute("ROLLBACK")
                    raise StoreError(f"the store {self.path} refused a write: {exc}") from None

    def _read(self, sql: str, args: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        with self._lock:
            try:
                return self._db.execute(sql, args).fetchall()
            except sqlite3.Error as exc:
                raise StoreError(f"the store {self.path} failed a read: {exc}") from None

    def check_writable(self) -> None:
        """Raise ``StoreError`` unless a write transaction commits now."""
        try:
            with self._tx() as db:
                db.execute("CREATE TEMP TABLE IF NOT EXISTS _probe (x INTEGER)")
                db.execute("INSERT INTO _probe VALUES (1)")
                db.execute("DELETE FROM _probe")
        except sqlite3.Error as exc:
            raise StoreError(f"the store {self.path} is not writable: {exc}") from None

    def close(self) -> None:
        """Close the connection (and the key reader's)."""
        with self._lock:
            self._db.close()
        with self._reader_lock:
            if self._reader is not None:
                self._reader.close()
                self._reader = None

    def find_api_key_inline(self, key_hash: str) -> ApiKeyRecord | None:
        """``find_api_key`` on a read-only connection of its own, for the event loop's thread
        (every request asks, and a hop to the store's thread costs more than the read): a
        point read of a small table, which a WAL reader makes without waiting for the writer
        (it shares no lock with it). ``StoreError`` when it cannot answer at once (then ask
        ``find_api_key``, which may wait)."""
        with self._reader_lock:
            try:
                if self._reader is None:
                    reader = sqlite3.connect(
                        str(self.path), isolation_level=None, check_same_thread=False, timeout=0
                    )
                    reader.row_factory = sqlite3.Row
                    reader.execute("PRAGMA query_only=1")
                    self._reader = reader
                rows = self._reader.execute(
                    "SELECT * FROM api_keys WHERE key_hash = ? AND revoked_at IS NULL", (key_hash,)
                ).fetchall()
            except sqlite3.Error as exc:
                raise StoreError(f"the store {self.path} failed a read: {exc}") from None
        return api_key_record(rows[0]) if rows else None

    def claim_idempotency(
        self,
        scope: str,
        key: str,
        fingerprint: str,
        call_id: str,
        *,
        now: float,
        ttl_s: float,
        owner: str = "",
        agent: str | None = None,
        agent_ttl_s: float = 0.0,
        durable: bool = True,
    ) -> Claim:
        """Claim ``(scope, key)`` (durably unless ``durable=False``) or report the existing claim
        (see ``Store``)."""
        with self._tx(fsync=durable) as db:
            row = db.execute(
                "SELECT * FROM idempotency WHERE scope = ? AND key = ?", (scope, key)
            ).fetchone()
            if row is not None and row["expires_at"] > now:
                return existing_claim(idempotency_record(row), fingerprint, None)
            if agent is not None:
                holder = self._claim_agent(db, agent, call_id, owner, now, agent_ttl_s)
                if holder is not None:
                    return agent_busy(scope, key, fingerprint, call_id, now, holder)
            db.execute(
                "INSERT OR REPLACE INTO idempotency (scope, key, fingerprint, call_id, state, "
                "owner, created_at, expires_at) VALUES (?, ?, ?, ?, 'in_progress', ?, ?, ?)",
                (scope, key, fingerprint, call_id, owner, now, now + ttl_s),
            )
            claimed = db.execute(
                "SELECT * FROM idempotency WHERE scope = ? AND key = ?", (scope, key)
            ).fetchone()
            return Claim("claimed", idempotency_record(claimed))

    def complete_idempotency(self, scope: str, key: str, status_code: int, body: str) -> None:
        """Record the answer for a claimed key."""
        with self._tx() as db:
            db.execute(
                "UPDATE idempotency SET state = 'done', status_code = ?, response_body = ? "
                "WHERE scope = ? AND key = ?",
                (status_code, body, scope, key),
            )

    def drop_claim(self, scope: str, key: str, call_id: str) -> None:
        """Undo a claim before anything was sent (see ``Store``)."""
        with self._tx() as db:
            db.execute(
                "DELETE FROM idempotency WHERE scope = ? AND key = ? AND call_id = ? "
                "AND state = 'in_progress'",
                (scope, key, call_id),
            )
            db.execute("DELETE FROM calls WHERE id = ? AND status = 'placing'", (call_id,))

    def purge_expired(self, now: float) -> int:
        """Delete expired keys and leases."""
        with self._tx() as db:
            keys = db.execute("DELETE FROM idempotency WHERE expires_at <= ?", (now,)).rowcount
            return keys + db.execute(PURGE_LEASES, (now,)).rowcount

    def insert_call(self, call: CallRecord, *, durable: bool = False) -> None:
        """Store a new call (``durable``: fsynced, with every earlier commit)."""
        with self._tx(fsync=durable) as db:
            db.execute(
                f"INSERT INTO calls ({CALL_COLUMNS}) "  # noqa: S608 (a constant)
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                call_args(call),
            )

    def update_call(self, call_id: str, *, now: float, **changes: Any) -> CallRecord:
        """Change fields of a call; return it as stored."""
        check_call_changes(changes)
        with self._tx() as db:
            if changes:
                sets = ", ".join(f"{name} = ?" for name in changes)
                db.execute(
                    f"UPDATE calls SET {sets}, updated_at = ? WHERE id = ?",  # noqa: S608 (names checked against CALL_FIELDS)
                    (*changes.values(), now, call_id),
                )
            row = db.execute("SELECT * FROM calls WHERE id = ?", (call_id,)).fetchone()
        if row is None:
            raise KeyError(call_id)
        return call_record(row)

    def cursor_key(self) -> bytes:
        """The key that signs list cursors (the same on every replica sharing this store)."""
        return self._box.derive(b"list-cursor")

    def list_calls(
        self,
        *,
        agent: str | None = None,
        since: float | None = None,
        status: str | None = None,
        api_key_id: str | None = None,
        limit: int = 100,
        source: str | None = None,
        campaign_id: str | None = None,
        until: float | None = None,
        outcome: str | None = None,
        label: str | None = None,
        attributes: dict[str, str] | None = None,
        before: tuple[float, str] | None = None,
    ) -> list[CallRecord]:
        """Calls newest first, filtered."""
        where: list[str] = []
        args: list[Any] = []
        # (the filter's value, its condition; a condition's ? marks all take the value)
        filters: tuple[tuple[object, str], ...] = (
            (source, "source = ?"),
            (campaign_id, "campaign_id = ?"),
            (agent, "(agent = ? OR agent_id = ?)"),
            (since, "created_at >= ?"),
            (status, "status = ?"),
            (api_key_id, "api_key_id = ?"),
            (until, "created_at < ?"),
            (outcome, "COALESCE(outcome, status) = ?"),
            (label, "json_extract(request, '$.label') = ?"),
        )
        for value, condition in filters:
            if value is not None:
                where.append(condition)
                args += [value] * condition.count("?")
        for name, value in (attributes or {}).items():
            # json_each, not a JSON path: any attribute name, with no quoting to get wrong.
            where.append(
                "EXISTS (SELECT 1 FROM json_each(request, '$.attributes') "
                "WHERE key = ? AND value = ?)"
            )
            args += [name, value]
        if before is not None:
            where.append("(created_at < ? OR (created_at = ? AND id < ?))")
            args += [before[0], before[0], before[1]]
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        rows = self._read(
            f"SELECT * FROM calls {clause} ORDER BY created_at DESC, id DESC LIMIT ?",  # noqa: S608
            (*args, limit),
        )
        return [call_record(row) for row in rows]

    def append_audit(self, entry: AuditEntry) -> int:
        """Append one audit line."""
        with self._tx() as db:
            cursor = db.execute(
                f"INSERT INTO audit ({AUDIT_COLUMNS}) "  # noqa: S608 (a constant)
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                audit_args(entry),
            )
            return int(cursor.lastrowid or 0)

    def append_event(self, type: str, call_id: str | None, data: str, *, now: float) -> Event:
        """Append an event and its outbox rows in one transaction."""
        with self._tx() as db:
            cursor = db.execute(
                "INSERT INTO events (type, call_id, data, at) VALUES (?, ?, ?, ?)",
                (type, call_id, data, now),
            )
            event_id = int(cursor.lastrowid or 0)
            db.execute(
                "INSERT INTO outbox (endpoint_id, event_id, next_attempt_at) "
                "SELECT id, ?, ? FROM webhooks WHERE active = 1 AND (events IS NULL OR "
                "EXISTS (SELECT 1 FROM json_each(webhooks.events) WHERE value = ?))",
                (event_id, now, type),
            )
        return Event(id=event_id, type=type, call_id=call_id, data=data, at=now)

    def last_event_id(self) -> int:
        """The highest event id."""
        return int(self._read("SELECT MAX(id) AS m FROM events")[0]["m"] or 0)

    def add_webhook(self, endpoint: WebhookEndpoint) -> None:
        """Register an endpoint."""
        with self._tx() as db:
            db.execute(
                "INSERT INTO webhooks (id, url, secret, created_at, api_key_id, description, "
                "active, events) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    endpoint.id,
                    endpoint.url,
                    self._box.seal(endpoint.secret),
                    endpoint.created_at,
                    endpoint.api_key_id,
                    endpoint.description,
                    int(endpoint.active),
                    json.dumps(endpoint.events) if endpoint.events is not None else None,
                ),
            )

    def list_webhooks(self) -> list[WebhookEndpoint]:
        """Active endpoints."""
        rows = self._read("SELECT * FROM webhooks WHERE active = 1 ORDER BY created_at, id")
        return [webhook_record(row, self._box) for row in rows]

    def get_webhook(self, endpoint_id: str) -> WebhookEndpoint | None:
        """One active endpoint."""
        rows = self._read("SELECT * FROM webhooks WHERE id = ? AND active = 1", (endpoint_id,))
        return webhook_record(rows[0], self._box) if rows else None

    def delete_webhook(self, endpoint_id: str) -> bool:
        """Deactivate an endpoint and drop its pending deliveries."""
        with self._tx() as db:
            changed = db.execute(
                "UPDATE webhooks SET active = 0 WHERE id = ? AND active = 1", (endpoint_id,)
            ).rowcount
            db.execute(
                "DELETE FROM outbox WHERE endpoint_id = ? AND state = 'pending'", (endpoint_id,)
            )
        return changed > 0

    def claim_deliveries(
        self, owner: str, *, now: float, lease_s: float, limit: int = 50
    ) -> list[Delivery]:
        """Lease due deliveries to ``owner``."""
        with self._tx() as db:
            rows = db.execute(
                f"SELECT {DELIVERY_COLUMNS} FROM outbox o "  # noqa: S608 (a constant)
                "JOIN events e ON e.id = o.event_id "
                "WHERE o.state = 'pending' AND o.next_attempt_at <= ? "
                "AND (o.leased_until IS NULL OR o.leased_until <= ?) "
                "ORDER BY o.next_attempt_at, o.id LIMIT ?",
                (now, now, limit),
            ).fetchall()
            for row in rows:
                db.execute(
                    "UPDATE outbox SET leased_by = ?, leased_until = ? WHERE id = ?",
                    (owner, now + lease_s, row["oid"]),
                )
        return [delivery_record(row) for row in rows]

    def ack_delivery(self, delivery_id: int, *, now: float) -> None:
        """Mark delivered."""
        with self._tx() as db:
            db.execute(
                "UPDATE outbox SET state = 'delivered', done_at = ?, attempts = attempts + 1, "
                "leased_by = NULL, leased_until = NULL WHERE id = ?",
                (now, delivery_id),
            )

    def redeliver(self, endpoint_id: str, delivery_id: int, *, now: float) -> bool:
        """Put a dead delivery back in line, due now, its retry schedule from the start."""
        with self._tx() as db:
            changed = db.execute(
                "UPDATE outbox SET state = 'pending', attempts = 0, next_attempt_at = ?, "
                "done_at = NULL WHERE id = ? AND endpoint_id = ? AND state = 'dead'",
                (now, delivery_id, endpoint_id),
            ).rowcount
        return changed > 0

    def fail_delivery(
        self, delivery_id: int, *, next_attempt_at: float | None, error: str, now: float
    ) -> None:
        """Schedule a retry, or give up when ``next_attempt_at`` is None."""
        with self._tx() as db:
            if next_attempt_at is None:
                db.execute(
                    "UPDATE outbox SET state = 'dead', done_at = ?, attempts = attempts + 1, "
                    "last_error = ?, leased_by = NULL, leased_until = NULL WHERE id = ?",
                    (now, error, delivery_id),
                )
            else:
                db.execute(
                    "UPDATE outbox SET next_attempt_at = ?, attempts = attempts + 1, "
                    "last_error = ?, leased_by = NULL, leased_until = NULL WHERE id = ?",
                    (next_attempt_at, error, delivery_id),
                )

    def add_api_key(self, record: ApiKeyRecord) -> None:
        """Store a key by hash; the name must be unique among unrevoked keys."""
        with self._tx() as db:
            taken = db.execute(
                "SELECT 1 FROM api_keys WHERE name = ? AND revoked_at IS NULL", (record.name,)
            ).fetchone()
            if taken is not None:
                raise name_taken(record.name)
            db.execute(
                f"INSERT INTO api_keys ({API_KEY_COLUMNS}) "  # noqa: S608 (a constant)
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                api_key_args(record),
            )

    def revoke_api_key(self, id_or_name: str, *, now: float) -> bool:
        """Revoke by id or name."""
        with self._tx() as db:
            changed = db.execute(
                "UPDATE api_keys SET revoked_at = ? WHERE (id = ? OR name = ?) "
                "AND revoked_at IS NULL",
                (now, id_or_name, id_or_name),
            ).rowcount
        return changed > 0

    @staticmethod
    def _claim_agent(
        db: sqlite3.Connection, agent: str, call_id: str, owner: str, now: float, ttl_s: float
    ) -> str | None:
        row = db.execute(
            "SELECT call_id FROM live_agents WHERE agent = ? AND expires_at > ?", (agent, now)
        ).fetchone()
        if row is not None and row["call_id"] != call_id:
            return str(row["call_id"])
        db.execute(
            "INSERT OR REPLACE INTO live_agents (agent, call_id, owner, claimed_at, expires_at) "
            "VALUES (?, ?, ?, ?, ?)",
            (agent, call_id, owner, now, now + ttl_s),
        )
        return None

    def claim_agent(
        self, agent: str, call_id: str, *, owner: str, now: float, ttl_s: float
    ) -> str | None:
        """Give ``agent`` to ``call_id``, or name the live call that holds it (see ``Store``)."""
        with self._tx() as db:
            return self._claim_agent(db, agent, call_id, owner, now, ttl_s)

    def take_budget(
        self, key: str, want: int, *, now: float, evidence: BudgetEvidence | None
    ) -> BudgetGrant:
        """Apply the evidence and grant tokens, under ``BEGIN IMMEDIATE`` (see ``Store``)."""
        with self._tx() as db:
            found = db.execute(
                f"SELECT {BUDGET_COLUMNS} FROM genesys_budget WHERE key = ?",  # noqa: S608
                (key,),
            ).fetchone()
            row, grant = decide(budget_row(found), want, now=now, evidence=evidence)
            db.execute(
                f"INSERT OR REPLACE INTO genesys_budget (key, {BUDGET_COLUMNS}) "  # noqa: S608
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (key, *budget_args(row)),
            )
        return grant

    def rebind_agent(self, old_call_id: str, new_call_id: str) -> None:
        """The holder's call got its final id."""
        with self._tx() as db:
            db.execute(
                "UPDATE live_agents SET call_id = ? WHERE call_id = ?", (new_call_id, old_call_id)
            )

    def release_agent(self, call_id: str) -> None:
        """Free the agent if ``call_id`` holds it."""
        with self._tx() as db:
            db.execute("DELETE FROM live_agents WHERE call_id = ?", (call_id,))

    def renew_agents(self, owner: str, *, now: float, ttl_s: float) -> int:
        """Drop ``owner``'s rows of settled calls; extend its others (but unknown calls')."""
        with self._tx() as db:
            db.execute(
                "DELETE FROM live_agents WHERE owner = ? AND call_id IN (SELECT id FROM calls "
                "WHERE status IN ('not_placed', 'refused') OR outcome IS NOT NULL)",
                (owner,),
            )
            return db.execute(
                "UPDATE live_agents SET expires_at = ? WHERE owner = ? AND expires_at > ? "
                "AND call_id NOT IN (SELECT id FROM calls WHERE status = 'unknown')",
                (now + ttl_s, owner, now),
            ).rowcount

    def live_agents(self, *, now: float) -> dict[str, str]:
        """Unexpired claims: agent -> call id."""
        rows = self._read("SELECT agent, call_id FROM live_agents WHERE expires_at > ?", (now,))
        return {str(r["agent"]): str(r["call_id"]) for r in rows}

    def add_dnc(self, entries: Sequence[DncEntry]) -> int:
        """Add numbers in one transaction; listed ones keep their entry."""
        with self._tx() as db:
            before = db.total_changes
            db.executemany(
                f"INSERT OR IGNORE INTO dnc ({DNC_COLUMNS}) VALUES (?, ?, ?, ?)",  # noqa: S608 (a constant)
                [dnc_args(entry) for entry in entries],
            )
            return db.total_changes - before

    def remove_dnc(self, number: str) -> bool:
        """Take a number off the list."""
        with self._tx() as db:
            return db.execute("DELETE FROM dnc WHERE number = ?", (number,)).rowcount > 0

    def insert_campaign(self, record: CampaignRecord, csv_text: str) -> None:
        """Keep a new campaign and its list."""
        with self._tx() as db:
            db.execute(
                f"INSERT INTO campaigns ({CAMPAIGN_COLUMNS}, csv) "  # noqa: S608 (a constant)
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (*campaign_args(record), csv_text),
            )

    def update_campaign(
        self,
        campaign_id: str,
        *,
        states: Sequence[str] | None = None,
        fence: tuple[str, str, int] | None = None,
        **changes: Any,
    ) -> CampaignRecord | None:
        """Change a campaign's fields, if in ``states`` and ``fence`` is held."""
        sql, args = campaign_update(campaign_id, states, fence, changes)
        with self._tx() as db:
            if db.execute(sql, args).rowcount == 0:
                return None
        return self.get_campaign(campaign_id)

    def acquire_lease(self, name: str, owner: str, *, now: float, ttl_s: float) -> int | None:
        """Take or renew a lease: its epoch, or None when another owner holds it."""
        with self._tx() as db:
            row = db.execute(
                "SELECT owner, expires_at, epoch FROM leases WHERE name = ?", (name,)
            ).fetchone()
            if row is None:
                epoch = 1
            elif row["expires_at"] > now:
                if row["owner"] != owner:
                    return None
                epoch = int(row["epoch"])  # a renewal
            else:
                epoch = int(row["epoch"]) + 1  # taken after it expired
            db.execute(
                "INSERT INTO leases (name, owner, expires_at, epoch) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, "
                "expires_at = excluded.expires_at, epoch = excluded.epoch",
                (name, owner, now + ttl_s, epoch),
            )
            return epoch

    def release_lease(self, name: str, owner: str) -> None:
        """Give a lease up (expired at once; the row keeps its epoch)."""
        with self._tx() as db:
            db.execute(
                "UPDATE leases SET expires_at = 0 WHERE name = ? AND owner = ?", (name, owner)
            )


def _split(script: str) -> list[str]:
    """Statements of a migration script (triggers keep their inner ``;``)."""
    statements: list[str] = []
    buffer = ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            if buffer.strip():
                statements.append(buffer.strip())
            buffer = ""
    if buffer.strip():
        statements.append(buffer.strip())
    return statements
