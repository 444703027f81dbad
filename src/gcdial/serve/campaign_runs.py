"""The campaigns this replica runs: start, pause and stop, the heartbeat, and the takeover.

A replica runs a campaign only while it holds the store's lease ``campaign:<id>`` (its epoch is
the run's fencing token; ``ServeConfig.campaign_lease_s``, 30 s), renewed by a heartbeat every
third of that. Losing it aborts the run, which then writes nothing. Every replica's watcher
looks, on the same beat, for campaigns left ``running`` with no live lease (their replica died),
takes the lease with a new epoch and resumes them like a resume. Pause and stop sent to a replica
that does not run the campaign are written to the store (``pausing``, ``stopping``): the running
replica obeys on its next heartbeat.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gcdial.campaign.runner import CampaignRunner, RunResult, StopReason
from gcdial.errors import GcdialError, JournalFencedError
from gcdial.private_files import write_private_text
from gcdial.serve.agent_leases import campaign_gate
from gcdial.serve.campaign_calls import CampaignCalls
from gcdial.serve.campaign_journals import Fencing
from gcdial.serve.campaign_views import RunView, run_view
from gcdial.serve.problems import ApiProblem
from gcdial.serve.store import CampaignRecord as CampaignMeta

if TYPE_CHECKING:
    from gcdial.serve.campaigns import CampaignManager

__all__ = ["HALT_WAIT_S", "LEASE_TTL_S", "CampaignRuns"]

logger = logging.getLogger("gcdial.serve")

LEASE_TTL_S = 30.0  # the default of ServeConfig.campaign_lease_s
HALT_WAIT_S = 5.0
# The states of a campaign some replica runs (or is ending): a start is refused meanwhile.
LIVE_STATES = ("running", "pausing", "stopping")


@dataclass
class _Running:
    runner: CampaignRunner
    task: asyncio.Task[None]
    fence: Fencing
    lost: bool = False  # the lease went to another replica (or expired): write nothing
    leaving: bool = False  # this replica shuts down: leave the campaign running for another


class CampaignRuns:
    """The runs of one service process, for its :class:`CampaignManager`."""

    def __init__(self, manager: CampaignManager) -> None:
        self.manager = manager
        self.service = manager.service
        self._runs: dict[str, _Running] = {}
        self._wanted: dict[str, str] = {}  # id -> "paused" / "stopped" when asked
        # One action at a time per campaign: two supervisors pressing start (or pause) together
        # get one run (one pause) and a 409, never two.
        self._locks: dict[str, asyncio.Lock] = {}
        self._watcher: asyncio.Task[None] | None = None
        self.lease_s: float = self.service.config.campaign_lease_s
        self.heartbeat_s = self.lease_s / 3

    def _lock(self, campaign_id: str) -> asyncio.Lock:
        return self._locks.setdefault(campaign_id, asyncio.Lock())

    async def start(self, meta: CampaignMeta) -> CampaignMeta:
        """Start (or resume) the run: the journal resumes where the last run left off."""
        async with self._lock(meta.id):
            # As the campaign is now, not as the request found it before waiting its turn.
            fresh = await asyncio.to_thread(self.manager.get, meta.id)
            if fresh.state in LIVE_STATES and fresh.id not in self._runs:
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
        lease, owner, epoch = await self._take_lease(meta)
        if epoch is None:
            raise ApiProblem(409, "campaign_running", f"Another replica runs campaign {meta.id}.")
        store = self.service.store
        fence: Fencing = (lease, owner, epoch)
        folder = Path(tempfile.mkdtemp(prefix="gcdial-campaign-"))
        try:
            text = await self.service.db(store.campaign_csv, meta.id)
            csv_path = folder / "contacts.csv"
            write_private_text(csv_path, text or "")
            settings = self.manager.settings_for(meta, csv_path)
            # Off the event loop: the first use makes the journal's tables (a round trip).
            journals = await asyncio.to_thread(self.manager.journals.source, meta.id, fence)
            note = f"running (taken over by {owner})" if takeover else "running"
            states = ("running",) if takeover else ("created", "paused", "failed", "running")
            started = await asyncio.to_thread(
                functools.partial(
                    self.manager.update,
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
        calls = CampaignCalls(self.service, meta, on_settled=lambda: self.manager.publish(meta))
        runner = CampaignRunner(
            settings,
            self.service.client,
            journals=journals,
            name=meta.name,
            on_attempt=calls.on_attempt,
            resolve_timeout_s=self.service.config.campaign_resolve_timeout_s,
            gate=campaign_gate(self.service, meta.id),
            intent_ladder=self.manager.intent_ladder,
        )
        self._wanted.pop(meta.id, None)
        task = asyncio.create_task(self._run(meta, runner, calls, folder))
        self._runs[meta.id] = _Running(runner, task, fence)
        if takeover:
            logger.warning("campaign %s: its replica died; taken over (epoch %d)", meta.id, epoch)
        await self.manager.publish(meta)
        return meta

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
                            self.manager.update,
                            meta,
                            fence=running.fence,
                            note=changes["state"],
                            **changes,
                        )
                    )
            with contextlib.suppress(Exception):
                await self.service.db(store.release_lease, lease, owner)
            if not running.lost:
                await self.manager.publish(meta)

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
            meta = await asyncio.to_thread(self.manager.get, meta.id)
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
                functools.partial(self.manager.update, meta, fence=running.fence, state=ending)
            )
            await self.manager.publish(meta)
            task = running.task
        # Calls in progress are followed to their end: answer at once if that takes a while.
        with contextlib.suppress(asyncio.CancelledError, Exception, TimeoutError):
            await asyncio.wait_for(asyncio.shield(task), HALT_WAIT_S)
        return await asyncio.to_thread(self.manager.get, meta.id)

    async def _halt_elsewhere(self, meta: CampaignMeta, state: str) -> CampaignMeta:
        """Pause or stop a campaign this replica does not run: the order goes to the store."""
        holder = await self.service.db(
            self.service.store.lease_holder, f"campaign:{meta.id}", now=time.time()
        )
        if meta.state in LIVE_STATES and holder is not None:
            ending = "pausing" if state == "paused" else "stopping"
            if meta.state == ending or meta.state == "stopping":
                raise _halting(meta)
            changed = await asyncio.to_thread(
                functools.partial(
                    self.manager.update, meta, states=("running", "pausing"), state=ending
                )
            )
            if changed is None:
                raise _halting(meta)
            await self.manager.publish(meta)
            return meta
        if state == "paused" and meta.state not in LIVE_STATES:
            raise ApiProblem(409, "campaign_not_running", f"Campaign {meta.id} is not running.")
        await asyncio.to_thread(
            functools.partial(
                self.manager.update, meta, states=(meta.state,), note=state, state=state
            )
        )
        await self.manager.publish(meta)
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

    async def _take_lease(self, meta: CampaignMeta) -> tuple[str, str, int | None]:
        """Take (or renew) the campaign's lease: its name, this replica, and the epoch held
        (None when another replica holds it)."""
        owner = self.service.config.instance_id
        lease = f"campaign:{meta.id}"
        epoch = await self.service.db(
            self.service.store.acquire_lease, lease, owner, now=time.time(), ttl_s=self.lease_s
        )
        return lease, owner, epoch

    async def _end_orphan(self, meta: CampaignMeta) -> None:
        """A campaign whose replica died while pausing or stopping it: paused or stopped now
        (its calls in flight are reconciled by the next resume), under its lease."""
        lease, owner, epoch = await self._take_lease(meta)
        if epoch is None:
            return
        store = self.service.store
        try:
            final = "paused" if meta.state == "pausing" else "stopped"
            await asyncio.to_thread(
                functools.partial(
                    self.manager.update,
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
        await self.manager.publish(meta)

    def runs(self, campaign_id: str) -> bool:
        """Does this process run the campaign now?"""
        return campaign_id in self._runs

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


def _halting(meta: CampaignMeta) -> ApiProblem:
    return ApiProblem(
        409,
        "campaign_halting",
        f"Campaign {meta.id} is already {meta.state}: someone asked before you.",
        hint="Calls in progress are followed to their end; watch the campaign's state.",
    )
