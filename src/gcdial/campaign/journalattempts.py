"""A campaign journal's attempts: the crash-safe state machine of each dial and the questions
asked of attempts (:class:`Attempts`), and the campaign's event log (:class:`Events`). Each is a
part of :class:`gcdial.campaign.journal.Journal` over its core."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from gcdial.campaign.journalcore import JournalCore, JournalPart, count_by, guarded
from gcdial.campaign.journalrows import (
    IN_FLIGHT,
    Attempt,
    AttemptState,
    ContactStatus,
    _attempt,
    _Cells,
    _event,
    _iso,
)
from gcdial.campaign.sqldialect import Connection, Row
from gcdial.errors import (
    JournalError,
    JournalFencedError,
)
from gcdial.monitor.wrapup import Wrapup

__all__ = ["Attempts", "Events"]


class Attempts(JournalPart):
    """The campaign's attempts (``journal.attempts``): each dial's intent (committed before the
    POST), acceptance, unknown and outcome, and what the runner, the report, the review and the
    service ask about them."""

    @guarded
    def begin(
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
        with self._core.tx() as conn:
            _check_fence(self._core, conn)
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
            now = self._core.now()
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
            self._core.event(
                "attempt.intent", contact_id=contact_id, attempt_id=attempt_id, detail=agent_id
            )
        return attempt_id

    @guarded
    def mark_accepted(self, attempt_id: int, conversation_id: str) -> None:
        """Genesys accepted the call: store its conversation id (also to settle an unknown)."""
        with self._core.tx() as conn:
            row = self._core.attempt_row(conn, attempt_id)
            _require(row, AttemptState.INTENT, AttemptState.UNKNOWN)
            now = self._core.now()
            conn.execute(
                "UPDATE campaign_attempts SET state = ?, conversation_id = ?, accepted_at = ? "
                "WHERE id = ?",
                (AttemptState.ACCEPTED, conversation_id, now, attempt_id),
            )
            conn.execute(
                "UPDATE campaign_contacts SET status = ?, updated_at = ? WHERE id = ?",
                (ContactStatus.ACTIVE, now, row["contact_id"]),
            )
            self._core.event(
                "attempt.accepted",
                contact_id=row["contact_id"],
                attempt_id=attempt_id,
                detail=conversation_id,
            )

    @guarded
    def mark_unknown(self, attempt_id: int, detail: str) -> None:
        """The call may or may not have been placed: park the contact for a human, never re-dial."""
        with self._core.tx() as conn:
            row = self._core.attempt_row(conn, attempt_id)
            _require(row, *IN_FLIGHT)
            now = self._core.now()
            conn.execute(
                "UPDATE campaign_attempts SET state = ?, detail = ? WHERE id = ?",
                (AttemptState.UNKNOWN, detail, attempt_id),
            )
            conn.execute(
                "UPDATE campaign_contacts SET status = ?, outcome = 'unknown', detail = ?, "
                "updated_at = ? WHERE id = ?",
                (ContactStatus.UNKNOWN, detail, now, row["contact_id"]),
            )
            self._core.event(
                "attempt.unknown",
                contact_id=row["contact_id"],
                attempt_id=attempt_id,
                detail=detail,
            )

    @guarded
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
        with self._core.tx() as conn:
            row = self._core.attempt_row(conn, attempt_id)
            _require(row, AttemptState.INTENT)
            now = self._core.now()
            conn.execute(
                "UPDATE campaign_attempts SET state = ?, ended_at = ?, outcome = ?, "
                "error_code = ?, "
                "context_id = ?, detail = ? WHERE id = ?",
                (AttemptState.NOT_SENT, now, outcome, error_code, context_id, reason, attempt_id),
            )
            _settle_contact(conn, row["contact_id"], outcome, reason, retry_at, now)
            conn.execute(
                "UPDATE campaign_contacts SET attempts = attempts - 1 WHERE id = ?",
                (row["contact_id"],),
            )
            self._core.event(
                "attempt.not_sent",
                contact_id=row["contact_id"],
                attempt_id=attempt_id,
                detail=f"{error_code or ''} {reason}".strip(),
            )

    @guarded
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
        with self._core.tx() as conn:
            row = self._core.attempt_row(conn, attempt_id)
            _require(row, AttemptState.ACCEPTED, AttemptState.UNKNOWN)
            now = self._core.now()
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
            _settle_contact(conn, row["contact_id"], outcome, detail, retry_at, now)
            self._core.event(
                "attempt.ended", contact_id=row["contact_id"], attempt_id=attempt_id, detail=outcome
            )

    @guarded
    def unresolved(self) -> list[Attempt]:
        """Attempts of unknown outcome still waiting for a verdict (their contact is
        ``unknown``), oldest first: what a resume tries to resolve again."""
        rows = self._conn.execute(
            "SELECT a.* FROM campaign_attempts a JOIN campaign_contacts c ON c.id = a.contact_id "
            "WHERE a.campaign_id = ? AND a.state = ? AND c.status = ? ORDER BY a.id",
            (self.campaign_id, AttemptState.UNKNOWN, ContactStatus.UNKNOWN),
        ).fetchall()
        return [_attempt(self.where, r) for r in rows]

    @guarded
    def wrapup_counts(self) -> tuple[dict[str, int], int]:
        """Calls by wrap-up (name, else code id), and how many never got the one waited for."""
        if self._core.version < 4:
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

    @guarded
    def missing_wrapups(self) -> list[Attempt]:
        """Ended calls whose wrap-up was waited for and never came, oldest first (for review)."""
        if self._core.version < 4:
            return []
        rows = self._conn.execute(
            "SELECT * FROM campaign_attempts WHERE campaign_id = ? AND wrapup_action = 'missing' "
            "ORDER BY id",
            (self.campaign_id,),
        ).fetchall()
        return [_attempt(self.where, r) for r in rows]

    @guarded
    def dnc_numbers(self) -> set[str]:
        """The numbers wrap-ups put on the do-not-call list (none in a journal before schema 4)."""
        if self._core.version < 4:
            return set()
        rows = self._conn.execute(
            "SELECT phone FROM campaign_dnc WHERE campaign_id = ?", (self.campaign_id,)
        )
        return {row[0] for row in rows}

    @guarded
    def in_flight(self) -> list[Attempt]:
        """Attempts begun but not settled (``intent``, ``accepted``): reconcile these on resume."""
        rows = self._conn.execute(
            "SELECT * FROM campaign_attempts WHERE campaign_id = ? AND state IN (?, ?) ORDER BY id",
            (self.campaign_id, *IN_FLIGHT),
        ).fetchall()
        return [_attempt(self.where, r) for r in rows]

    @guarded
    def all(self, contact_id: int | None = None) -> list[Attempt]:
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

    @guarded
    def page(
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

    @guarded
    def get(self, attempt_id: int) -> Attempt:
        """One attempt by id."""
        return _attempt(self.where, self._core.attempt_row(self._conn, attempt_id))

    @guarded
    def times(self, since: datetime) -> list[datetime]:
        """When each attempt since ``since`` was begun (its intent committed), oldest first."""
        rows = self._conn.execute(
            "SELECT id, created_at FROM campaign_attempts WHERE campaign_id = ? "
            "AND created_at >= ? ORDER BY created_at",
            (self.campaign_id, _iso(since)),
        ).fetchall()
        return [_Cells(self.where, "campaign_attempts", r).time("created_at") for r in rows]

    @guarded
    def count_by(self, column: str) -> dict[str, int]:
        """Attempts counted by ``state``, ``outcome`` or ``agent``."""
        return count_by(self._core, "attempts", column)


class Events(JournalPart):
    """The campaign's event log (``journal.events``): what was seen and decided, in order."""

    @guarded
    def record(
        self,
        kind: str,
        *,
        contact_id: int | None = None,
        attempt_id: int | None = None,
        detail: str | None = None,
    ) -> None:
        """Append a free-form event (call state changes, warnings) to the log."""
        with self._core.tx():
            self._core.event(kind, contact_id=contact_id, attempt_id=attempt_id, detail=detail)

    @guarded
    def all(self, *, limit: int | None = None) -> list[dict[str, Any]]:
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

    @guarded
    def of_contacts(self, contact_ids: Iterable[int]) -> dict[int, list[dict[str, Any]]]:
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


def _check_fence(core: JournalCore, conn: Connection) -> None:
    """In a write transaction: refuse (writing nothing) unless this replica still holds the
    campaign's lease at the epoch it was opened with. PostgreSQL locks the lease row until
    the commit, so a takeover's update waits for the attempt to be journaled; SQLite's write
    transaction already keeps every other writer out."""
    fence = core.fence
    if fence is None:
        return
    held = conn.execute(
        "SELECT 1 FROM leases WHERE name = ? AND owner = ? AND epoch = ? AND expires_at > ?"  # noqa: S608 - a fixed clause
        + conn.for_share,
        (fence.lease, fence.owner, fence.epoch, fence.now()),
    ).fetchone()
    if held is None:
        raise JournalFencedError(
            f"This replica no longer holds campaign {core.campaign_id} (lease {fence.lease} "
            f"at epoch {fence.epoch}): nothing was dialed or written.",
            hint="Another replica took the campaign over; it carries on from the journal.",
        )


def _require(row: Row, *allowed: AttemptState) -> None:
    if row["state"] not in allowed:
        raise JournalError(
            f"Attempt {row['id']} is {row['state']}; expected "
            f"{' or '.join(str(a) for a in allowed)}."
        )


def _settle_contact(
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
