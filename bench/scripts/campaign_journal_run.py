"""One campaign run with its journal where bench/campaign_store.py says (a child process).

argv: kind (file | sqlite | postgres), target (the journal file, the store's SQLite file, or the
PostgreSQL URL), the list, the agents (comma-separated). The emulator's URL and credentials come
from GCDIAL_BASE_URL and GENESYSCLOUD_OAUTHCLIENT_ID / _SECRET.

``file`` is the CLI's one-file journal beside the list (``FileJournal``). ``sqlite`` and
``postgres`` are the service's: a store is opened (its schema made), the campaign's lease taken
as a replica takes it, and the journal opened through ``CampaignJournals.source`` fenced by that
lease, so that every attempt's intent checks the lease in its own transaction, as in
``gcdial serve``.

Prints one JSON line: the run's wall time and this process's CPU time over ``runner.run()`` only
(start-up, imports and the store's set-up are left out, alike for every kind), the time the
journal's worker thread spent running journal work, and the run's counts.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from gcdial.campaign.dbthread import JournalThread
from gcdial.campaign.journal_source import FileJournal, JournalSource
from gcdial.campaign.runner import CampaignRunner
from gcdial.campaign.settings import CampaignSettings
from gcdial.client import AsyncClient

CAMPAIGN = "bench-campaign"
OWNER = "bench-replica"
LEASE_TTL_S = 3600.0  # no heartbeat in this run: the lease outlives it


def _source(kind: str, target: str) -> JournalSource:
    if kind == "file":
        return FileJournal(Path(target))
    from gcdial.serve.campaign_journals import CampaignJournals

    store: Any
    if kind == "sqlite":
        from gcdial.serve.sqlite_store import SqliteStore

        store = SqliteStore(Path(target))
    elif kind == "postgres":
        from gcdial.serve.pg_store import PostgresStore

        store = PostgresStore(target)
    else:
        raise SystemExit(f"unknown journal kind {kind!r}")
    lease = f"campaign:{CAMPAIGN}"
    epoch = store.acquire_lease(lease, OWNER, now=time.time(), ttl_s=LEASE_TTL_S)
    if epoch is None:
        raise SystemExit(f"the lease {lease} is held by another owner")
    journals = CampaignJournals.for_store(store)
    store.close()
    return journals.source(CAMPAIGN, (lease, OWNER, epoch))


_busy = [0.0]


def _timed_journal_thread() -> None:
    """Count the time the journal's one worker thread spends running journal work: when it is
    busy for most of the run, the journal is what binds."""
    call = JournalThread.call

    async def timed(self: JournalThread, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
        def run() -> Any:
            started = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                _busy[0] += time.perf_counter() - started

        return await call(self, run)

    JournalThread.call = timed  # type: ignore[method-assign]


async def main(kind: str, target: str, csv: str, agents: str) -> dict[str, Any]:
    source = _source(kind, target)
    settings = CampaignSettings(
        csv_path=csv, agents=tuple(agents.split(",")), window="00:00-24:00", max_attempts=1
    )
    async with AsyncClient(
        base_url=os.environ["GCDIAL_BASE_URL"],
        client_id=os.environ["GENESYSCLOUD_OAUTHCLIENT_ID"],
        client_secret=os.environ["GENESYSCLOUD_OAUTHCLIENT_SECRET"],
    ) as client:
        runner = CampaignRunner(settings, client, journals=source, name=CAMPAIGN)
        _timed_journal_thread()
        cpu, wall = time.process_time(), time.perf_counter()
        result = await runner.run()
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    if result.error is not None:
        raise result.error
    progress = result.progress
    return {
        "kind": kind,
        "reason": str(result.reason.value),
        "calls_placed": progress.placed,
        "unknown": progress.unknown,
        "by_status": dict(progress.by_status),
        "run_s": wall,
        "run_cpu_s": cpu,
        "journal_busy_s": _busy[0],
    }


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(*sys.argv[1:5]))))
