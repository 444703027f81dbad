"""The PostgreSQL store: several ``gcdial serve`` replicas share one database.

Chosen with ``GCDIAL_DATABASE_URL=postgresql://...``. What makes replicas safe together:

- an idempotency key is a row under a primary key, claimed with ``INSERT ... ON CONFLICT``
  and committed before the create-call leaves: a retry landing on another replica finds the row
  and replays or waits, it never dials;
- event ids come from a counter row locked until commit, so ids become visible in order (an SSE
  reader that has seen id N never misses a smaller id committed later); every append also sends
  ``NOTIFY gcdial_events`` so each replica's SSE clients wake up (``add_event_listener``);
- the webhook outbox is claimed with ``FOR UPDATE SKIP LOCKED`` plus a lease, so two replicas
  never deliver the same row at once, and a dead replica's rows are picked up when its lease ends;
- a campaign lease row with an expiry, renewed by heartbeat, taken over once it has expired.

PostgreSQL restarting or a connection cut: every operation is retried on a fresh connection for
``retry_s`` seconds, then raises ``StoreError``. Retrying is safe for the dial: a claim whose
commit was acknowledged to nobody is recognised as the caller's own (same ``call_id``) on the
retry. A claim that stays ``in_progress`` because the replica died after dialing is never
re-dialled: a retry gets "in progress" until the service's stale-claim recovery resolves it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import DictRow, dict_row

from gcdial.config import default_config_dir
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

__all__ = ["EVENTS_CHANNEL", "PostgresStore", "describe_url"]

logger = logging.getLogger("gcdial.serve")

EVENTS_CHANNEL = "gcdial_events"
DEFAULT_RETRY_S = 15.0
DEFAULT_CONNECT_TIMEOUT_S = 5.0
DEFAULT_POOL_MAX = 10
# Any constant: it only serialises two replicas migrating the same database at once.
_MIGRATION_LOCK = 0x6763_6469_616C

T = TypeVar("T")
EventListener = Callable[[int], None]

_MIGRATIONS: dict[int, str] = {
    1: """
    CREATE TABLE idempotency (
        scope text NOT NULL, key text NOT NULL, fingerprint text NOT NULL,
        call_id text NOT NULL, state text NOT NULL, owner text NOT NULL DEFAULT '',
        created_at double precision NOT NULL, expires_at double precision NOT NULL,
        status_code integer, response_body text,
        PRIMARY KEY (scope, key)
    );
    CREATE INDEX idempotency_expires ON idempotency (expires_at);
    CREATE INDEX idempotency_in_progress ON idempotency (created_at) WHERE state = 'in_progress';
    CREATE TABLE calls (
        id text PRIMARY KEY, api_key_id text NOT NULL, agent text NOT NULL,
        agent_id text, "to" text NOT NULL, status text NOT NULL,
        idempotency_key text NOT NULL DEFAULT '', conversation_id text,
        outcome text, detail text, request text NOT NULL DEFAULT '{}',
        created_at double precision NOT NULL, updated_at double precision NOT NULL
    );
    CREATE INDEX calls_created ON calls (created_at);
    CREATE INDEX calls_status ON calls (status);
    CREATE TABLE audit (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, at double precision NOT NULL,
        api_key_id text NOT NULL, action text NOT NULL, result text NOT NULL,
        call_id text, agent text, number text, detail text
    );
    CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION 'the audit log is append-only'; END $$;
    CREATE TRIGGER audit_no_change BEFORE UPDATE OR DELETE ON audit
        FOR EACH ROW EXECUTE FUNCTION audit_append_only();
    CREATE TABLE event_counter (one boolean PRIMARY KEY DEFAULT true CHECK (one),
        last_id bigint NOT NULL);
    INSERT INTO event_counter (last_id) VALUES (0);
    CREATE TABLE events (
        id bigint PRIMARY KEY, type text NOT NULL, call_id text,
        data text NOT NULL, at double precision NOT NULL
    );
    CREATE INDEX events_call ON events (call_id, id);
    CREATE TABLE webhooks (
        id text PRIMARY KEY, url text NOT NULL, secret text NOT NULL,
        created_at double precision NOT NULL, api_key_id text NOT NULL DEFAULT '',
        description text NOT NULL DEFAULT '', active boolean NOT NULL DEFAULT true
    );
    CREATE TABLE outbox (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        endpoint_id text NOT NULL, event_id bigint NOT NULL REFERENCES events (id),
        attempts integer NOT NULL DEFAULT 0, next_attempt_at double precision NOT NULL,
        leased_by text, leased_until double precision,
        state text NOT NULL DEFAULT 'pending', last_error text, done_at double precision
    );
    CREATE INDEX outbox_due ON outbox (next_attempt_at, id) WHERE state = 'pending';
    CREATE TABLE api_keys (
        id text PRIMARY KEY, name text NOT NULL, key_hash text NOT NULL UNIQUE,
        prefix text NOT NULL DEFAULT '', scopes jsonb NOT NULL, agents jsonb NOT NULL,
        rate_per_minute integer NOT NULL, created_at double precision NOT NULL,
        revoked_at double precision, extra jsonb NOT NULL DEFAULT '{}'
    );
    CREATE UNIQUE INDEX api_keys_live_name ON api_keys (name) WHERE revoked_at IS NULL;
    CREATE TABLE leases (
        name text PRIMARY KEY, owner text NOT NULL, expires_at double precision NOT NULL
    );
    """,
    2: """
    ALTER TABLE calls ADD COLUMN source text NOT NULL DEFAULT 'api';
    ALTER TABLE calls ADD COLUMN campaign_id text;
    ALTER TABLE calls ADD COLUMN attempt_id bigint;
    ALTER TABLE calls ADD COLUMN origin text NOT NULL DEFAULT '{}';
    CREATE INDEX calls_campaign ON calls (campaign_id, attempt_id);
    """,
    3: """
    ALTER TABLE calls ADD COLUMN wrapup text;
    """,
    4: """
    ALTER TABLE webhooks ADD COLUMN events text;
    CREATE INDEX outbox_endpoint ON outbox (endpoint_id, id);
    """,
    5: """
    CREATE TABLE live_agents (
        agent text PRIMARY KEY, call_id text NOT NULL, owner text NOT NULL,
        claimed_at double precision NOT NULL, expires_at double precision NOT NULL
    );
    """,
    6: """
    CREATE TABLE genesys_budget (
        key text PRIMARY KEY, win integer NOT NULL, spent integer NOT NULL,
        lim integer, reset_at double precision, started_at double precision NOT NULL,
        paused_until double precision
    );
    """,
    7: """
    CREATE TABLE dnc (
        number text PRIMARY KEY, added_at double precision NOT NULL, added_by text NOT NULL,
        reason text
    );
    CREATE INDEX dnc_added ON dnc (added_at, number);
    ALTER TABLE api_keys ADD COLUMN rules text NOT NULL DEFAULT 'enforce';
    """,
    8: """
    ALTER TABLE genesys_budget ADD COLUMN carry integer NOT NULL DEFAULT 0;
    """,
    9: """
    ALTER TABLE leases ADD COLUMN epoch bigint NOT NULL DEFAULT 0;
    UPDATE leases SET epoch = 1;
    CREATE TABLE campaigns (
        id text PRIMARY KEY, name text NOT NULL, api_key_id text NOT NULL,
        created_at double precision NOT NULL, settings text NOT NULL, state text NOT NULL,
        contacts integer, error text, stop_reason text, history text NOT NULL DEFAULT '[]',
        csv text NOT NULL
    );
    CREATE INDEX campaigns_created ON campaigns (created_at, id);
    CREATE INDEX campaigns_state ON campaigns (state);
    """,
}


class _AgentBusy(Exception):
    """Raised inside a claim's transaction to roll it back: the agent is held by ``holder``."""

    def __init__(self, holder: str) -> None:
        super().__init__(holder)
        self.holder = holder


def _claim_agent(
    conn: psycopg.Connection[DictRow],
    agent: str,
    call_id: str,
    owner: str,
    now: float,
    ttl_s: float,
) -> str | None:
    """One statement, so two replicas racing for the agent cannot both win: the row is taken
    only when absent, expired, or already this call's; otherwise the holder is read back."""
    row = conn.execute(
        "INSERT INTO live_agents (agent, call_id, owner, claimed_at, expires_at) "
        "VALUES (%s, %s, %s, %s, %s) "
        "ON CONFLICT (agent) DO UPDATE SET call_id = EXCLUDED.call_id, owner = EXCLUDED.owner, "
        "claimed_at = EXCLUDED.claimed_at, expires_at = EXCLUDED.expires_at "
        "WHERE live_agents.expires_at <= %s OR live_agents.call_id = EXCLUDED.call_id "
        "RETURNING call_id",
        (agent, call_id, owner, now, now + ttl_s, now),
    ).fetchone()
    if row is not None:
        return None
    holder = conn.execute("SELECT call_id FROM live_agents WHERE agent = %s", (agent,)).fetchone()
    return str(holder["call_id"]) if holder is not None else "unknown"


def describe_url(url: str) -> str:
    """``host:port/dbname`` of a libpq URL, for messages: never the user's password."""
    try:
        parts = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "(an unparsable database URL)"
    host = parts.get("host") or "localhost"
    port = parts.get("port") or "5432"
    return f"{host}:{port}/{parts.get('dbname') or parts.get('user') or ''}"


def _statements(script: str) -> list[str]:
    """Statements of a migration script; ``$$`` bodies keep their inner ``;``."""
    statements: list[str] = []
    buffer: list[str] = []
    in_body = False
    for piece in script.split(";"):
        buffer.append(piece)
        in_body ^= piece.count("$$") % 2 == 1
        if not in_body:
            statement = ";".join(buffer).strip()
            if statement:
                statements.append(statement)
            buffer = []
    return statements


class _NoConnection(Exception):
    """No connection could be had in time (server down, or every slot busy)."""


class _Lease:
    """One checked-out connection; give it back with ``close_or_keep``."""

    def __init__(self, pool: _Connections, conn: psycopg.Connection[DictRow]) -> None:
        self.pool = pool
        self.conn = conn

    def close_or_keep(self, *, broken: bool) -> None:
        self.pool.give_back(self.conn, broken=broken)


class _Connections:
    """A small pool: at most ``max_size`` connections, a dead one replaced on the next checkout.

    Hand-made rather than psycopg_pool because recovery after a PostgreSQL restart must be
    immediate and driven by the store's own retry deadline, not by a pool's reconnect backoff.
    """

    def __init__(self, url: str, *, max_size: int, connect_timeout_s: float) -> None:
        self._url = url
        self._connect_timeout = max(1, round(connect_timeout_s))
        self._slots = threading.BoundedSemaphore(max(max_size, 1))
        self._idle: list[psycopg.Connection[DictRow]] = []
        self._lock = threading.Lock()
        self._closed = False

    def get_one(self, timeout: float | None = None) -> _Lease:
        """A connection, reused or new; raises ``_NoConnection`` or ``psycopg.OperationalError``."""
        if self._closed:
            raise _NoConnection("the store is closed")
        wait = self._connect_timeout if timeout is None else timeout
        if not self._slots.acquire(timeout=wait):
            raise _NoConnection(f"every connection stayed busy for {wait:g}s")
        try:
            with self._lock:
                conn = self._idle.pop() if self._idle else None
            if conn is None or conn.closed:
                conn = psycopg.Connection.connect(
                    self._url,
                    autocommit=True,
                    row_factory=dict_row,
                    connect_timeout=self._connect_timeout,
                )
        except BaseException:
            self._slots.release()
            raise
        return _Lease(self, conn)

    @contextlib.contextmanager
    def connection(self, timeout: float) -> Iterator[psycopg.Connection[DictRow]]:
        """Check a connection out for the block; a broken one is closed, not reused."""
        lease = self.get_one(timeout)
        broken = True
        try:
            yield lease.conn
            broken = False
        except psycopg.OperationalError:
            raise
        except BaseException:
            broken = lease.conn.broken or lease.conn.closed
            raise
        finally:
            lease.close_or_keep(broken=broken)

    def give_back(self, conn: psycopg.Connection[DictRow], *, broken: bool) -> None:
        """Return a checked-out connection (closed instead when broken or the pool is closed)."""
        try:
            if broken or self._closed or conn.closed or conn.broken:
                conn.close()
            else:
                with self._lock:
                    self._idle.append(conn)
        finally:
            self._slots.release()

    def discard_idle(self) -> None:
        """Close every idle connection (after a failure that killed them all)."""
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            with contextlib.suppress(Exception):
                conn.close()

    def close(self) -> None:
        """Close idle connections; checked-out ones close when given back."""
        self._closed = True
        self.discard_idle()


class PostgresStore(SharedReads):
    """``Store`` on a PostgreSQL database that several replicas share; thread-safe.

    ``retry_s``: how long an operation keeps retrying through a lost connection or a restarting
    server before raising ``StoreError``. ``connect_timeout_s``: how long opening may wait.
    """

    PARAM = "%s"

    def __init__(
        self,
        url: str,
        *,
        retry_s: float = DEFAULT_RETRY_S,
        connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S,
        pool_max: int = DEFAULT_POOL_MAX,
        sleep: Callable[[float], None] = time.sleep,
        box: SecretBox | None = None,
    ) -> None:
        self._url = url
        self._box = box or load_box(default_config_dir(os.environ) / "serve.key")
        self._where = describe_url(url)
        self._retry_s = retry_s
        self._connect_timeout_s = connect_timeout_s
        self._sleep = sleep
        self._listeners: list[EventListener] = []
        self._listeners_lock = threading.Lock()
        self._listen_thread: threading.Thread | None = None
        self._closing = threading.Event()
        self._pool = _Connections(url, max_size=pool_max, connect_timeout_s=connect_timeout_s)
        try:
            self._pool.get_one().close_or_keep(broken=False)
        except (_NoConnection, psycopg.Error) as exc:
            self._pool.close()
            raise StoreError(
                f"cannot reach PostgreSQL at {self._where} within {connect_timeout_s:g}s: "
                f"{_reason(exc)}; check GCDIAL_DATABASE_URL and that the server is up"
            ) from None
        try:
            self._migrate()
        except BaseException:
            self._pool.close()
            raise

    @property
    def dsn(self) -> str:
        """The connection URL as given (it may carry a password: never show it)."""
        return self._url

    @property
    def where(self) -> str:
        """``host:port/dbname`` of the database (no user, no password)."""
        return self._where

    def _migrate(self) -> None:
        def migrate(conn: psycopg.Connection[DictRow]) -> None:
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_version (version integer NOT NULL, "
                "applied_at timestamptz NOT NULL DEFAULT now())"
            )
            row = conn.execute("SELECT MAX(version) AS v FROM schema_version").fetchone()
            current = int(row["v"] or 0) if row else 0
            if current > SCHEMA_VERSION:
                raise StoreError(
                    f"the database at {self._where} has schema version {current}, newer than "
                    f"this gcdial ({SCHEMA_VERSION}); upgrade gcdial"
                )
            for version in range(current + 1, SCHEMA_VERSION + 1):
                for statement in _statements(_MIGRATIONS[version]):
                    conn.execute(statement.encode())
                conn.execute("INSERT INTO schema_version (version) VALUES (%s)", (version,))

        self._tx(migrate)
        self._seal_secrets()

    def _seal_secrets(self) -> None:
        """Encrypt the webhook secrets an older gcdial stored in clear."""
        changes = clear_secrets(self._read("SELECT id, secret FROM webhooks"), self._box)
        if changes:
            self._tx(
                lambda conn: conn.cursor().executemany(
                    "UPDATE webhooks SET secret = %s WHERE id = %s AND secret = %s", changes
                )
            )
            logger.warning("sealed %d webhook secret(s) stored in clear", len(changes))

    # --- plumbing -------------------------------------------------------------------------

    def _attempts(self) -> Iterator[float]:
        """Seconds left for each attempt until ``retry_s`` has passed, with backoff between."""
        deadline = time.monotonic() + self._retry_s
        attempt = 0
        while True:
            attempt += 1
            yield max(deadline - time.monotonic(), 0.1)
            if time.monotonic() >= deadline or self._closing.is_set():
                return
            self._sleep(min(0.05 * 2**attempt, 1.0, max(deadline - time.monotonic(), 0.0)))

    def _tx(self, work: Callable[[psycopg.Connection[DictRow]], T]) -> T:
        """Run ``work`` in one transaction, retried on a fresh connection while the server is
        unreachable or restarting (``work`` must be safe to run again: see the module doc)."""
        last: Exception | None = None
        for left in self._attempts():
            try:
                with (
                    self._pool.connection(timeout=min(left, self._connect_timeout_s)) as conn,
                    conn.transaction(),
                ):
                    return work(conn)
            except (psycopg.OperationalError, _NoConnection) as exc:
                last = exc
                # A restart or cut kills every idle connection too: start afresh.
                self._pool.discard_idle()
            except psycopg.Error as exc:
                raise StoreError(f"PostgreSQL at {self._where} refused: {_reason(exc)}") from None
        raise StoreError(
            f"PostgreSQL at {self._where} unavailable for {self._retry_s:g}s: {_reason(last)}"
        ) from None

    def _read(self, query: str, args: tuple[Any, ...] = ()) -> list[DictRow]:
        return self._tx(lambda conn: conn.execute(query.encode(), args).fetchall())

    # --- Store ----------------------------------------------------------------------------

    def check_writable(self) -> None:
        """Raise ``StoreError`` unless a write transaction commits now."""

        def probe(conn: psycopg.Connection[DictRow]) -> None:
            conn.execute("CREATE TEMP TABLE IF NOT EXISTS _probe (x integer)")
            conn.execute("INSERT INTO _probe VALUES (1)")
            conn.execute("DELETE FROM _probe")

        self._tx(probe)

    def close(self) -> None:
        """Stop the event listener and close every connection."""
        self._closing.set()
        if self._listen_thread is not None:
            self._listen_thread.join(timeout=5)
        self._pool.close()

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
        """Claim ``(scope, key)`` durably or report the existing claim (see ``Store``; every
        commit here is durable, whatever ``durable`` says)."""

        def claim(conn: psycopg.Connection[DictRow]) -> Claim:
            row = conn.execute(
                "INSERT INTO idempotency (scope, key, fingerprint, call_id, state, owner, "
                "created_at, expires_at) VALUES (%s, %s, %s, %s, 'in_progress', %s, %s, %s) "
                "ON CONFLICT (scope, key) DO UPDATE SET fingerprint = EXCLUDED.fingerprint, "
                "call_id = EXCLUDED.call_id, state = 'in_progress', owner = EXCLUDED.owner, "
                "created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at, "
                "status_code = NULL, response_body = NULL "
                "WHERE idempotency.expires_at <= %s RETURNING *",
                (scope, key, fingerprint, call_id, owner, now, now + ttl_s, now),
            ).fetchone()
            if row is not None:
                if agent is not None:
                    holder = _claim_agent(conn, agent, call_id, owner, now, agent_ttl_s)
                    if holder is not None:  # roll the key's claim back with the transaction
                        raise _AgentBusy(holder)
                return Claim("claimed", idempotency_record(row))
            existing = conn.execute(
                "SELECT * FROM idempotency WHERE scope = %s AND key = %s", (scope, key)
            ).fetchone()
            if existing is None:  # pragma: no cover - the conflicting row cannot vanish
                raise StoreError("an idempotency key conflicted with a row that is gone")
            # Our own claim (same call id) may have committed on an attempt whose answer was lost.
            return existing_claim(idempotency_record(existing), fingerprint, call_id)

        try:
            return self._tx(claim)
        except _AgentBusy as busy:
            return agent_busy(scope, key, fingerprint, call_id, now, busy.holder)

    def complete_idempotency(self, scope: str, key: str, status_code: int, body: str) -> None:
        """Record the answer for a claimed key."""
        self._tx(
            lambda conn: conn.execute(
                "UPDATE idempotency SET state = 'done', status_code = %s, response_body = %s "
                "WHERE scope = %s AND key = %s",
                (status_code, body, scope, key),
            )
        )

    def drop_claim(self, scope: str, key: str, call_id: str) -> None:
        """Undo a claim before anything was sent (see ``Store``)."""

        def drop(conn: psycopg.Connection[DictRow]) -> None:
            conn.execute(
                "DELETE FROM idempotency WHERE scope = %s AND key = %s AND call_id = %s "
                "AND state = 'in_progress'",
                (scope, key, call_id),
            )
            conn.execute("DELETE FROM calls WHERE id = %s AND status = 'placing'", (call_id,))

        self._tx(drop)

    def purge_expired(self, now: float) -> int:
        """Delete expired keys and leases."""

        def purge(conn: psycopg.Connection[DictRow]) -> int:
            keys = conn.execute("DELETE FROM idempotency WHERE expires_at <= %s", (now,)).rowcount
            return keys + conn.execute(PURGE_LEASES.replace("?", "%s"), (now,)).rowcount

        return self._tx(purge)

    def insert_call(self, call: CallRecord, *, durable: bool = False) -> None:
        """Store a new call (a retry of our own committed insert is recognised, not doubled;
        every commit is durable, whatever ``durable`` says)."""

        def insert(conn: psycopg.Connection[DictRow]) -> None:
            row = conn.execute(
                f"INSERT INTO calls ({CALL_COLUMNS}) "  # noqa: S608 (a constant)
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
                "ON CONFLICT (id) DO NOTHING RETURNING id",
                call_args(call),
            ).fetchone()
            if row is None:
                existing = conn.execute("SELECT * FROM calls WHERE id = %s", (call.id,)).fetchone()
                same = existing is not None and (
                    existing["api_key_id"],
                    existing["idempotency_key"],
                    existing["created_at"],
                ) == (call.api_key_id, call.idempotency_key, call.created_at)
                if not same:
                    raise StoreError(f"a call with id {call.id!r} exists already")

        self._tx(insert)

    def update_call(self, call_id: str, *, now: float, **changes: Any) -> CallRecord:
        """Change fields of a call; return it as stored."""
        check_call_changes(changes)

        def update(conn: psycopg.Connection[DictRow]) -> DictRow | None:
            if changes:
                sets = sql.SQL(", ").join(
                    sql.SQL("{} = %s").format(sql.Identifier(name)) for name in changes
                )
                conn.execute(
                    sql.SQL("UPDATE calls SET {}, updated_at = %s WHERE id = %s").format(sets),
                    (*changes.values(), now, call_id),
                )
            return conn.execute("SELECT * FROM calls WHERE id = %s", (call_id,)).fetchone()

        row = self._tx(update)
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
        rows = self._tx(
            lambda conn: conn.execute(
                "SELECT * FROM calls WHERE (%(agent)s::text IS NULL OR agent = %(agent)s "
                "OR agent_id = %(agent)s) "
                "AND (%(since)s::double precision IS NULL OR created_at >= %(since)s) "
                "AND (%(status)s::text IS NULL OR status = %(status)s) "
                "AND (%(key)s::text IS NULL OR api_key_id = %(key)s) "
                "AND (%(source)s::text IS NULL OR source = %(source)s) "
                "AND (%(campaign)s::text IS NULL OR campaign_id = %(campaign)s) "
                "AND (%(until)s::double precision IS NULL OR created_at < %(until)s) "
                "AND (%(outcome)s::text IS NULL OR COALESCE(outcome, status) = %(outcome)s) "
                "AND (%(label)s::text IS NULL OR request::jsonb ->> 'label' = %(label)s) "
                "AND (%(attrs)s::jsonb IS NULL OR "
                "COALESCE(request::jsonb -> 'attributes', '{}'::jsonb) @> %(attrs)s::jsonb) "
                "AND (%(before_at)s::double precision IS NULL OR created_at < %(before_at)s "
                "OR (created_at = %(before_at)s AND id < %(before_id)s)) "
                "ORDER BY created_at DESC, id DESC LIMIT %(limit)s",
                {
                    "until": until,
                    "outcome": outcome,
                    "label": label,
                    "attrs": json.dumps(attributes) if attributes else None,
                    "before_at": before[0] if before else None,
                    "before_id": before[1] if before else None,
                    "agent": agent,
                    "since": since,
                    "status": status,
                    "key": api_key_id,
                    "source": source,
                    "campaign": campaign_id,
                    "limit": limit,
                },
            ).fetchall()
        )
        return [call_record(row) for row in rows]

    def append_audit(self, entry: AuditEntry) -> int:
        """Append one audit line."""

        def append(conn: psycopg.Connection[DictRow]) -> int:
            row = conn.execute(
                f"INSERT INTO audit ({AUDIT_COLUMNS}) "  # noqa: S608 (a constant)
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
                audit_args(entry),
            ).fetchone()
            return int(row["id"]) if row else 0

        return self._tx(append)

    def append_event(self, type: str, call_id: str | None, data: str, *, now: float) -> Event:
        """Append an event and its outbox rows in one transaction, and notify every replica."""

        def append(conn: psycopg.Connection[DictRow]) -> int:
            # The counter row stays locked until commit: ids become visible in id order.
            row = conn.execute(
                "UPDATE event_counter SET last_id = last_id + 1 RETURNING last_id"
            ).fetchone()
            assert row is not None
            event_id = int(row["last_id"])
            conn.execute(
                "INSERT INTO events (id, type, call_id, data, at) VALUES (%s, %s, %s, %s, %s)",
                (event_id, type, call_id, data, now),
            )
            conn.execute(
                "INSERT INTO outbox (endpoint_id, event_id, next_attempt_at) "
                "SELECT id, %s, %s FROM webhooks WHERE active "
                "AND (events IS NULL OR events::jsonb ? %s)",
                (event_id, now, type),
            )
            conn.execute("SELECT pg_notify(%s, %s)", (EVENTS_CHANNEL, str(event_id)))
            return event_id

        event_id = self._tx(append)
        return Event(id=event_id, type=type, call_id=call_id, data=data, at=now)

    def last_event_id(self) -> int:
        """The highest event id."""
        return int(self._read("SELECT last_id FROM event_counter")[0]["last_id"])

    def add_webhook(self, endpoint: WebhookEndpoint) -> None:
        """Register an endpoint."""
        self._tx(
            lambda conn: conn.execute(
                "INSERT INTO webhooks (id, url, secret, created_at, api_key_id, description, "
                "active, events) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) "
                "ON CONFLICT (id) DO NOTHING",
                (
                    endpoint.id,
                    endpoint.url,
                    self._box.seal(endpoint.secret),
                    endpoint.created_at,
                    endpoint.api_key_id,
                    endpoint.description,
                    endpoint.active,
                    json.dumps(endpoint.events) if endpoint.events is not None else None,
                ),
            )
        )

    def list_webhooks(self) -> list[WebhookEndpoint]:
        """Active endpoints."""
        rows = self._read("SELECT * FROM webhooks WHERE active ORDER BY created_at, id")
        return [webhook_record(row, self._box) for row in rows]

    def get_webhook(self, endpoint_id: str) -> WebhookEndpoint | None:
        """One active endpoint."""
        rows = self._read("SELECT * FROM webhooks WHERE id = %s AND active", (endpoint_id,))
        return webhook_record(rows[0], self._box) if rows else None

    def delete_webhook(self, endpoint_id: str) -> bool:
        """Deactivate an endpoint and drop its pending deliveries."""

        def delete(conn: psycopg.Connection[DictRow]) -> int:
            changed = conn.execute(
                "UPDATE webhooks SET active = false WHERE id = %s AND active", (endpoint_id,)
            ).rowcount
            conn.execute(
                "DELETE FROM outbox WHERE endpoint_id = %s AND state = 'pending'", (endpoint_id,)
            )
            return changed

        return self._tx(delete) > 0

    def claim_deliveries(
        self, owner: str, *, now: float, lease_s: float, limit: int = 50
    ) -> list[Delivery]:
        """Lease due deliveries to ``owner``; rows another replica is claiming are skipped."""

        def claim(conn: psycopg.Connection[DictRow]) -> list[DictRow]:
            conn.execute(
                "CREATE TEMP TABLE IF NOT EXISTS _claimed (id bigint) ON COMMIT DELETE ROWS"
            )
            conn.execute(
                "WITH due AS (SELECT id FROM outbox WHERE state = 'pending' "
                "AND next_attempt_at <= %(now)s "
                "AND (leased_until IS NULL OR leased_until <= %(now)s) "
                "ORDER BY next_attempt_at, id LIMIT %(limit)s FOR UPDATE SKIP LOCKED), "
                "leased AS (UPDATE outbox o SET leased_by = %(owner)s, "
                "leased_until = %(until)s FROM due WHERE o.id = due.id RETURNING o.id) "
                "INSERT INTO _claimed SELECT id FROM leased",
                {"now": now, "limit": limit, "owner": owner, "until": now + lease_s},
            )
            return conn.execute(
                f"SELECT {DELIVERY_COLUMNS} FROM outbox o "  # noqa: S608 (a constant)
                "JOIN events e ON e.id = o.event_id JOIN _claimed c ON c.id = o.id "
                "ORDER BY o.next_attempt_at, o.id"
            ).fetchall()

        return [delivery_record(row) for row in self._tx(claim)]

    def ack_delivery(self, delivery_id: int, *, now: float) -> None:
        """Mark delivered."""
        self._tx(
            lambda conn: conn.execute(
                "UPDATE outbox SET state = 'delivered', done_at = %s, attempts = attempts + 1, "
                "leased_by = NULL, leased_until = NULL WHERE id = %s AND state = 'pending'",
                (now, delivery_id),
            )
        )

    def redeliver(self, endpoint_id: str, delivery_id: int, *, now: float) -> bool:
        """Put a dead delivery back in line, due now, its retry schedule from the start."""
        changed = self._tx(
            lambda conn: (
                conn.execute(
                    "UPDATE outbox SET state = 'pending', attempts = 0, next_attempt_at = %s, "
                    "done_at = NULL WHERE id = %s AND endpoint_id = %s AND state = 'dead'",
                    (now, delivery_id, endpoint_id),
                ).rowcount
            )
        )
        return bool(changed)

    def fail_delivery(
        self, delivery_id: int, *, next_attempt_at: float | None, error: str, now: float
    ) -> None:
        """Schedule a retry, or give up when ``next_attempt_at`` is None."""
        if next_attempt_at is None:
            query = (
                "UPDATE outbox SET state = 'dead', done_at = %s, attempts = attempts + 1, "
                "last_error = %s, leased_by = NULL, leased_until = NULL "
                "WHERE id = %s AND state = 'pending'"
            )
            args: tuple[Any, ...] = (now, error, delivery_id)
        else:
            query = (
                "UPDATE outbox SET next_attempt_at = %s, attempts = attempts + 1, "
                "last_error = %s, leased_by = NULL, leased_until = NULL "
                "WHERE id = %s AND state = 'pending'"
            )
            args = (next_attempt_at, error, delivery_id)
        self._tx(lambda conn: conn.execute(query.encode(), args))

    def add_api_key(self, record: ApiKeyRecord) -> None:
        """Store a key by hash; the name must be unique among unrevoked keys."""

        def add(conn: psycopg.Connection[DictRow]) -> None:
            taken = conn.execute(
                "SELECT key_hash FROM api_keys WHERE name = %s AND revoked_at IS NULL",
                (record.name,),
            ).fetchone()
            if taken is not None:
                if taken["key_hash"] == record.key_hash:
                    return  # our own insert, committed on an attempt whose answer was lost
                raise name_taken(record.name)
            conn.execute(
                f"INSERT INTO api_keys ({API_KEY_COLUMNS}) "  # noqa: S608 (a constant)
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                api_key_args(record),
            )

        try:
            self._tx(add)
        except StoreError as exc:
            if "api_keys_live_name" in str(exc):
                raise name_taken(record.name) from None
            raise

    def revoke_api_key(self, id_or_name: str, *, now: float) -> bool:
        """Revoke by id or name."""
        changed = self._tx(
            lambda conn: (
                conn.execute(
                    "UPDATE api_keys SET revoked_at = %s WHERE (id = %s OR name = %s) "
                    "AND revoked_at IS NULL",
                    (now, id_or_name, id_or_name),
                ).rowcount
            )
        )
        return changed > 0

    def claim_agent(
        self, agent: str, call_id: str, *, owner: str, now: float, ttl_s: float
    ) -> str | None:
        """Give ``agent`` to ``call_id``, or name the live call that holds it (see ``Store``)."""
        return self._tx(lambda conn: _claim_agent(conn, agent, call_id, owner, now, ttl_s))

    def take_budget(
        self, key: str, want: int, *, now: float, evidence: BudgetEvidence | None
    ) -> BudgetGrant:
        """Apply the evidence and grant tokens on the row locked ``FOR UPDATE`` (see ``Store``);
        replicas taking at once queue on the row, never both spend the same tokens."""

        def take(conn: psycopg.Connection[DictRow]) -> BudgetGrant:
            select = f"SELECT {BUDGET_COLUMNS} FROM genesys_budget WHERE key = %s FOR UPDATE"  # noqa: S608
            found = conn.execute(select.encode(), (key,)).fetchone()
            if found is None:
                conn.execute(
                    "INSERT INTO genesys_budget (key, win, spent, started_at) "
                    "VALUES (%s, 0, 0, %s) ON CONFLICT (key) DO NOTHING",
                    (key, now),
                )
                found = conn.execute(select.encode(), (key,)).fetchone()
            row, grant = decide(budget_row(found), want, now=now, evidence=evidence)
            conn.execute(
                "UPDATE genesys_budget SET win = %s, spent = %s, lim = %s, reset_at = %s, "
                "started_at = %s, paused_until = %s, carry = %s WHERE key = %s",
                (*budget_args(row), key),
            )
            return grant

        return self._tx(take)

    def rebind_agent(self, old_call_id: str, new_call_id: str) -> None:
        """The holder's call got its final id."""
        self._tx(
            lambda conn: conn.execute(
                "UPDATE live_agents SET call_id = %s WHERE call_id = %s", (new_call_id, old_call_id)
            )
        )

    def release_agent(self, call_id: str) -> None:
        """Free the agent if ``call_id`` holds it."""
        self._tx(
            lambda conn: conn.execute("DELETE FROM live_agents WHERE call_id = %s", (call_id,))
        )

    def renew_agents(self, owner: str, *, now: float, ttl_s: float) -> int:
        """Drop ``owner``'s rows of settled calls; extend its others (but unknown calls')."""

        def renew(conn: psycopg.Connection[DictRow]) -> int:
            conn.execute(
                "DELETE FROM live_agents WHERE owner = %s AND call_id IN (SELECT id FROM calls "
                "WHERE status IN ('not_placed', 'refused') OR outcome IS NOT NULL)",
                (owner,),
            )
            return conn.execute(
                "UPDATE live_agents SET expires_at = %s WHERE owner = %s AND expires_at > %s "
                "AND call_id NOT IN (SELECT id FROM calls WHERE status = 'unknown')",
                (now + ttl_s, owner, now),
            ).rowcount

        return self._tx(renew)

    def live_agents(self, *, now: float) -> dict[str, str]:
        """Unexpired claims: agent -> call id."""
        rows = self._read("SELECT agent, call_id FROM live_agents WHERE expires_at > %s", (now,))
        return {str(r["agent"]): str(r["call_id"]) for r in rows}

    def add_dnc(self, entries: Sequence[DncEntry]) -> int:
        """Add numbers in one transaction; listed ones keep their entry (safe to run again)."""
        rows = [dnc_args(entry) for entry in entries]

        def add(conn: psycopg.Connection[DictRow]) -> int:
            added = 0
            for row in rows:
                added += conn.execute(
                    f"INSERT INTO dnc ({DNC_COLUMNS}) VALUES (%s, %s, %s, %s) "  # noqa: S608 (a constant)
                    "ON CONFLICT (number) DO NOTHING",
                    row,
                ).rowcount
            return added

        return self._tx(add)

    def remove_dnc(self, number: str) -> bool:
        """Take a number off the list."""
        changed = self._tx(
            lambda conn: conn.execute("DELETE FROM dnc WHERE number = %s", (number,)).rowcount
        )
        return changed > 0

    def insert_campaign(self, record: CampaignRecord, csv_text: str) -> None:
        """Keep a new campaign and its list (a retry of our own committed insert is kept)."""
        args = (*campaign_args(record), csv_text)
        self._tx(
            lambda conn: conn.execute(
                f"INSERT INTO campaigns ({CAMPAIGN_COLUMNS}, csv) "  # noqa: S608 (a constant)
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
                "ON CONFLICT (id) DO NOTHING",
                args,
            )
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
        changed = self._tx(lambda conn: conn.execute(sql.replace("?", "%s"), args).rowcount)
        return self.get_campaign(campaign_id) if changed else None

    def acquire_lease(self, name: str, owner: str, *, now: float, ttl_s: float) -> int | None:
        """Take, renew (heartbeat) or take over an expired lease, in one statement: its epoch
        (kept by a renewal, the next one otherwise), or None when another owner holds it."""
        rows = self._read(
            "INSERT INTO leases (name, owner, expires_at, epoch) VALUES (%s, %s, %s, 1) "
            "ON CONFLICT (name) DO UPDATE SET owner = EXCLUDED.owner, "
            "expires_at = EXCLUDED.expires_at, epoch = CASE "
            "WHEN leases.owner = EXCLUDED.owner AND leases.expires_at > %s THEN leases.epoch "
            "ELSE leases.epoch + 1 END "
            "WHERE leases.owner = EXCLUDED.owner OR leases.expires_at <= %s RETURNING epoch",
            (name, owner, now + ttl_s, now, now),
        )
        return int(rows[0]["epoch"]) if rows else None

    def release_lease(self, name: str, owner: str) -> None:
        """Give a lease up (expired at once; the row keeps its epoch)."""
        self._tx(
            lambda conn: conn.execute(
                "UPDATE leases SET expires_at = 0 WHERE name = %s AND owner = %s", (name, owner)
            )
        )

    # --- cross-replica event wake-ups ---------------------------------------------------------

    def add_event_listener(self, listener: EventListener) -> Callable[[], None]:
        """Call ``listener(event_id)`` from a background thread whenever any replica appends an
        event (LISTEN/NOTIFY), and once with ``last_event_id()`` after each reconnection, since
        notifications sent while disconnected are lost: a listener re-reads ``events_after``
        from its own last id. Returns a function that removes the listener."""
        with self._listeners_lock:
            self._listeners.append(listener)
            if self._listen_thread is None:
                ready = threading.Event()
                self._listen_thread = threading.Thread(
                    target=self._listen, args=(ready,), name="gcdial-pg-listen", daemon=True
                )
                self._listen_thread.start()
                ready.wait(timeout=10)

        def remove() -> None:
            with self._listeners_lock, contextlib.suppress(ValueError):
                self._listeners.remove(listener)

        return remove

    def _notify_listeners(self, event_id: int) -> None:
        with self._listeners_lock:
            listeners = list(self._listeners)
        for listener in listeners:
            with contextlib.suppress(Exception):
                listener(event_id)

    def _listen(self, ready: threading.Event) -> None:
        delay = 0.1
        while not self._closing.is_set():
            try:
                with psycopg.connect(self._url, autocommit=True, connect_timeout=5) as conn:
                    conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(EVENTS_CHANNEL)))
                    delay = 0.1
                    ready.set()
                    row = conn.execute("SELECT last_id FROM event_counter").fetchone()
                    self._notify_listeners(int(row[0]) if row else 0)
                    while not self._closing.is_set():
                        for notice in conn.notifies(timeout=0.5):
                            with contextlib.suppress(ValueError):
                                self._notify_listeners(int(notice.payload))
            except psycopg.Error:
                ready.set()
                self._closing.wait(delay)
                delay = min(delay * 2, 2.0)


def _reason(exc: BaseException | None) -> str:
    """The first line of a driver error, which names neither the URL nor a password."""
    if exc is None:
        return "no attempt was made"
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
