"""What a campaign needs a person for, and the person's decisions, over its journal.

Two things wait for a person: contacts whose call may or may not have rung (outcome unknown: never
re-dialed automatically), and pending contacts pinned to an agent the last run could not use (gone
from the pool: retired, missing, not given). ``gcdial campaign review`` and ``gcdial serve`` both
read and act through these functions, so a verdict or a reassignment means the same everywhere.

Writes need the journal opened for writing, which takes its lock: while a run holds the journal,
nobody else can record a verdict in it (the caller gets ``JournalLockedError``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from gcdial.campaign.journal import Attempt, ContactRecord, ContactStatus, Journal
from gcdial.config import DEFAULT_ANALYTICS_SETTLE_S
from gcdial.errors import ReviewConflictError
from gcdial.resolve import LONG_PAST_S

__all__ = [
    "PinnedAgent",
    "ReviewItem",
    "ReviewNotFoundError",
    "evidence_lines",
    "missing_wrapups",
    "needs_review",
    "pinned_agents",
    "reassign",
    "verdict_on_attempt",
    "would_settle",
]

ANY_AGENT = "any"


class ReviewNotFoundError(KeyError):
    """No such attempt (or contact) in this campaign's journal."""


@dataclass(frozen=True)
class ReviewItem:
    """A contact whose call may or may not have rung, with the evidence gathered about it."""

    contact: ContactRecord
    attempts: tuple[Attempt, ...]
    events: tuple[dict[str, Any], ...]

    @property
    def attempt(self) -> Attempt | None:
        """The attempt the verdict is about: the contact's latest."""
        return self.attempts[-1] if self.attempts else None


@dataclass(frozen=True)
class PinnedAgent:
    """Pending contacts that name an agent; ``gone``: the last run could not give them to it."""

    agent: str
    contacts: int
    gone: bool


def needs_review(journal: Journal, *, limit: int | None = None) -> list[ReviewItem]:
    """Contacts waiting for a verdict, in list order, each with its attempts and events."""
    contacts: list[ContactRecord] = []
    for contact in journal.contacts.all(status=ContactStatus.UNKNOWN):
        contacts.append(contact)
        if limit is not None and len(contacts) >= limit:
            break
    events = journal.events.of_contacts(c.id for c in contacts)
    return [
        ReviewItem(c, tuple(journal.attempts.all(c.id)), tuple(events.get(c.id, ())))
        for c in contacts
    ]


def pinned_agents(journal: Journal) -> list[PinnedAgent]:
    """Agents with pending contacts pinned to them, flagged when the last run found them gone."""
    waiting = journal.meta_json("waiting_for_agents", dict) or {}
    gone = {str(name).strip().lower() for name in waiting}
    return [
        PinnedAgent(agent, count, agent.strip().lower() in gone)
        for agent, count in journal.pending.pinned().items()
    ]


def _when(journal: Journal, contact_id: int) -> str:
    last = journal.contacts.last_verdict(contact_id)
    if last is None:
        return ""
    at, detail = last
    return f" A verdict was recorded at {at:%H:%M} UTC: {detail}."


def verdict_on_attempt(
    journal: Journal, attempt_id: int, *, placed: bool, note: str, by: str | None = None
) -> ContactRecord:
    """Record a verdict on the attempt waiting for one; the contact as it is afterwards.

    ``ReviewNotFoundError`` when the journal has no such attempt; ``ReviewConflictError`` (saying
    who decided first, and when) when it is not, or no longer, the one waiting for a verdict.
    """
    try:
        attempt = journal.attempts.get(attempt_id)
    except KeyError:
        raise ReviewNotFoundError(f"no attempt {attempt_id} in this campaign") from None
    contact = journal.contacts.get(attempt.contact_id)
    latest = journal.attempts.all(contact.id)[-1]
    if contact.status is not ContactStatus.UNKNOWN or latest.id != attempt_id:
        raise ReviewConflictError(
            f"Attempt {attempt_id} (line {contact.line}, {contact.phone}) is not waiting for a "
            f"verdict: the contact is {contact.status.value}"
            + (f" ({contact.outcome})" if contact.outcome else "")
            + "."
            + _when(journal, contact.id),
            hint="Nothing was changed; the review list shows what still needs a verdict.",
        )
    try:
        journal.contacts.record_verdict(contact.id, placed=placed, note=note, by=by)
    except ReviewConflictError as exc:
        raise ReviewConflictError(exc.message + _when(journal, contact.id), hint=exc.hint) from None
    return journal.contacts.get(contact.id)


def reassign(journal: Journal, agent: str, to: str) -> int:
    """Give the pending contacts pinned to ``agent`` to ``to`` (``any``: whoever is free)."""
    target = None if to.strip().lower() == ANY_AGENT else to.strip()
    return journal.pending.reassign(agent.strip(), target)


def missing_wrapups(journal: Journal) -> list[dict[str, Any]]:
    """Calls whose wrap-up was waited for and never came (the retry policy decided for them):
    what a person checks in Genesys, one JSON-ready ``wrapup_missing`` item each."""
    items = []
    for attempt in journal.attempts.missing_wrapups():
        contact = journal.contacts.get(attempt.contact_id)
        items.append(
            {
                "event": "wrapup_missing",
                "line": contact.line,
                "phone": contact.phone,
                "attempt": attempt.id,
                "agent": attempt.agent or attempt.agent_id,
                "conversation_id": attempt.conversation_id,
                "outcome": attempt.outcome,
                "at": attempt.created_at.isoformat(timespec="seconds"),
            }
        )
    return items


def would_settle(
    item: ReviewItem,
    *,
    settle_s: float = DEFAULT_ANALYTICS_SETTLE_S,
    attempt_attribute: str = "gcdialAttemptId",
) -> dict[str, Any]:
    """What evidence would settle a contact of unknown outcome, in plain words.

    The CLI resuming after a crash has no live channel that watched the agent while the lost
    call could have been created (a witness, as a surviving ``gcdial serve`` replica has), so
    a search that finds nothing proves "not placed" only once the attempt is so old that any call
    it created shows in the conversation details (the settle time plus ten minutes): until then,
    and whenever the details cannot be searched in full, it waits for a person.
    """
    attempt = item.attempt
    tried = [e["detail"] for e in item.events if e.get("kind") == "attempt.unresolved"]
    last_try = tried[-1] if tried else None
    if attempt is None or not attempt.tag:
        return {
            "attempt_id": None,
            "placed_if": "the agent's conversations around the attempt show a call to "
            f"{item.contact.phone}",
            "not_placed_if": "a person checks the agent's conversations and finds none: this "
            "attempt kept no attempt id, so no search can prove it",
            "command": None,
            "last_try": last_try,
            "text": "No attempt id was kept for this attempt: only a person can tell, from the "
            f"agent's conversations around {_at(attempt)} (a call to {item.contact.phone} or not).",
        }
    agent = attempt.agent or attempt.agent_id
    proof_at = attempt.created_at + timedelta(seconds=settle_s + LONG_PAST_S)
    command = (
        f"gcdial resolve {attempt.tag} --agent {agent} --to {item.contact.phone} "
        f"--at {attempt.created_at.isoformat()}"
    )
    placed_if = (
        f"a conversation of {agent} carries {attempt_attribute}={attempt.tag} (conversation "
        "details, or a live frame)"
    )
    not_placed_if = (
        "the conversation details of the agent, searched in full, show no such conversation "
        f"at {proof_at.isoformat(timespec='seconds')} or later (settle time {settle_s:g} s + "
        f"{LONG_PAST_S:g} s after the attempt); sooner only with a live channel that watched "
        "the agent throughout, which a resumed CLI run does not have"
    )
    text = (
        f"Placed if {placed_if}; not placed if {not_placed_if}. "
        f"`campaign resume` looks again by itself; or run: {command}"
    )
    if last_try:
        text += f". Last look: {last_try}"
    return {
        "attempt_id": attempt.tag,
        "placed_if": placed_if,
        "not_placed_if": not_placed_if,
        "provable_from": proof_at.isoformat(timespec="seconds"),
        "command": command,
        "last_try": last_try,
        "text": text,
    }


def _at(attempt: Attempt | None) -> str:
    return attempt.created_at.isoformat(timespec="seconds") if attempt else "the attempt"


def evidence_lines(
    items: Sequence[ReviewItem],
    *,
    settle_s: float = DEFAULT_ANALYTICS_SETTLE_S,
    attempt_attribute: str = "gcdialAttemptId",
) -> list[dict[str, Any]]:
    """The CLI's JSON lines for ``items`` (one ``review`` event per contact), each with what
    evidence would settle it (``would_settle``)."""
    return [
        {
            "event": "review",
            "line": item.contact.line,
            "phone": item.contact.phone,
            "name": item.contact.name,
            "detail": item.contact.detail,
            "attempts": [
                {
                    "attempt": a.number,
                    "state": a.state.value,
                    "agent": a.agent or a.agent_id,
                    "at": a.created_at.isoformat(),
                    "conversation_id": a.conversation_id,
                    "error_code": a.error_code,
                    "detail": a.detail,
                }
                for a in item.attempts
            ],
            "would_settle": would_settle(
                item, settle_s=settle_s, attempt_attribute=attempt_attribute
            ),
        }
        for item in items
    ]
