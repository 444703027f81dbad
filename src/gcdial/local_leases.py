"""Agent exclusivity for the CLI's campaigns: one live call per agent across every run on a machine.

A campaign run keeps each of its agents to one call at a time, but two runs started in two
terminals (or a run and its accidental twin from cron) know nothing of each other, and an agent
in both lists would be given two calls at once. Every CLI campaign therefore takes its agents'
rows in one small SQLite file shared by all of this user's runs on the machine, through the same
gate as the service (:class:`gcdial.gate.ExclusiveGate`), and the service's ``live_agents``
semantics:

- a row per agent with a live call, keyed by the org's API address and the agent's user id (two
  orgs, or two sandboxes, never block each other);
- taken in one ``BEGIN IMMEDIATE`` transaction, so two processes cannot both take it;
- released when the call ends or was not placed;
- renewed by its process every ``ttl_s / 3`` (a heartbeat), so that the rows of a process killed
  with -9 expire ``ttl_s`` after its last heartbeat. Not at once: the agent may still be talking
  on the call the dead run placed. Except for the run that resumes the same journal (``run``,
  the journal's path; only one process at a time holds a journal's lock): it takes its dead
  predecessor's rows over, since it reconciles that run's calls itself before it dials again.

If the file cannot be written, the gate refuses the dial (``store_unavailable``): a dial is never
sent without its row.

The file is ``$GCDIAL_AGENT_LOCKS`` when set, else ``$XDG_STATE_HOME/gcdial/live-agents.sqlite3``
(``~/.local/state/gcdial/live-agents.sqlite3``), mode 0600: it names agents and their calls.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import Final

from gcdial.private_files import create_private, secure_sqlite

__all__ = ["DEFAULT_TTL_S", "LocalAgentLeases", "default_path", "holding"]

DEFAULT_TTL_S: Final = 60.0
"""How long a row outlives its process's last heartbeat."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS live_agents (
    agent TEXT PRIMARY KEY,
    call_id TEXT NOT NULL,
    owner TEXT NOT NULL,
    run TEXT NOT NULL,
    expires_at REAL NOT NULL
)
"""


def default_path(environ: Mapping[str, str] = os.environ) -> Path:
    """Where this user's runs keep their agents' rows."""
    explicit = environ.get("GCDIAL_AGENT_LOCKS", "")
    if explicit:
        return Path(explicit).expanduser()
    state = environ.get("XDG_STATE_HOME", "")
    base = Path(state) if state and Path(state).is_absolute() else Path.home() / ".local" / "state"
    return base / "gcdial" / "live-agents.sqlite3"


class LocalAgentLeases:
    """:class:`gcdial.gate.AgentLeases` over a SQLite file shared by this user's processes.

    ``scope`` names the org (its API address), so that the same user id in two orgs is two
    agents; ``run`` names the campaign run's journal. Methods are blocking; the async ones run
    them in a worker thread.
    """

    def __init__(
        self,
        path: Path,
        scope: str,
        run: str,
        *,
        ttl_s: float = DEFAULT_TTL_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = path
        self.scope = scope
        self.run = run
        self.ttl_s = ttl_s
        self.owner = f"{os.getpid()}:{uuid.uuid4().hex[:12]}"
        self._clock = clock
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        create_private(path)
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=10)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(_SCHEMA)
        secure_sqlite(path)

    def close(self) -> None:
        """Close the file (rows still held stay until released elsewhere or expired)."""
        with self._lock:
            self._db.close()

    def _key(self, agent_id: str) -> str:
        return f"{self.scope}|{agent_id}"

    def claim_now(self, agent_id: str, call_id: str) -> str | None:
        """Take the agent's row for ``call_id``: None when granted, else the call holding it."""
        now = self._clock()
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                row = self._db.execute(
                    "SELECT call_id, expires_at, run, owner FROM live_agents WHERE agent = ?",
                    (self._key(agent_id),),
                ).fetchone()
                inherited = row is not None and row[2] == self.run and row[3] != self.owner
                if row is not None and row[1] > now and not inherited:
                    self._db.execute("ROLLBACK")
                    return str(row[0])
                self._db.execute(
                    "INSERT OR REPLACE INTO live_agents (agent, call_id, owner, run, expires_at) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (self._key(agent_id), call_id, self.owner, self.run, now + self.ttl_s),
                )
                self._db.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    self._db.execute("ROLLBACK")
                raise
        return None

    def replace_now(self, agent_id: str, old_call_id: str, call_id: str) -> bool:
        """Take the agent's row over from ``old_call_id``, a call known to have ended (whoever
        held it): True when taken, False when the row changed meanwhile."""
        with self._lock:
            cursor = self._db.execute(
                "UPDATE live_agents SET call_id = ?, owner = ?, run = ?, expires_at = ? "
                "WHERE agent = ? AND call_id = ?",
                (call_id, self.owner, self.run, self._clock() + self.ttl_s,
                 self._key(agent_id), old_call_id),
            )  # fmt: skip
            return cursor.rowcount == 1

    def _write(self, sql: str, args: tuple[object, ...]) -> None:
        with self._lock:
            self._db.execute(sql, args)

    def rebind_now(self, agent_id: str, old_call_id: str, new_call_id: str) -> None:
        """The holder got its final call id."""
        self._write(
            "UPDATE live_agents SET call_id = ? WHERE agent = ? AND call_id = ? AND owner = ?",
            (new_call_id, self._key(agent_id), old_call_id, self.owner),
        )

    def release_now(self, agent_id: str, call_id: str) -> None:
        """Free the agent if ``call_id`` (of this process) holds it."""
        self._write(
            "DELETE FROM live_agents WHERE agent = ? AND call_id = ? AND owner = ?",
            (self._key(agent_id), call_id, self.owner),
        )

    def renew_now(self) -> None:
        """The heartbeat: this process's rows live ``ttl_s`` longer."""
        self._write(
            "UPDATE live_agents SET expires_at = ? WHERE owner = ?",
            (self._clock() + self.ttl_s, self.owner),
        )

    async def claim(self, agent_id: str, call_id: str) -> str | None:
        """None when granted; else the live call holding the agent (raises when the file fails)."""
        import asyncio  # here: a single call (gcdial call) asks the blocking methods only

        return await asyncio.to_thread(self.claim_now, agent_id, call_id)

    async def rebind(self, agent_id: str, old_call_id: str, new_call_id: str) -> None:
        """The holder got its final call id."""
        import asyncio

        await asyncio.to_thread(self.rebind_now, agent_id, old_call_id, new_call_id)

    async def release(self, agent_id: str, call_id: str) -> None:
        """Free the agent if ``call_id`` holds it."""
        import asyncio

        await asyncio.to_thread(self.release_now, agent_id, call_id)


@contextlib.asynccontextmanager
async def holding(leases: LocalAgentLeases) -> AsyncIterator[LocalAgentLeases]:
    """Keep ``leases``' rows alive while the block runs (the heartbeat), then close the file."""
    import asyncio

    async def beat() -> None:
        while True:
            await asyncio.sleep(leases.ttl_s / 3)
            with contextlib.suppress(sqlite3.Error):
                await asyncio.to_thread(leases.renew_now)

    task = asyncio.create_task(beat(), name="gcdial-agent-heartbeat")
    try:
        yield leases
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        leases.close()
