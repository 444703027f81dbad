"""A campaign journal's contacts: the list loaded, verdicts, and the questions asked of them
(:class:`Contacts`); the pending ones waiting to be dialed, deferred, skipped or held
(:class:`Pending`). Each is a part of :class:`gcdial.campaign.journal.Journal` over its core."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

from gcdial.campaign.csvinput import Contact, RowProblem
from gcdial.campaign.journalcore import _BATCH, JournalPart, count_by, guarded
from gcdial.campaign.journalrows import (
    Attempt,
    AttemptState,
    ContactRecord,
    ContactStatus,
    _attempt,
    _Cells,
    _contact,
    _iso,
    _skipped,
)
from gcdial.errors import (
    ReviewConflictError,
)

__all__ = ["Contacts", "Pending"]


class Contacts(JournalPart):
    """The campaign's contacts (``journal.contacts``): the list loaded, a person's verdicts, and
    what the runner, the report and the review ask about them."""

    @guarded
    def add(self, contacts: Iterable[Contact]) -> int:
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
        now = self._core.now()
        count = "SELECT COUNT(*) FROM campaign_contacts WHERE campaign_id = ?"
        with self._core.tx() as conn:
            before = int(conn.execute(count, (self.campaign_id,)).fetchone()[0])
            conn.executemany(
                "INSERT INTO campaign_contacts (campaign_id, line, phone, name, agent, "
                "external_id, tz, attributes, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT DO NOTHING",
                [(self.campaign_id, *row, now) for row in batch],
            )
            return int(conn.execute(count, (self.campaign_id,)).fetchone()[0]) - before

    @guarded
    def add_skipped_rows(self, problems: Iterable[RowProblem]) -> None:
        """Record CSV rows refused by validation, so the report can list them."""
        rows = [(self.campaign_id, p.line, p.column, p.kind, p.reason, p.fix) for p in problems]
        with self._core.tx() as conn:
            conn.executemany(
                "INSERT INTO campaign_skipped_rows (campaign_id, line, col, kind, reason, fix) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                rows,
            )

    @guarded
    def finish_loading(
        self, *, rows: int, valid: int, refused: int, attribute_columns: Iterable[str] = ()
    ) -> None:
        """Mark the contact list as fully loaded, with the validation counts and the list's own
        columns (those passed as call attributes, in file order)."""
        with self._core.tx() as conn:
            for key, value in {
                "contacts_loaded": "1",
                "csv_rows": str(rows),
                "csv_valid": str(valid),
                "csv_refused": str(refused),
                "attribute_columns": json.dumps(list(attribute_columns), ensure_ascii=False),
            }.items():
                self._core.put_meta(conn, key, value)
            self._core.event("contacts.loaded", detail=f"{valid} contacts, {refused} rows refused")

    @property
    @guarded
    def loaded(self) -> bool:
        """Whether the whole contact list was loaded (a crash mid-load leaves this False)."""
        return self._core.get_meta("contacts_loaded") == "1"

    @guarded
    def reopen(self, contact_id: int, reason: str) -> None:
        """Put a contact finished as ``not_sent`` (never placed) back to pending."""
        with self._core.tx() as conn:
            conn.execute(
                "UPDATE campaign_contacts SET status = 'pending', next_at = '', detail = ?, "
                "updated_at = ? "
                "WHERE id = ? AND campaign_id = ? AND status = 'done' AND outcome = 'not_sent'",
                (reason, self._core.now(), contact_id, self.campaign_id),
            )
            self._core.event("contact.reopened", contact_id=contact_id, detail=reason)

    @guarded
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
        with self._core.tx() as conn:
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
            now = self._core.now()
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
            self._core.event(
                "contact.verdict",
                contact_id=contact_id,
                attempt_id=row["id"] if row is not None else None,
                detail=f"{'placed' if placed else 'not placed'}"
                + (f" by {by}" if by else "")
                + f": {note}",
            )

    @guarded
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

    @guarded
    def get(self, contact_id: int) -> ContactRecord:
        """One contact by id."""
        row = self._conn.execute(
            "SELECT * FROM campaign_contacts WHERE id = ? AND campaign_id = ?",
            (contact_id, self.campaign_id),
        ).fetchone()
        if row is None:
            raise KeyError(f"no contact {contact_id} in the journal")
        return _contact(self.where, row)

    @guarded
    def at_line(self, line: int) -> ContactRecord | None:
        """The contact of CSV line ``line`` (None when that line holds no contact)."""
        row = self._conn.execute(
            "SELECT * FROM campaign_contacts WHERE campaign_id = ? AND line = ?",
            (self.campaign_id, line),
        ).fetchone()
        return None if row is None else _contact(self.where, row)

    @guarded
    def all(self, *, status: ContactStatus | None = None) -> Iterator[ContactRecord]:
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

    @guarded
    def summaries(self) -> Iterator[tuple[ContactRecord, Attempt | None, datetime | None]]:
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
            last = (
                None
                if row["a_id"] is None
                else _attempt(self.where, self._core.attempt_row(self._conn, row["a_id"]))
            )
            first = _Cells(self.where, "campaign_attempts", row, where=f"of contact id {row['id']}")
            yield _contact(self.where, row), last, first.opt_time("created_at")

    @guarded
    def attribute_columns(self) -> list[str]:
        """The contact list's own columns (passed as call attributes), in file order."""
        stored = self._core.meta_json("attribute_columns", list)
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

    @guarded
    def settled_outcomes(self) -> dict[str, int]:
        """Contacts finished one way or another (done, skipped, unknown), by outcome."""
        rows = self._conn.execute(
            "SELECT COALESCE(outcome, status), COUNT(*) FROM campaign_contacts "
            "WHERE campaign_id = ? AND status IN (?, ?, ?) GROUP BY 1",
            (self.campaign_id, ContactStatus.DONE, ContactStatus.SKIPPED, ContactStatus.UNKNOWN),
        ).fetchall()
        return {str(key): int(n) for key, n in rows}

    @guarded
    def skipped_rows(self) -> list[RowProblem]:
        """CSV rows refused by validation, in file order."""
        info = self._core.info()
        rows = self._conn.execute(
            "SELECT * FROM campaign_skipped_rows WHERE campaign_id = ? ORDER BY line",
            (self.campaign_id,),
        ).fetchall()
        return [
            _skipped(info.csv_path, _Cells(self.where, "campaign_skipped_rows", r)) for r in rows
        ]

    @guarded
    def count_by(self, column: str) -> dict[str, int]:
        """Contacts counted by ``status`` or ``outcome``."""
        return count_by(self._core, "contacts", column)


class Pending(JournalPart):
    """The pending contacts (``journal.pending``): which are due and when, waits, skips, and the
    contacts a running campaign holds.

    Holding: contacts a running campaign already has in memory (or set aside for this run) are
    kept in a per-connection temporary table, so that the due-contact queries skip them without
    the runner holding the whole list in memory.
    """

    @guarded
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

    @guarded
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

    @guarded
    def hold(self, contact_ids: Iterable[int]) -> None:
        """Leave these contacts out of :meth:`due_now` and :meth:`next_due_time` until released."""
        self._held_table()
        self._conn.executemany(
            "INSERT INTO temp.held (id) VALUES (?) ON CONFLICT DO NOTHING",
            [(i,) for i in contact_ids],
        )

    @guarded
    def release(self, contact_ids: Iterable[int]) -> None:
        """Let held contacts be found by :meth:`due_now` again."""
        self._held_table()
        self._conn.executemany("DELETE FROM temp.held WHERE id = ?", [(i,) for i in contact_ids])

    def _held_table(self) -> None:
        if not self._core.held_ready:
            self._conn.make_held()
            self._core.held_ready = True

    @guarded
    def page(self, *, limit: int, after: tuple[str, int] | None = None) -> list[ContactRecord]:
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

    @guarded
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

    @guarded
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

    @guarded
    def redecide_deferrals(self) -> int:
        """Make the pending contacts never dialed due now, for this run's rules to decide again.

        Their only wait is the one the rules gave them (the calling window, the end time): a run
        with other rules (``--window 00:00-24:00`` after a night run with the default) must not
        keep the last run's wait. A retry delay (a contact with attempts) is kept as it was.
        The same reading is :func:`redecided_due`, for the dry run's plan.
        """
        with self._core.tx() as conn:
            changed = conn.execute(
                "UPDATE campaign_contacts SET next_at = '' WHERE campaign_id = ? "
                "AND status = 'pending' AND attempts = 0 AND next_at > ''",
                (self.campaign_id,),
            ).rowcount
        return int(changed)

    @guarded
    def defer(self, contact_id: int, until: datetime, reason: str) -> None:
        """Keep a pending contact waiting until ``until`` (calling window, retry delay)."""
        self.defer_many([(contact_id, until, reason)])

    @guarded
    def defer_many(self, items: Iterable[tuple[int, datetime, str]]) -> None:
        """Defer several pending contacts ``(contact_id, until, reason)`` in one transaction."""
        rows = [(_iso(until), reason, cid) for cid, until, reason in items]
        if not rows:
            return
        now = self._core.now()
        with self._core.tx() as conn:
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

    @guarded
    def skip(self, contact_id: int, outcome: str, reason: str) -> None:
        """Never dial this pending contact (do-not-call, no legal hour, campaign over...)."""
        self.skip_many([(contact_id, outcome, reason)])

    @guarded
    def skip_many(self, items: Iterable[tuple[int, str, str]]) -> None:
        """Skip several pending contacts ``(contact_id, outcome, reason)`` in one transaction."""
        rows = list(items)
        if not rows:
            return
        now = self._core.now()
        with self._core.tx() as conn:
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

    @guarded
    def finish(self, contact_id: int, outcome: str, reason: str) -> None:
        """Finish a pending contact with ``outcome`` without another call (its retry is no longer
        allowed)."""
        with self._core.tx() as conn:
            conn.execute(
                "UPDATE campaign_contacts SET status = 'done', outcome = ?, detail = ?, "
                "next_at = '', "
                "updated_at = ? WHERE id = ? AND campaign_id = ? AND status = 'pending'",
                (outcome, reason, self._core.now(), contact_id, self.campaign_id),
            )
            self._core.event(
                "contact.finished", contact_id=contact_id, detail=f"{outcome}: {reason}"
            )

    @guarded
    def reassign(self, agent: str, to: str | None) -> int:
        """Give the pending contacts pinned to ``agent`` (case-insensitive) to ``to``, or to any
        agent (None). Returns how many moved."""
        with self._core.tx() as conn:
            cursor = conn.execute(
                "UPDATE campaign_contacts SET agent = ?, updated_at = ? "
                "WHERE campaign_id = ? AND status = 'pending' "
                "AND lower(trim(agent)) = lower(trim(?))",
                (to, self._core.now(), self.campaign_id, agent),
            )
            moved = cursor.rowcount
            self._core.event("contacts.reassigned", detail=f"{moved} from {agent} to {to or 'any'}")
        return moved

    @guarded
    def pinned(self) -> dict[str, int]:
        """Pending contacts that name their agent, counted by agent."""
        rows = self._conn.execute(
            "SELECT MIN(agent), COUNT(*) FROM campaign_contacts WHERE campaign_id = ? "
            "AND status = 'pending' AND agent IS NOT NULL AND agent != '' "
            "GROUP BY lower(trim(agent)) ORDER BY 1",
            (self.campaign_id,),
        ).fetchall()
        return {str(agent): int(n) for agent, n in rows}
