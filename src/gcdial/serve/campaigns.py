"""Campaigns over HTTP: a CSV uploaded once, then start / pause / resume / stop, status, report.

A campaign lives in the service's store, not on a replica's disk: its settings, state and uploaded
list are a ``campaigns`` row (:class:`~gcdial.serve.store.CampaignRecord`), its journal is the one
``gcdial campaign run`` keeps (the intent is committed before each POST, a resume reconciles calls
in flight and never re-dials an unknown outcome; :mod:`gcdial.serve.campaign_journals`).

A replica runs a campaign while it holds the campaign's lease, and any replica takes over a
campaign whose replica died: :mod:`gcdial.serve.campaign_runs`.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import functools
import io
import json
import logging
import re
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gcdial.campaign.csvinput import decoded_lines
from gcdial.campaign.journal import JournalError
from gcdial.campaign.report import campaign_status, write_report
from gcdial.campaign.settings import CampaignSettings
from gcdial.errors import ConfigError, GcdialError, InputFileError
from gcdial.serve.campaign_form import CampaignForm
from gcdial.serve.campaign_journals import CampaignJournals, Fencing
from gcdial.serve.campaign_runs import CampaignRuns
from gcdial.serve.campaign_views import RunView, campaign_detail, preview_upload
from gcdial.serve.principal import owns
from gcdial.serve.problems import ApiProblem
from gcdial.serve.store import CampaignRecord, Store

if TYPE_CHECKING:
    from gcdial.campaign.resolver import IntentLadder
    from gcdial.serve.service_core import ServiceCore

__all__ = ["CampaignManager", "CampaignMeta", "check_csv", "read_upload", "refuse_old_campaigns"]

_CAMPAIGN_ID = re.compile(r"cmp_[0-9a-f]{1,32}")

logger = logging.getLogger("gcdial.serve")


CampaignMeta = CampaignRecord
"""A campaign as the store keeps it (the name the service's modules know it by)."""


def refuse_old_campaigns(folder: Path) -> None:
    """Raise ``ConfigError`` when ``folder`` holds campaigns of an older gcdial (one directory
    per campaign with its ``meta.json``): their journals would be lost to this one, which keeps
    campaigns in the store."""
    try:
        found = sorted(p.parent.name for p in folder.glob("cmp_*/meta.json"))
    except OSError:
        return
    if found:
        raise ConfigError(
            f"{folder} holds {len(found)} campaign(s) of an older gcdial ({', '.join(found[:3])}"
            f"{', ...' if len(found) > 3 else ''}); this gcdial keeps campaigns in its store and "
            "cannot carry their journals over",
            hint="Finish or stop them with the older gcdial and keep their reports, then move "
            f"{folder} away and start this gcdial again.",
        )


def check_csv(data: bytes, phone_column: str | None) -> str:
    """The upload as text when it is a CSV with a header and the phone column; else ApiProblem."""
    try:
        # The CLI's decoder, so both name the line and column of a bad byte and suggest iconv.
        text = "".join(decoded_lines(io.BytesIO(data), "upload"))
    except InputFileError as exc:
        where = f"line {exc.line}: " if exc.line is not None else ""
        raise _bad_csv(f"{where}{exc.reason}", hint=exc.hint) from None
    if "\x00" in text:
        raise _bad_csv("the file is binary, not CSV text")
    rows = csv.reader(io.StringIO(text))
    try:
        header = next(rows, None)
    except csv.Error as exc:
        raise _bad_csv(f"line 1: {exc}") from None
    if not header or not any(cell.strip() for cell in header):
        raise _bad_csv("line 1: no header row")
    names = [cell.strip().lower() for cell in header]
    wanted = (phone_column or "phone").strip().lower()
    if wanted not in names:
        raise _bad_csv(
            f"line 1: no '{wanted}' column (columns: {', '.join(names[:10])})",
            hint="Name the phone column 'phone', or give phoneColumn.",
        )
    try:
        for _ in rows:
            pass
    except csv.Error as exc:
        raise _bad_csv(f"line {rows.line_num}: {exc}") from None
    return text


def read_upload(
    data: bytes, settings: dict[str, Any], *, now: datetime
) -> tuple[str, dict[str, Any]]:
    """The uploaded list as text, and its preview (what would be refused and why), or a 422.

    Create and preview both come through here, so a list the preview accepts is one the runner
    reads the same way."""
    text = check_csv(data, settings.get("phone_column"))
    return text, preview_upload(text, settings, now=now)


def _bad_csv(message: str, hint: str | None = None) -> ApiProblem:
    return ApiProblem(
        422,
        "invalid_csv",
        f"The upload is not a usable CSV: {message}.",
        hint=hint or "Upload a UTF-8 CSV with a header row and a 'phone' column.",
        path="form:file",
    )


class CampaignManager:
    """Campaigns of one service process; ``client`` and ``store`` come from the service's core,
    and the ladder for an attempt a stopped run left (``intent_ladder``) from its recovery."""

    def __init__(
        self,
        service: ServiceCore,
        journals: CampaignJournals | None = None,
        *,
        intent_ladder: IntentLadder | None = None,
    ) -> None:
        self.service = service
        self.intent_ladder = intent_ladder
        self.journals = journals or CampaignJournals.for_store(service.store)
        # The runs of this replica: start, pause/stop, heartbeat, takeover.
        self.running = CampaignRuns(self)

    # the store ---------------------------------------------------------------------------

    def get(self, campaign_id: str) -> CampaignMeta:
        """The campaign (any key's), or a 404 (a store read: call it in a thread)."""
        # ASCII and short: anything else is simply not found.
        store: Store = self.service.store
        found = store.get_campaign(campaign_id) if _CAMPAIGN_ID.fullmatch(campaign_id) else None
        if found is None:
            raise ApiProblem(404, "not_found", f"No campaign {campaign_id!r}.")
        return found

    def update(
        self,
        meta: CampaignMeta,
        *,
        states: tuple[str, ...] | None = None,
        fence: Fencing | None = None,
        note: str | None = None,
        **changes: Any,
    ) -> CampaignMeta | None:
        """Change the campaign in the store (and ``meta`` with it); None when refused."""
        if note is not None:
            changes["history"] = [*meta.history, f"{time.time():.0f} {note}"]
        store: Store = self.service.store
        changed = store.update_campaign(meta.id, states=states, fence=fence, **changes)
        if changed is not None:
            for name, value in changes.items():
                setattr(meta, name, value)
        return changed

    def load(self, campaign_id: str, key: Any) -> CampaignMeta:
        """The campaign, if ``key`` may see it (a store read: call it in a thread)."""
        meta = self.get(campaign_id)
        if not owns(key, meta.api_key_id):
            raise ApiProblem(404, "not_found", f"No campaign {campaign_id!r}.")
        return meta

    async def find(self, campaign_id: str, key: Any) -> CampaignMeta:
        """:meth:`load`, from the event loop."""
        return await asyncio.to_thread(self.load, campaign_id, key)

    def create(
        self,
        key: Any,
        name: str,
        text: str,
        settings: dict[str, Any],
        *,
        contacts: int | None = None,
    ) -> CampaignMeta:
        """Keep the list and the settings in the store; nothing is dialed until ``start``."""
        meta = CampaignMeta(
            id="cmp_" + uuid.uuid4().hex[:16],
            name=name,
            api_key_id=key.id,
            created_at=time.time(),
            settings=settings,
            contacts=contacts,
        )
        self.settings_for(meta, Path("contacts.csv"))  # refuse bad settings before anything is kept
        self.service.store.insert_campaign(meta, text)
        return meta

    async def create_from_upload(
        self, key: Any, data: bytes, form: CampaignForm, filename: str | None
    ) -> CampaignMeta:
        """Check the upload as the preview does, refuse a list with no row to dial, then
        :meth:`create` (named after the file unless the form names it)."""
        text, preview = await asyncio.to_thread(
            read_upload, data, form.settings, now=datetime.now(UTC)
        )
        rows = preview["rows"]
        if not preview["canUpload"]:
            raise ApiProblem(
                422,
                "no_rows_to_dial",
                f"None of the {rows['total']} rows of the list would be dialed "
                f"({rows['refused']} refused).",
                hint="Preview it (POST /v1/campaigns/preview) to see each refused row and how "
                "to fix it.",
                path="form:file",
            )
        label = form.name or Path(filename or "campaign").stem or "campaign"
        contacts = rows["accepted"] + rows["skipped"]  # what the journal will hold
        return await asyncio.to_thread(
            functools.partial(self.create, contacts=contacts),
            key,
            label[:100],
            text,
            form.settings,
        )

    def settings_for(self, meta: CampaignMeta, csv_path: Path) -> CampaignSettings:
        """The campaign's settings for a run reading its list at ``csv_path`` (or a 422)."""
        try:
            return CampaignSettings(csv_path=str(csv_path), **meta.settings)
        except GcdialError as exc:
            raise ApiProblem(422, "invalid_settings", exc.message, hint=exc.hint) from None

    # running (gcdial.serve.campaign_runs) -----------------------------------------------

    async def start(self, meta: CampaignMeta) -> CampaignMeta:
        """Start (or resume) the run: the journal resumes where the last run left off."""
        return await self.running.start(meta)

    async def halt(self, meta: CampaignMeta, state: str) -> CampaignMeta:
        """Pause (resumable) or stop (final), here or through the store."""
        return await self.running.halt(meta, state)

    def runs(self, campaign_id: str) -> bool:
        """Does this process run the campaign now?"""
        return self.running.runs(campaign_id)

    def live(self, campaign_id: str) -> RunView | None:
        """The runner's live view of ``campaign_id`` when it runs here; None otherwise."""
        return self.running.live(campaign_id)

    def watch(self) -> None:
        """Start taking over, every heartbeat, the campaigns whose replica died."""
        self.running.watch()

    async def stop_all(self) -> None:
        """At shutdown: the runs end here and are left to another replica."""
        await self.running.stop_all()
        self.journals.close()

    async def publish(self, meta: CampaignMeta) -> None:
        """A ``campaign.updated`` event (SSE, webhooks): the campaign as ``status`` shows it.

        Told on every state change and after attempts settle (the counts changed); the event
        log, not this process, carries it, so every replica's streams see it."""
        try:
            body = await asyncio.to_thread(self.status, meta)
            data = {"type": "campaign.updated", "campaign": body, "apiKeyId": meta.api_key_id}
            event = await self.service.db(
                self.service.store.append_event,
                "campaign.updated",
                None,
                json.dumps(data),
                now=self.service.clock(),
            )
            await self.service.hub.notify(event.id)
        except Exception as exc:  # the campaign goes on; watchers see the next change
            why = type(exc).__name__
            logger.warning("campaign %s: no campaign.updated event (%s)", meta.id, why)

    # reading -----------------------------------------------------------------------------

    def status(self, meta: CampaignMeta) -> dict[str, Any]:
        """The campaign as the API shows it: state, settings, counts from the journal."""
        body: dict[str, Any] = {
            "id": meta.id,
            "name": meta.name,
            "state": meta.state,
            "error": meta.error,
            "stopReason": meta.stop_reason,
            "settings": meta.settings,
            "counts": None,
            "links": {
                "self": f"/v1/campaigns/{meta.id}",
                "report": f"/v1/campaigns/{meta.id}/report",
            },
        }
        with contextlib.suppress(JournalError):
            journal = self.journals.read(meta.id)
            if journal is not None:
                try:
                    status = campaign_status(journal)
                finally:
                    journal.close()
                body["counts"] = {
                    "total": status.total,
                    "contacts": status.contacts,
                    "outcomes": status.outcomes,
                    "attempts": status.attempts,
                    "rowsRefused": status.rows_refused,
                    "needsReview": status.needs_review,
                    "inFlight": status.in_flight,
                }
        return body

    def report(self, meta: CampaignMeta, fmt: str) -> str:
        """The per-contact report (CSV or JSON text), made from the journal in memory."""
        journal = self.journals.read(meta.id)
        if journal is None:
            raise ApiProblem(409, "campaign_not_started", f"Campaign {meta.id} has not run yet.")
        try:
            out = io.StringIO()
            write_report(journal, out, fmt="json" if fmt == "json" else "csv")
            return out.getvalue()
        finally:
            journal.close()

    def recent(self, key: Any, limit: int = 20) -> list[CampaignMeta]:
        """The newest campaigns ``key`` may see (of the last 200 created), newest first."""
        newest = self.service.store.list_campaigns(limit=200)
        return [meta for meta in newest if owns(key, meta.api_key_id)][:limit]

    def visible(self, key: Any) -> list[CampaignMeta]:
        """Every campaign ``key`` may see, newest first (the cursor pages sort them)."""
        return [m for m in self.service.store.list_campaigns() if owns(key, m.api_key_id)]

    def reopen(self, meta: CampaignMeta) -> CampaignMeta:
        """A finished campaign that has contacts to dial again (a review put them back) becomes
        paused, so that it can be resumed; any other state is kept."""
        meta = self.load(meta.id, _Owner(meta.api_key_id))
        if meta.state != "finished":
            return meta
        journal = self.journals.read(meta.id)
        if journal is None:
            return meta
        try:
            pending = campaign_status(journal).contacts.get("pending", 0)
        finally:
            journal.close()
        if pending:
            self.update(
                meta, states=("finished",), note="paused (reopened by a review)", state="paused"
            )
        return meta

    def detail(self, meta: CampaignMeta, live: RunView | None) -> dict[str, Any]:
        """The status and, under ``detail``, agents, rate budget, calls per minute, deferred
        contacts. Reads the journal: call it in a thread, with ``live`` from :meth:`live`."""
        body = self.status(meta)
        body["detail"] = campaign_detail(
            functools.partial(self.journals.read, meta.id),
            meta.settings,
            now=datetime.now(UTC),
            run=live,
            budget=getattr(self.service.client, "budget", None),
            monotonic_now=time.monotonic(),
            planned_total=meta.contacts,
        )
        return body

    async def view(self, meta: CampaignMeta) -> dict[str, Any]:
        """:meth:`detail`, with each agent not on a call judged by :mod:`gcdial.readiness` (the
        verdict ``GET /v1/agents`` gives): "idle" only for an agent a call could go to now."""
        body = await asyncio.to_thread(self.detail, meta, self.live(meta.id))
        agents = body["detail"]["agents"]
        idle = [a for a in agents if a.get("state") == "idle"]
        states = await asyncio.gather(*(self.service.agent_state(a["agent"]) for a in idle))
        for agent, state in zip(idle, states, strict=True):
            if not state.ready:
                agent.update(state="not ready", reason=state.reason, why=state.problem)
        return body


@dataclass
class _Owner:
    id: str
    scopes: tuple[str, ...] = ("admin",)
