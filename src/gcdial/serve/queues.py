"""The queues and groups a supervisor may watch, and their members, read from Genesys for every
reader.

A supervisor's page asks for a queue's members each time it (re)reads its agents; each reading
costs Genesys requests from the rate budget dialing needs. So the org's queue and group lists
and each one's members are kept for ``ttl_s`` (``ServeConfig.queue_cache_s``) and shared by the
readers that ask meanwhile (:class:`~gcdial.serve.readiness.SharedChecks`); a failure is not
kept.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from gcdial.queues import (
    Group,
    Queue,
    QueueMember,
    find_group,
    find_queue,
    list_group_members,
    list_groups,
    list_queue_members,
    list_queues,
)
from gcdial.serve.readiness import SharedChecks
from gcdial.serve.store import ApiKeyRecord

if TYPE_CHECKING:
    from gcdial.client import AsyncClient

__all__ = ["WATCH_QUEUE", "QueueDirectory", "member_allowed", "watch_queue_of"]

WATCH_QUEUE = "watchQueue"
"""The key record's ``extra`` field holding the queue (name or id) its page shows by default."""


def watch_queue_of(key: ApiKeyRecord) -> str | None:
    """The queue (name or id) ``key`` watches by default, if it was made with one."""
    value = key.extra.get(WATCH_QUEUE)
    return value if isinstance(value, str) and value.strip() else None


def member_allowed(key: ApiKeyRecord, member: QueueMember) -> bool:
    """A key limited to agents sees only those of a queue's members (by id or email)."""
    if not key.agents:
        return True
    names = {member.id.lower(), (member.email or "").lower()}
    return bool(names & set(key.agents))


class QueueDirectory:
    """The org's queues and groups and each one's members, shared for ``ttl_s``."""

    def __init__(self, client: Callable[[], AsyncClient], ttl_s: float) -> None:
        self._client = client
        self._queues: SharedChecks[list[Queue]] = SharedChecks(self._read_queues, ttl_s)
        self._members: SharedChecks[list[QueueMember]] = SharedChecks(self._read_members, ttl_s)
        self._groups: SharedChecks[list[Group]] = SharedChecks(self._read_groups, ttl_s)
        self._group_members: SharedChecks[list[QueueMember]] = SharedChecks(
            self._read_group_members, ttl_s
        )

    async def _read_groups(self, _: str) -> list[Group]:
        return await list_groups(self._client().transport)

    async def _read_group_members(self, group_id: str) -> list[QueueMember]:
        return await list_group_members(self._client().transport, group_id)

    async def groups(self) -> list[Group]:
        """The org's groups (every page), sorted by name."""
        return sorted(await self._groups.get("all"), key=lambda g: (g.name.lower(), g.id))

    async def find_group(self, ref: str) -> Group | None:
        """The group whose id or name (case-insensitive) is ``ref`` (as :meth:`find`)."""
        wanted = ref.strip().lower()
        for group in await self.groups():
            if wanted in (group.id.lower(), group.name.lower()):
                return group
        return await find_group(self._client().transport, ref)

    async def group_members(self, group: Group) -> list[QueueMember]:
        """The group's members (raises ``NotFoundError`` when Genesys no longer has it)."""
        return await self._group_members.get(group.id)

    async def _read_queues(self, _: str) -> list[Queue]:
        return await list_queues(self._client().transport)

    async def _read_members(self, queue_id: str) -> list[QueueMember]:
        return await list_queue_members(self._client().transport, queue_id)

    async def queues(self) -> list[Queue]:
        """The org's queues (every page), sorted by name."""
        return sorted(await self._queues.get("all"), key=lambda q: (q.name.lower(), q.id))

    async def find(self, ref: str) -> Queue | None:
        """The queue whose id or name (case-insensitive) is ``ref``: from the shared list, else
        asked for once (a queue made since, or beyond the listing's pages)."""
        wanted = ref.strip().lower()
        for queue in await self.queues():
            if wanted in (queue.id.lower(), queue.name.lower()):
                return queue
        return await find_queue(self._client().transport, ref)

    async def members(self, queue: Queue) -> list[QueueMember]:
        """The queue's members (raises ``NotFoundError`` when Genesys no longer has it)."""
        return await self._members.get(queue.id)

    @staticmethod
    def queue_json(queue: Queue | Group) -> Mapping[str, Any]:
        """A queue (or a group) as the API shows it."""
        return {"id": queue.id, "name": queue.name}
