"""What both store backends do alike: rows to records, records to row values, claim verdicts,
and the reads whose SQL both dialects share (``SharedReads``).

The SQLite and PostgreSQL stores differ only in the SQL that differs, transactions and connection
handling; what is here is shared so the two cannot drift apart.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import fields
from typing import Any, ClassVar, Protocol, TypeVar

from gcdial.serve import store
from gcdial.serve.secretbox import SecretBox

__all__ = [
    "API_KEY_COLUMNS",
    "AUDIT_COLUMNS",
    "CALL_COLUMNS",
    "CAMPAIGN_COLUMNS",
    "DELIVERY_COLUMNS",
    "DNC_COLUMNS",
    "PURGE_LEASES",
    "Row",
    "SharedReads",
    "api_key_args",
    "api_key_record",
    "audit_args",
    "audit_entry",
    "call_args",
    "call_record",
    "campaign_args",
    "campaign_record",
    "campaign_update",
    "check_call_changes",
    "delivery_record",
    "dnc_args",
    "dnc_entry",
    "event_record",
    "existing_claim",
    "idempotency_record",
    "name_taken",
    "webhook_record",
]

CALL_FIELDS = ("status", "conversation_id", "outcome", "detail", "agent_id", "wrapup")
CALL_COLUMNS = (
    'id, api_key_id, agent, agent_id, "to", status, idempotency_key, conversation_id, outcome, '
    "detail, request, created_at, updated_at, source, campaign_id, attempt_id, origin"
)
# An outbox row joined with its event (``outbox o JOIN events e``); the outbox id is ``oid``.
DELIVERY_COLUMNS = (
    "o.id AS oid, o.endpoint_id, o.event_id, o.attempts, o.next_attempt_at, o.last_error, "
    "o.state, o.done_at, "
    "e.id, e.type, e.call_id, e.data, e.at"
)
AUDIT_COLUMNS = "at, api_key_id, action, result, call_id, agent, number, detail"
API_KEY_COLUMNS = (
    "id, name, key_hash, prefix, scopes, agents, rate_per_minute, created_at, revoked_at, extra, "
    "rules"
)
DNC_COLUMNS = "number, added_at, added_by, reason"
CAMPAIGN_COLUMNS = (
    "id, name, api_key_id, created_at, settings, state, contacts, error, stop_reason, history"
)
# Expired leases go, but a campaign's: its row keeps the epoch, so the next holder's is higher.
PURGE_LEASES = "DELETE FROM leases WHERE expires_at <= ? AND substr(name, 1, 9) <> 'campaign:'"
# The campaign states a replica runs (or is ending): with no live lease, their replica died.
ORPHAN_STATES = ("running", "pausing", "stopping")


class Row(Protocol):
    """A result row addressable by column name (``sqlite3.Row``, psycopg's ``DictRow``)."""

    def __getitem__(self, key: str, /) -> Any: ...


def _json(value: Any) -> Any:
    """A JSON column: text in SQLite, already decoded (``jsonb``) in PostgreSQL."""
    return json.loads(value) if isinstance(value, str) else value


R = TypeVar("R")


def _from_row(make: Callable[..., R], names: Sequence[str], row: Row, **given: Any) -> R:
    """A record from the columns named as its fields (``given`` ones converted by the caller)."""
    return make(**{name: given[name] if name in given else row[name] for name in names})


def _names(record_type: Any) -> tuple[str, ...]:
    return tuple(field.name for field in fields(record_type))


def _column_names(columns: str) -> tuple[str, ...]:
    return tuple(column.strip().strip('"') for column in columns.split(","))


def _values(record: Any, columns: str, **given: Any) -> tuple[Any, ...]:
    """The values of ``columns`` (a column list as in SQL) from a record's fields of those names."""
    return tuple(
        given[name] if name in given else getattr(record, name) for name in _column_names(columns)
    )


def idempotency_record(row: Row) -> store.IdempotencyRecord:
    """An ``idempotency`` row."""
    return _from_row(store.IdempotencyRecord, _names(store.IdempotencyRecord), row)


def existing_claim(
    found: store.IdempotencyRecord, fingerprint: str, own_call_id: str | None
) -> store.Claim:
    """The verdict on an unexpired claim someone made before: another body is a ``mismatch``, an
    answered one a ``replay``; one still being placed is ``in_progress`` unless its call id is
    ``own_call_id`` (our own claim, committed on an attempt whose answer was lost)."""
    if found.fingerprint != fingerprint:
        return store.Claim("mismatch", found)
    if found.state == "done":
        return store.Claim("replay", found)
    if own_call_id is not None and found.call_id == own_call_id:
        return store.Claim("claimed", found)
    return store.Claim("in_progress", found)


def agent_busy(
    scope: str, key: str, fingerprint: str, call_id: str, now: float, holder: str
) -> store.Claim:
    """The answer when the agent has a live call: nothing was claimed (the record is the claim
    that was not made), ``live_call`` names the holder."""
    record = store.IdempotencyRecord(scope, key, fingerprint, call_id, "in_progress", now, now)
    return store.Claim("agent_busy", record, live_call=holder)


def call_record(row: Row) -> store.CallRecord:
    """A ``calls`` row."""
    return _from_row(store.CallRecord, _names(store.CallRecord), row)


def call_args(call: store.CallRecord) -> tuple[Any, ...]:
    """The values of ``CALL_COLUMNS`` for a new call."""
    return _values(call, CALL_COLUMNS)


def check_call_changes(changes: dict[str, Any]) -> None:
    """Raise ``ValueError`` unless every changed field may be changed (``CALL_FIELDS``)."""
    unknown = set(changes) - set(CALL_FIELDS)
    if unknown:
        raise ValueError(f"cannot change call fields {sorted(unknown)}")


def audit_entry(row: Row) -> store.AuditEntry:
    """An ``audit`` row."""
    return _from_row(store.AuditEntry, _names(store.AuditEntry), row)


def audit_args(entry: store.AuditEntry) -> tuple[Any, ...]:
    """The values of ``AUDIT_COLUMNS`` for a new line."""
    return _values(entry, AUDIT_COLUMNS)


def event_record(row: Row) -> store.Event:
    """An ``events`` row (or the event columns of an outbox join)."""
    return store.Event(
        id=row["id"], type=row["type"], call_id=row["call_id"], data=row["data"], at=row["at"]
    )


def delivery_record(row: Row) -> store.Delivery:
    """An outbox row joined with its event; the outbox id is selected as ``oid``."""
    return store.Delivery(
        id=row["oid"],
        endpoint_id=row["endpoint_id"],
        event_id=row["event_id"],
        attempts=row["attempts"],
        next_attempt_at=row["next_attempt_at"],
        last_error=row["last_error"],
        state=row["state"],
        done_at=row["done_at"],
        event=event_record(row),
    )


def webhook_record(row: Row, box: SecretBox) -> store.WebhookEndpoint:
    """A ``webhooks`` row, its secret opened with ``box``."""
    names = _names(store.WebhookEndpoint)
    return _from_row(
        store.WebhookEndpoint,
        names,
        row,
        active=bool(row["active"]),
        secret=box.open(row["secret"]),
        events=tuple(json.loads(row["events"])) if row["events"] is not None else None,
    )


def clear_secrets(rows: Sequence[Row], box: SecretBox) -> list[tuple[str, str, str]]:
    """``(sealed, id, clear)`` for each ``webhooks`` row whose secret is still in clear, to
    update with ``... SET secret = sealed WHERE id = id AND secret = clear``."""
    return [
        (box.seal(row["secret"]), row["id"], row["secret"])
        for row in rows
        if not box.is_sealed(row["secret"])
    ]


def api_key_record(row: Row) -> store.ApiKeyRecord:
    """An ``api_keys`` row."""
    return _from_row(
        store.ApiKeyRecord,
        _names(store.ApiKeyRecord),
        row,
        scopes=tuple(_json(row["scopes"])),
        agents=tuple(_json(row["agents"])),
        extra=dict(_json(row["extra"])),
    )


def api_key_args(record: store.ApiKeyRecord) -> tuple[Any, ...]:
    """The values of ``API_KEY_COLUMNS`` for a new key (lists and extras as JSON text)."""
    return _values(
        record,
        API_KEY_COLUMNS,
        scopes=json.dumps(list(record.scopes)),
        agents=json.dumps(list(record.agents)),
        extra=json.dumps(record.extra),
    )


def dnc_entry(row: Row) -> store.DncEntry:
    """A ``dnc`` row."""
    return _from_row(store.DncEntry, _names(store.DncEntry), row)


def dnc_args(entry: store.DncEntry) -> tuple[Any, ...]:
    """The values of ``DNC_COLUMNS`` for a new entry."""
    return _values(entry, DNC_COLUMNS)


def name_taken(name: str) -> ValueError:
    """The error for a second unrevoked key under one name."""
    return ValueError(f"an API key named {name!r} exists; revoke it first")


def campaign_record(row: Row) -> store.CampaignRecord:
    """A campaign from its row (``settings`` and ``history`` are JSON)."""
    return store.CampaignRecord(
        id=row["id"],
        name=row["name"],
        api_key_id=row["api_key_id"],
        created_at=float(row["created_at"]),
        settings=dict(_json(row["settings"])),
        state=row["state"],
        contacts=None if row["contacts"] is None else int(row["contacts"]),
        error=row["error"],
        stop_reason=row["stop_reason"],
        history=[str(item) for item in _json(row["history"])],
    )


def campaign_args(record: store.CampaignRecord) -> tuple[Any, ...]:
    """The row values of ``CAMPAIGN_COLUMNS``."""
    return (
        record.id,
        record.name,
        record.api_key_id,
        record.created_at,
        json.dumps(record.settings),
        record.state,
        record.contacts,
        record.error,
        record.stop_reason,
        json.dumps(record.history),
    )


def campaign_changes(changes: dict[str, Any]) -> dict[str, Any]:
    """``update_campaign``'s changes as column values (JSON columns dumped); an unknown field is
    a programming error."""
    unknown = set(changes) - set(store.CAMPAIGN_FIELDS)
    if unknown:
        raise ValueError(f"not campaign fields: {sorted(unknown)}")
    if "state" in changes and changes["state"] not in store.CAMPAIGN_STATES:
        raise ValueError(f"not a campaign state: {changes['state']!r}")
    return {
        name: json.dumps(value) if name in ("settings", "history") else value
        for name, value in changes.items()
    }


def campaign_update(
    campaign_id: str,
    states: Sequence[str] | None,
    fence: tuple[str, str, int] | None,
    changes: dict[str, Any],
) -> tuple[str, tuple[Any, ...]]:
    """``update_campaign``'s statement (``?`` markers) and its values."""
    values = campaign_changes(changes)
    if not values:
        raise ValueError("update_campaign needs a change")
    sql = f"UPDATE campaigns SET {', '.join(f'{name} = ?' for name in values)} WHERE id = ?"  # noqa: S608 (field names checked)
    args: list[Any] = [*values.values(), campaign_id]
    if states is not None:
        sql += f" AND state IN ({', '.join('?' for _ in states)})"
        args.extend(states)
    if fence is not None:
        sql += " AND EXISTS (SELECT 1 FROM leases WHERE name = ? AND owner = ? AND epoch = ?)"
        args.extend(fence)
    return sql, tuple(args)


class SharedReads:
    """The ``Store`` reads written once: their SQL is the same in both dialects but for the
    parameter marker, written ``?`` here and swapped for the backend's ``PARAM``."""

    PARAM: ClassVar[str] = "?"

    def _read(self, query: str, args: tuple[Any, ...] = ()) -> Sequence[Row]:
        """Run one read in the backend (its own errors become ``StoreError``)."""
        raise NotImplementedError

    def _select(self, query: str, args: tuple[Any, ...] = ()) -> Sequence[Row]:
        return self._read(query.replace("?", self.PARAM), args)

    def schema_version(self) -> int:
        """The schema version of the open store."""
        return int(self._select("SELECT MAX(version) AS v FROM schema_version")[0]["v"] or 0)

    def get_idempotency(self, scope: str, key: str) -> store.IdempotencyRecord | None:
        """The record for a key."""
        rows = self._select("SELECT * FROM idempotency WHERE scope = ? AND key = ?", (scope, key))
        return idempotency_record(rows[0]) if rows else None

    def stale_claims(self, older_than: float) -> list[store.IdempotencyRecord]:
        """Claims still in progress created before ``older_than``."""
        rows = self._select(
            "SELECT * FROM idempotency WHERE state = 'in_progress' AND created_at < ? "
            "ORDER BY created_at",
            (older_than,),
        )
        return [idempotency_record(row) for row in rows]

    def get_call(self, call_id: str) -> store.CallRecord | None:
        """One call."""
        rows = self._select("SELECT * FROM calls WHERE id = ?", (call_id,))
        return call_record(rows[0]) if rows else None

    def calls_with_status(self, status: str, limit: int = 1000) -> list[store.CallRecord]:
        """Calls currently in ``status``."""
        rows = self._select(
            "SELECT * FROM calls WHERE status = ? ORDER BY created_at LIMIT ?", (status, limit)
        )
        return [call_record(row) for row in rows]

    def list_audit(self, *, after_id: int = 0, limit: int = 1000) -> list[store.AuditEntry]:
        """Audit lines in order."""
        rows = self._select(
            "SELECT * FROM audit WHERE id > ? ORDER BY id LIMIT ?", (after_id, limit)
        )
        return [audit_entry(row) for row in rows]

    def events_after(
        self, after_id: int, *, call_id: str | None = None, limit: int = 500
    ) -> list[store.Event]:
        """Events after ``after_id``, oldest first."""
        if call_id is None:
            rows = self._select(
                "SELECT * FROM events WHERE id > ? ORDER BY id LIMIT ?", (after_id, limit)
            )
        else:
            rows = self._select(
                "SELECT * FROM events WHERE call_id = ? AND id > ? ORDER BY id LIMIT ?",
                (call_id, after_id, limit),
            )
        return [event_record(row) for row in rows]

    def outbox_backlog(self) -> int:
        """Pending deliveries."""
        return int(self._select("SELECT COUNT(*) AS n FROM outbox WHERE state = 'pending'")[0]["n"])

    def list_deliveries(
        self, endpoint_id: str, *, state: str | None = None, limit: int = 100
    ) -> list[store.Delivery]:
        """One endpoint's deliveries, newest first, in ``state`` if given."""
        rows = self._select(
            f"SELECT {DELIVERY_COLUMNS} FROM outbox o JOIN events e ON e.id = o.event_id "  # noqa: S608 (a constant)
            "WHERE o.endpoint_id = ? AND (CAST(? AS TEXT) IS NULL OR o.state = ?) "
            "ORDER BY o.id DESC LIMIT ?",
            (endpoint_id, state, state, limit),
        )
        return [delivery_record(row) for row in rows]

    def dead_deliveries(self, limit: int = 100) -> list[store.Delivery]:
        """Deliveries given up on, newest first."""
        rows = self._select(
            f"SELECT {DELIVERY_COLUMNS} FROM outbox o JOIN events e ON e.id = o.event_id "  # noqa: S608 (a constant)
            "WHERE o.state = 'dead' ORDER BY o.id DESC LIMIT ?",
            (limit,),
        )
        return [delivery_record(row) for row in rows]

    def find_api_key(self, key_hash: str) -> store.ApiKeyRecord | None:
        """The unrevoked key with this hash."""
        rows = self._select(
            "SELECT * FROM api_keys WHERE key_hash = ? AND revoked_at IS NULL", (key_hash,)
        )
        return api_key_record(rows[0]) if rows else None

    def get_api_key(self, key_id: str) -> store.ApiKeyRecord | None:
        """The unrevoked key with this id (a page session names its key by id)."""
        rows = self._select("SELECT * FROM api_keys WHERE id = ? AND revoked_at IS NULL", (key_id,))
        return api_key_record(rows[0]) if rows else None

    def list_api_keys(self) -> list[store.ApiKeyRecord]:
        """Every key."""
        rows = self._select("SELECT * FROM api_keys ORDER BY created_at, id")
        return [api_key_record(row) for row in rows]

    def dnc_listed(self, numbers: Sequence[str]) -> dict[str, store.DncEntry]:
        """The entries of those of ``numbers`` on the do-not-call list."""
        found: dict[str, store.DncEntry] = {}
        for number in dict.fromkeys(numbers):
            rows = self._select("SELECT * FROM dnc WHERE number = ?", (number,))
            if rows:
                found[number] = dnc_entry(rows[0])
        return found

    def list_dnc(
        self, *, limit: int = 100, before: tuple[float, str] | None = None
    ) -> list[store.DncEntry]:
        """The list, newest first."""
        if before is None:
            rows = self._select(
                "SELECT * FROM dnc ORDER BY added_at DESC, number DESC LIMIT ?", (limit,)
            )
        else:
            rows = self._select(
                "SELECT * FROM dnc WHERE added_at < ? OR (added_at = ? AND number < ?) "
                "ORDER BY added_at DESC, number DESC LIMIT ?",
                (before[0], before[0], before[1], limit),
            )
        return [dnc_entry(row) for row in rows]

    def get_campaign(self, campaign_id: str) -> store.CampaignRecord | None:
        """One campaign."""
        rows = self._select(
            f"SELECT {CAMPAIGN_COLUMNS} FROM campaigns WHERE id = ?",  # noqa: S608 (a constant)
            (campaign_id,),
        )
        return campaign_record(rows[0]) if rows else None

    def campaign_csv(self, campaign_id: str) -> str | None:
        """The campaign's uploaded list."""
        rows = self._select("SELECT csv FROM campaigns WHERE id = ?", (campaign_id,))
        return str(rows[0]["csv"]) if rows else None

    def list_campaigns(
        self, *, api_key_id: str | None = None, limit: int | None = None
    ) -> list[store.CampaignRecord]:
        """Campaigns newest first."""
        rows = self._select(
            f"SELECT {CAMPAIGN_COLUMNS} FROM campaigns "  # noqa: S608 (a constant)
            "WHERE (CAST(? AS TEXT) IS NULL OR api_key_id = ?) "
            "ORDER BY created_at DESC, id DESC LIMIT ?",
            (api_key_id, api_key_id, 2**31 - 1 if limit is None else limit),
        )
        return [campaign_record(row) for row in rows]

    def orphaned_campaigns(self, *, now: float) -> list[store.CampaignRecord]:
        """Running (or ending) campaigns whose lease is absent or expired."""
        columns = ", ".join(f"c.{name.strip()}" for name in CAMPAIGN_COLUMNS.split(","))
        rows = self._select(
            f"SELECT {columns} FROM campaigns c "  # noqa: S608 (constants)
            "LEFT JOIN leases l ON l.name = 'campaign:' || c.id "
            f"WHERE c.state IN {ORPHAN_STATES!r} AND (l.name IS NULL OR l.expires_at <= ?) "
            "ORDER BY c.created_at",
            (now,),
        )
        return [campaign_record(row) for row in rows]

    def lease_holder(self, name: str, *, now: float) -> str | None:
        """Who holds an unexpired lease."""
        rows = self._select(
            "SELECT owner FROM leases WHERE name = ? AND expires_at > ?", (name, now)
        )
        return str(rows[0]["owner"]) if rows else None
