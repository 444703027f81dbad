"""Campaigns over HTTP: a CSV uploaded once, then start / pause / resume / stop, status, report.

Each campaign is a directory holding the uploaded CSV, the campaign's journal (the same journal
and guarantees as ``gcdial campaign run``: the intent is committed before each POST, a resume
reconciles calls in flight and never re-dials an unknown outcome) and ``meta.json`` (state and
settings). A replica runs a campaign only while it holds the store's lease ``campaign:<id>``,
renewed by a heartbeat; losing it aborts the run, and the next start resumes from the journal.
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
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gcdial.campaign.csvinput import decoded_lines
from gcdial.campaign.journal import Journal, JournalError
from gcdial.campaign.report import campaign_status, write_report
from gcdial.campaign.runner import CampaignRunner, StopReason
from gcdial.campaign.settings import CampaignSettings
from gcdial.errors import GcdialError, InputFileError
from gcdial.private_files import write_private_text
from gcdial.serve.campaign_calls import CampaignCalls
from gcdial.serve.campaign_form import CampaignForm
from gcdial.serve.campaign_views import RunView, campaign_detail, preview_upload, run_view
from gcdial.serve.principal import owns
from gcdial.serve.problems import ApiProblem

__all__ = ["CampaignManager", "CampaignMeta", "check_csv", "read_upload"]

_CAMPAIGN_ID = re.compile(r"cmp_[0-9a-f]{1,32}")

logger = logging.getLogger("gcdial.serve")

LEASE_TTL_S = 30.0
HEARTBEAT_S = 10.0
HALT_WAIT_S = 5.0
MAX_CSV_ERRORS = 5


@dataclass
class CampaignMeta:
    """What ``meta.json`` holds."""

    id: str
    name: str
    api_key_id: str
    created_at: float
    settings: dict[str, Any]
    state: str = "created"  # created, running, pausing, paused, stopping, stopped, finished, failed
    # The list's contacts as the upload's check counted them: the total shown before the first
    # run creates the journal (which counts them from then on).
    contacts: int | None = None
    error: str | None = None
    stop_reason: str | None = None
    history: list[str] = field(default_factory=list)


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
    """Campaigns of one service process; ``client`` and ``store`` come from the service."""

    def __init__(self, root: Path, service: Any) -> None:
        self.root = root
        self.service = service
        self._runs: dict[str, tuple[CampaignRunner, asyncio.Task[None]]] = {}
        self._wanted: dict[str, str] = {}  # id -> "paused" / "stopped" when asked
        # One action at a time per campaign: two supervisors pressing start (or pause) together
        # get one run (one pause) and a 409, never two.
        self._locks: dict[str, asyncio.Lock] = {}

    def _dir(self, campaign_id: str) -> Path:
        # ASCII and short: a long or non-ASCII id is simply not found (a path too long for the
        # file system would otherwise fail in the OS, as a 500).
        if not _CAMPAIGN_ID.fullmatch(campaign_id):
            raise ApiProblem(404, "not_found", f"No campaign {campaign_id!r}.")
        return self.root / campaign_id

    def _save(self, meta: CampaignMeta) -> None:
        path = self._dir(meta.id) / "meta.json"
        write_private_text(path, json.dumps(asdict(meta)))

    def load(self, campaign_id: str, key: Any) -> CampaignMeta:
        """The campaign's meta, if ``key`` may see it."""
        path = self._dir(campaign_id) / "meta.json"
        if not path.is_file():
            raise ApiProblem(404, "not_found", f"No campaign {campaign_id!r}.")
        meta = CampaignMeta(**json.loads(path.read_text()))
        if not owns(key, meta.api_key_id):
            raise ApiProblem(404, "not_found", f"No campaign {campaign_id!r}.")
        return meta

    def create(
        self,
        key: Any,
        name: str,
        text: str,
        settings: dict[str, Any],
        *,
        contacts: int | None = None,
    ) -> CampaignMeta:
        """Store the CSV and the settings; nothing is dialed until ``start``."""
        campaign_id = "cmp_" + uuid.uuid4().hex[:16]
        folder = self.root / campaign_id
        folder.mkdir(parents=True, mode=0o700)
        write_private_text(folder / "contacts.csv", text)
        meta = CampaignMeta(
            id=campaign_id,
            name=name,
            api_key_id=key.id,
            created_at=time.time(),
            settings=settings,
            contacts=contacts,
        )
        self._settings(meta)  # refuse bad settings before anything is kept
        self._save(meta)
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

    def _settings(self, meta: CampaignMeta) -> CampaignSettings:
        folder = self._dir(meta.id)
        try:
            return CampaignSettings(csv_path=str(folder / "contacts.csv"), **meta.settings)
        except GcdialError as exc:
            raise ApiProblem(422, "invalid_settings", exc.message, hint=exc.hint) from None

    def _lock(self, campaign_id: str) -> asyncio.Lock:
        return self._locks.setdefault(campaign_id, asyncio.Lock())

    async def start(self, meta: CampaignMeta) -> CampaignMeta:
        """Start (or resume) the run: the journal resumes where the last run left off."""
        async with self._lock(meta.id):
            # As the campaign is now, not as the request found it before waiting its turn.
            return await self._start(self.load(meta.id, _Owner(meta.api_key_id)))

    async def _start(self, meta: CampaignMeta) -> CampaignMeta:
        if meta.id in self._runs:
            raise ApiProblem(409, "campaign_running", f"Campaign {meta.id} is already running.")
        if meta.state in ("stopped", "finished"):
            raise ApiProblem(
                409, "campaign_over", f"Campaign {meta.id} is {meta.state}; it cannot run again."
            )
        owner = self.service.config.instance_id
        lease = f"campaign:{meta.id}"
        store = self.service.store
        if not await self.service.db(
            store.acquire_lease, lease, owner, now=time.time(), ttl_s=LEASE_TTL_S
        ):
            raise ApiProblem(409, "campaign_running", f"Another replica runs campaign {meta.id}.")
        settings = self._settings(meta)
        calls = CampaignCalls(self.service, meta, on_settled=lambda: self.publish(meta))
        runner = CampaignRunner(
            settings,
            self.service.client,
            journal_path=self._dir(meta.id) / "journal.db",
            name=meta.name,
            on_attempt=calls.on_attempt,
            resolve_timeout_s=self.service.config.campaign_resolve_timeout_s,
        )
        meta.state, meta.error = "running", None
        meta.history.append(f"{time.time():.0f} running")
        self._save(meta)
        self._wanted.pop(meta.id, None)
        task = asyncio.create_task(self._run(meta, runner, calls, lease, owner))
        self._runs[meta.id] = (runner, task)
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

    async def _run(
        self,
        meta: CampaignMeta,
        runner: CampaignRunner,
        calls: CampaignCalls,
        lease: str,
        owner: str,
    ) -> None:
        store = self.service.store

        async def heartbeat() -> None:
            while True:
                await asyncio.sleep(HEARTBEAT_S)
                held = await self.service.db(
                    store.acquire_lease, lease, owner, now=time.time(), ttl_s=LEASE_TTL_S
                )
                if not held:
                    runner.abort()
                    return

        beating = asyncio.create_task(heartbeat())
        try:
            result = await runner.run()
            wanted = self._wanted.pop(meta.id, None)
            meta.stop_reason = result.reason.value
            if wanted is not None:
                meta.state = wanted
            elif result.reason is StopReason.FAILED:
                meta.state = "failed"
                meta.error = str(result.error) if result.error else "the run failed"
            elif result.reason is StopReason.FINISHED:
                meta.state = "finished"
            else:
                meta.state = "paused"
        except asyncio.CancelledError:
            meta.state = "paused"
            raise
        except Exception as exc:
            meta.state = "failed"
            meta.error = str(exc) if isinstance(exc, GcdialError) else type(exc).__name__
        finally:
            beating.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beating
            await calls.close()
            meta.history.append(f"{time.time():.0f} {meta.state}")
            self._save(meta)
            self._runs.pop(meta.id, None)
            with contextlib.suppress(Exception):
                await self.service.db(store.release_lease, lease, owner)
            await self.publish(meta)

    async def halt(self, meta: CampaignMeta, state: str) -> CampaignMeta:
        """Pause (resumable) or stop (final): no new calls; calls in progress are followed."""
        async with self._lock(meta.id):
            meta = self.load(meta.id, _Owner(meta.api_key_id))
            if meta.state in ("stopped", "finished"):
                raise ApiProblem(409, "campaign_over", f"Campaign {meta.id} is {meta.state}.")
            running = self._runs.get(meta.id)
            if running is None:
                if state == "paused" and meta.state != "running":
                    raise ApiProblem(
                        409, "campaign_not_running", f"Campaign {meta.id} is not running."
                    )
                meta.state = state
                meta.history.append(f"{time.time():.0f} {state}")
                self._save(meta)
                await self.publish(meta)
                return meta
            asked = self._wanted.get(meta.id)
            if asked in (state, "stopped"):
                raise ApiProblem(
                    409,
                    "campaign_halting",
                    f"Campaign {meta.id} is already {meta.state}: someone asked before you.",
                    hint="Calls in progress are followed to their end; watch the campaign's state.",
                )
            self._wanted[meta.id] = state
            runner, task = running
            runner.request_stop()
            meta.state = "pausing" if state == "paused" else "stopping"
            self._save(meta)
            await self.publish(meta)
        # Calls in progress are followed to their end: answer at once if that takes a while.
        with contextlib.suppress(asyncio.CancelledError, Exception, TimeoutError):
            await asyncio.wait_for(asyncio.shield(task), HALT_WAIT_S)
        return self.load(meta.id, _Owner(meta.api_key_id))

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
        journal_path = self._dir(meta.id) / "journal.db"
        if journal_path.is_file():
            with contextlib.suppress(JournalError):
                journal = Journal.open(journal_path, read_only=True)
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
        """The per-contact report (CSV or JSON text)."""
        journal_path = self._dir(meta.id) / "journal.db"
        if not journal_path.is_file():
            raise ApiProblem(409, "campaign_not_started", f"Campaign {meta.id} has not run yet.")
        journal = Journal.open(journal_path, read_only=True)
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
        if not self.root.is_dir():
            return []
        folders = sorted(self.root.glob("cmp_*"), key=lambda p: p.stat().st_mtime)
        found: list[CampaignMeta] = []
        for folder in reversed(folders[-200:]):
            try:
                found.append(self.load(folder.name, key))
            except ApiProblem:
                continue  # another key's campaign
            except (OSError, TypeError, ValueError) as exc:
                # One folder that cannot be read (half written, another gcdial's) must not
                # take the whole list down.
                logger.warning("campaign %s skipped: %s", folder.name, type(exc).__name__)
                continue
            if len(found) >= limit:
                break
        return found

    def reopen(self, meta: CampaignMeta) -> CampaignMeta:
        """A finished campaign that has contacts to dial again (a review put them back) becomes
        paused, so that it can be resumed; any other state is kept."""
        meta = self.load(meta.id, _Owner(meta.api_key_id))
        if meta.state != "finished":
            return meta
        journal = Journal.open(self._dir(meta.id) / "journal.db", read_only=True)
        try:
            pending = campaign_status(journal).contacts.get("pending", 0)
        finally:
            journal.close()
        if pending:
            meta.state = "paused"
            meta.history.append(f"{time.time():.0f} paused (reopened by a review)")
            self._save(meta)
        return meta

    def detail(self, meta: CampaignMeta, live: RunView | None) -> dict[str, Any]:
        """The status and, under ``detail``, agents, rate budget, calls per minute, deferred
        contacts. Reads the journal: call it in a thread, with ``live`` from :meth:`live`."""
        body = self.status(meta)
        body["detail"] = campaign_detail(
            self._dir(meta.id) / "journal.db",
            meta.settings,
            now=datetime.now(UTC),
            run=live,
            budget=getattr(self.service.client, "budget", None),
            monotonic_now=time.monotonic(),
            planned_total=meta.contacts,
        )
        return body

    def live(self, campaign_id: str) -> RunView | None:
        """The runner's live view of ``campaign_id`` when it runs here, copied on the event loop
        (where the runner changes it); None otherwise."""
        running = self._runs.get(campaign_id)
        if running is None:
            return None
        runner = running[0]
        return run_view(runner.progress, runner.settings.concurrency, time.monotonic())

    async def stop_all(self) -> None:
        """At shutdown: stop handing out calls; the next start resumes from the journals."""
        for runner, task in list(self._runs.values()):
            runner.abort()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


@dataclass
class _Owner:
    id: str
    scopes: tuple[str, ...] = ("admin",)
