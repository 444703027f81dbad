"""Campaigns over HTTP: a CSV uploaded once, then start / pause / resume / stop, status, report.

A campaign lives in the service's store, not on a replica's disk: its settings, state and uploaded
list are a ``campaigns`` row (:class:`~gcdial.serve.store.CampaignRecord`), its journal is the one
``gcdial campaign run`` keeps (the intent is committed before each POST, a resume reconciles calls
in flight and never re-dials an unknown outcome; :mod:`gcdial.serve.campaign_journals`).

A replica runs a campaign only while it holds the store's lease ``campaign:<id>`` (its epoch is
the run's fencing token; 30 s, ``ServeConfig.campaign_lease_s``), renewed by a heartbeat every
third of that. Losing it aborts the run, which then writes nothing. Every replica's watcher
looks, on the same beat, for campaigns
left ``running`` with no live lease (their replica died), takes the lease with a new epoch and
resumes them like a resume. Pause and stop sent to a replica that does not run the campaign are
written to the store (``pausing``, ``stopping``): the running replica obeys on its next heartbeat.
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
import shutil
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gcdial.campaign.csvinput import decoded_lines
from gcdial.campaign.journal import JournalError
from gcdial.campaign.report import campaign_status, write_report
from gcdial.campaign.runner import CampaignRunner, RunResult, StopReason
from gcdial.campaign.settings import CampaignSettings
from gcdial.errors import ConfigError, GcdialError, InputFileError, JournalFencedError
from gcdial.private_files import write_private_text
from gcdial.serve.agent_leases import campaign_gate
from gcdial.serve.campaign_calls import CampaignCalls
from gcdial.serve.campaign_form import CampaignForm
from gcdial.serve.campaign_journals import CampaignJournals, Fencing
from gcdial.serve.campaign_views import RunView, campaign_detail, preview_upload, run_view
from gcdial.serve.principal import owns
from gcdial.serve.problems import ApiProblem
from gcdial.serve.store import CampaignRecord, Store

__all__ = ["CampaignManager", "CampaignMeta", "check_csv", "read_upload", "refuse_old_campaigns"]

_CAMPAIGN_ID = re.compile(r"cmp_[0-9a-f]{1,32}")

logger = logging.getLogger("gcdial.serve")

LEASE_TTL_S = 30.0  # the default of ServeConfig.campaign_lease_s
HEARTBEAT_S = LEASE_TTL_S / 3
HALT_WAIT_S = 5.0
MAX_CSV_ERRORS = 5


CampaignMeta = CampaignRecord
"""A campaign as the store keeps it (the name the service's modules know it by)."""

# The states of a campaign some replica runs (or is ending): a start is refused meanwhile.
_LIVE_STATES = ("running", "pausing", "stopping")


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


@dataclass
class _Running:
    runner: CampaignRunner
    task: asyncio.Task[None]
    fence: Fencing
    lost: bool = False  # the lease went to another replica (or expired): write nothing
    leaving: bool = False  # this replica shuts down: leave the campaign running for another


class CampaignManager:
    """Campaigns of one service process; ``client`` and ``store`` come from the service."""

    def __init__(self, service: Any, journals: CampaignJournals | None = None) -> None:
        self.service = service
        self.journals = journals or CampaignJournals.for_store(service.store)
        self._runs: dict[str, _Running] = {}
        self._wanted: dict[str, str] = {}  # id -> "paused" / "stopped" when asked
        # One action at a time per campaign: two supervisors pressing start (or pause) together
        # get one run (one pause) and a 409, never two.
        self._locks: dict[str, asyncio.Lock] = {}
        self._watcher: asyncio.Task[None] | None = None
        self.lease_s: float = service.config.campaign_lease_s
        self.heartbeat_s = self.lease_s / 3

    # the store ---------------------------------------------------------------------------

    def _get(self, campaign_id: str) -> CampaignMeta:
        # ASCII and short: anything else is simply not found.
        store: Store = self.service.store
        found = store.get_campaign(campaign_id) if _CAMPAIGN_ID.fullmatch(campaign_id) else None
        if found is None:
            raise ApiProblem(404, "not_found", f"No campaign {campaign_id!r}.")
        return found

    def _update(
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
        meta = self._get(campaign_id)
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
        self._settings(meta, Path("contacts.csv"))  # refuse bad settings before anything is kept
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

    def _settings(self, meta: CampaignMeta, csv_path: Path) -> CampaignSettings:
        try:
            return CampaignSettings(csv_path=str(csv_path), **meta.settings)
        except GcdialError as exc:
            raise ApiProblem(422, "invalid_settings", exc.message, hint=exc.hint) from None

    def _lock(self, campaign_id: str) -> asyncio.Lock:
        return self._locks.setdefault(campaign_id, asyncio.Lock())

    # running -----------------------------------------------------------------------------

    async def start(self, meta: CampaignMeta) -> CampaignMeta:
        """Start (or resume) the run: the journal resumes where the last run left off."""
        async with self._lock(meta.id):
            # As the campaign is now, not as the request found it before waiting its turn.
            fresh = await asyncio.to_thread(self._get, meta.id)
            if fresh.state in _LIVE_STATES and fresh.id not in self._runs:
                holder = await self.service.db(
                    self.service.store.lease_holder, f"campaign:{meta.id}", now=time.time()
                )
                if holder is not None:
                    raise ApiProblem(
                        409, "campaign_running", f"Another replica runs campaign {meta.id}."
                    )
            return await self._start(fresh)

    async def _start(self, meta: CampaignMeta, *, takeover: bool = False) -> CampaignMeta:
        if meta.id in self._runs:
            raise ApiProblem(409, "campaign_running", f"Campaign {meta.id} is already running.")
        if meta.state in ("stopped", "finished"):
            raise ApiProblem(
                409, "campaign_over", f"Campaign {meta.id} is {meta.state}; it cannot run again."
            )
        owner = self.service.config.instance_id
        lease = f"campaign:{meta.id}"
        store = self.service.store
        epoch = await self.service.db(
            store.acquire_lease, lease, owner, now=time.time(), ttl_s=self.lease_s
        )
        if epoch is None:
            raise ApiProblem(409, "campaign_running", f"Another replica runs campaign {meta.id}.")
        fence: Fencing = (lease, owner, epoch)
        folder = Path(tempfile.mkdtemp(prefix="gcdial-campaign-"))
        try:
            text = await self.service.db(store.campaign_csv, meta.id)
            csv_path = folder / "contacts.csv"
            write_private_text(csv_path, text or "")
            settings = self._settings(meta, csv_path)
            note = f"running (taken over by {owner})" if takeover else "running"
            states = ("running",) if takeover else ("created", "paused", "failed", "running")
            started = await asyncio.to_thread(
                functools.partial(
                    self._update,
                    meta,
                    states=states,
                    fence=fence,
                    note=note,
                    state="running",
                    error=None,
                )
            )
            if started is None:
                raise ApiProblem(
                    409, "campaign_changed", f"Campaign {meta.id} changed meanwhile; try again."
                )
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            with contextlib.suppress(Exception):
                await self.service.db(store.release_lease, lease, owner)
            raise
        calls = CampaignCalls(self.service, meta, on_settled=lambda: self.publish(meta))
        runner = CampaignRunner(
            settings,
            self.service.client,
            journals=self.journals.source(meta.id, fence),
            name=meta.name,
            on_attempt=calls.on_attempt,
            resolve_timeout_s=self.service.config.campaign_resolve_timeout_s,
            gate=campaign_gate(self.service, meta.id),
        )
        self._wanted.pop(meta.id, None)
        task = asyncio.create_task(self._run(meta, runner, calls, folder))
        self._runs[meta.id] = _Running(runner, task, fence)
        if takeover:
            logger.warning("campaign %s: its replica died; taken over (epoch %d)", meta.id, epoch)
        await self.publish(meta)
        return meta

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

    async def _heartbeat(self, meta: CampaignMeta, running: _Running) -> None:
        """Renew the lease every heartbeat, and obey a pause or stop written to the store
        by another replica. A lease lost (another epoch, or another owner) aborts the run."""
        store = self.service.store
        lease, owner, epoch = running.fence
        while True:
            await asyncio.sleep(self.heartbeat_s)
            try:
                held = await self.service.db(
                    store.acquire_lease, lease, owner, now=time.time(), ttl_s=self.lease_s
                )
            except Exception as exc:  # the store is away: the lease may lapse, the fence holds
                logger.warning("campaign %s: heartbeat failed (%s)", meta.id, type(exc).__name__)
                continue
            if held != epoch:
                running.lost = True
                logger.warning("campaign %s: lease lost; this replica stops running it", meta.id)
                if held is not None:  # re-taken after it lapsed: give it up for a clean takeover
                    with contextlib.suppress(Exception):
                        await self.service.db(store.release_lease, lease, owner)
                running.runner.abort()
                return
            with contextlib.suppress(Exception):
                now = await self.service.db(store.get_campaign, meta.id)
                wanted = {"pausing": "paused", "stopping": "stopped"}.get(now.state if now else "")
                if wanted is not None and self._wanted.get(meta.id) not in (wanted, "stopped"):
                    self._wanted[meta.id] = wanted
                    meta.state = now.state if now else meta.state
                    running.runner.request_stop()

    async def _run(
        self, meta: CampaignMeta, runner: CampaignRunner, calls: CampaignCalls, folder: Path
    ) -> None:
        store = self.service.store
        running = self._runs[meta.id]  # registered by _start before this task first runs
        lease, owner, _ = running.fence
        beating = asyncio.create_task(self._heartbeat(meta, running))
        changes: dict[str, Any] = {}
        try:
            result = await runner.run()
            if isinstance(result.error, JournalFencedError):
                # Its next attempt wrote nothing and dialed nothing: another replica holds it.
                logger.warning("campaign %s: fenced (%s)", meta.id, result.error.message)
                running.lost = True
            changes = self._ended(meta, result)
        except asyncio.CancelledError:
            changes = {"state": "paused"}
            raise
        except JournalFencedError as exc:
            logger.warning("campaign %s: fenced (%s)", meta.id, exc.message)
            running.lost = True
        except Exception as exc:
            changes = {
                "state": "failed",
                "error": str(exc) if isinstance(exc, GcdialError) else type(exc).__name__,
            }
        finally:
            beating.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beating
            await calls.close()
            shutil.rmtree(folder, ignore_errors=True)
            self._runs.pop(meta.id, None)
            if running.lost or running.leaving:
                # Another replica runs it now (or will): this one writes nothing.
                logger.warning("campaign %s: run ended here, left to another replica", meta.id)
                self._wanted.pop(meta.id, None)
            else:
                with contextlib.suppress(Exception):
                    await asyncio.to_thread(
                        functools.partial(
                            self._update,
                            meta,
                            fence=running.fence,
                            note=changes["state"],
                            **changes,
                        )
                    )
            with contextlib.suppress(Exception):
                await self.service.db(store.release_lease, lease, owner)
            if not running.lost:
                await self.publish(meta)

    def _ended(self, meta: CampaignMeta, result: RunResult) -> dict[str, Any]:
        """The campaign's fields once its run ended with ``result``."""
        wanted = self._wanted.pop(meta.id, None)
        changes: dict[str, Any] = {"stop_reason": result.reason.value, "error": None}
        if wanted is not None:
            changes["state"] = wanted
        elif result.reason is StopReason.FAILED:
            changes["state"] = "failed"
            changes["error"] = str(result.error) if result.error else "the run failed"
        elif result.reason is StopReason.FINISHED:
            changes["state"] = "finished"
        else:
            changes["state"] = "paused"
        return changes

    async def halt(self, meta: CampaignMeta, state: str) -> CampaignMeta:
        """Pause (resumable) or stop (final): no new calls; calls in progress are followed.

        When another replica runs the campaign, the order is written to the store
        (``pausing``/``stopping``) and that replica obeys on its next heartbeat."""
        async with self._lock(meta.id):
            meta = await asyncio.to_thread(self._get, meta.id)
            if meta.state in ("stopped", "finished"):
                raise ApiProblem(409, "campaign_over", f"Campaign {meta.id} is {meta.state}.")
            running = self._runs.get(meta.id)
            if running is None:
                return await self._halt_elsewhere(meta, state)
            asked = self._wanted.get(meta.id)
            if asked in (state, "stopped"):
                raise _halting(meta)
            self._wanted[meta.id] = state
            running.runner.request_stop()
            ending = "pausing" if state == "paused" else "stopping"
            await asyncio.to_thread(
                functools.partial(self._update, meta, fence=running.fence, state=ending)
            )
            await self.publish(meta)
            task = running.task
        # Calls in progress are followed to their end: answer at once if that takes a while.
        with contextlib.suppress(asyncio.CancelledError, Exception, TimeoutError):
            await asyncio.wait_for(asyncio.shield(task), HALT_WAIT_S)
        return await asyncio.to_thread(self._get, meta.id)

    async def _halt_elsewhere(self, meta: CampaignMeta, state: str) -> CampaignMeta:
        """Pause or stop a campaign this replica does not run: the order goes to the store."""
        holder = await self.service.db(
            self.service.store.lease_holder, f"campaign:{meta.id}", now=time.time()
        )
        if meta.state in _LIVE_STATES and holder is not None:
            ending = "pausing" if state == "paused" else "stopping"
            if meta.state == ending or meta.state == "stopping":
                raise _halting(meta)
            changed = await asyncio.to_thread(
                functools.partial(self._update, meta, states=("running", "pausing"), state=ending)
            )
            if changed is None:
                raise _halting(meta)
            await self.publish(meta)
            return meta
        if state == "paused" and meta.state not in _LIVE_STATES:
            raise ApiProblem(409, "campaign_not_running", f"Campaign {meta.id} is not running.")
        await asyncio.to_thread(
            functools.partial(self._update, meta, states=(meta.state,), note=state, state=state)
        )
        await self.publish(meta)
        return meta

    # takeover ----------------------------------------------------------------------------

    def watch(self) -> None:
        """Start looking, every heartbeat, for campaigns whose replica died."""
        if self._watcher is None:
            self._watcher = asyncio.create_task(self._watch(), name="gcdial-serve-campaigns")

    async def _watch(self) -> None:
        while True:
            try:
                await self.take_over()
            except Exception as exc:  # the store is away: try again on the next beat
                logger.warning("campaign takeover scan failed (%s)", type(exc).__name__)
            await asyncio.sleep(self.heartbeat_s)

    async def take_over(self) -> list[str]:
        """Take over (and resume) every running campaign whose lease is absent or expired; end
        those a dead replica was pausing or stopping. Returns the ids taken over here."""
        store = self.service.store
        orphans = await self.service.db(store.orphaned_campaigns, now=time.time())
        taken = []
        for orphan in orphans:
            if orphan.id in self._runs:
                continue
            async with self._lock(orphan.id):
                try:
                    if orphan.state == "running":
                        await self._start(orphan, takeover=True)
                        taken.append(orphan.id)
                    else:
                        await self._end_orphan(orphan)
                except ApiProblem:
                    continue  # another replica was quicker, or it changed meanwhile
        return taken

    async def _end_orphan(self, meta: CampaignMeta) -> None:
        """A campaign whose replica died while pausing or stopping it: paused or stopped now
        (its calls in flight are reconciled by the next resume), under its lease."""
        owner = self.service.config.instance_id
        lease = f"campaign:{meta.id}"
        store = self.service.store
        epoch = await self.service.db(
            store.acquire_lease, lease, owner, now=time.time(), ttl_s=self.lease_s
        )
        if epoch is None:
            return
        try:
            final = "paused" if meta.state == "pausing" else "stopped"
            await asyncio.to_thread(
                functools.partial(
                    self._update,
                    meta,
                    states=(meta.state,),
                    fence=(lease, owner, epoch),
                    note=f"{final} (its replica died)",
                    state=final,
                )
            )
        finally:
            with contextlib.suppress(Exception):
                await self.service.db(store.release_lease, lease, owner)
        await self.publish(meta)

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

    def runs(self, campaign_id: str) -> bool:
        """Does this process run the campaign now?"""
        return campaign_id in self._runs

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
            self._update(
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

    def live(self, campaign_id: str) -> RunView | None:
        """The runner's live view of ``campaign_id`` when it runs here, copied on the event loop
        (where the runner changes it); None otherwise."""
        running = self._runs.get(campaign_id)
        if running is None:
            return None
        runner = running.runner
        return run_view(runner.progress, runner.settings.concurrency, time.monotonic())

    async def stop_all(self) -> None:
        """At shutdown: stop handing out calls and give the leases up; the campaigns stay
        ``running``, so another replica (or this one, restarted) takes them over and resumes
        them from their journals."""
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._watcher
            self._watcher = None
        for running in list(self._runs.values()):
            running.leaving = True
            running.runner.abort()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await running.task
        self.journals.close()


def _halting(meta: CampaignMeta) -> ApiProblem:
    return ApiProblem(
        409,
        "campaign_halting",
        f"Campaign {meta.id} is already {meta.state}: someone asked before you.",
        hint="Calls in progress are followed to their end; watch the campaign's state.",
    )


@dataclass
class _Owner:
    id: str
    scopes: tuple[str, ...] = ("admin",)
