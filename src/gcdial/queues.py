"""The organisation's ACD queues and groups, and their members, read from Genesys Cloud.

``GET /api/v2/routing/queues`` (a ``QueueEntityListing``) and
``GET /api/v2/routing/queues/{queueId}/members`` (a ``QueueMemberEntityListing``, which has no
``total`` or ``pageCount``: it is read page after page until a page has no ``nextUri`` or comes
back short). A member's ``user`` carries the email in the official model; whether Genesys fills
it without ``expand`` is UNCONFIRMED, so ``email`` may be None and readers match on the id too.

Groups: ``GET /api/v2/groups`` (a ``GroupEntityListing``) and
``GET /api/v2/groups/{groupId}/members`` (a ``UserEntityListing``: each member a ``User``).

Every read here is idempotent and goes through the client's transport (its retries and rate
budget); ``max_pages`` bounds a runaway listing.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, TypeVar
from urllib.parse import quote

from gcdial.errors import NotFoundError

if TYPE_CHECKING:
    from gcdial.monitor.channel import Transport

__all__ = [
    "GROUPS_PATH",
    "MEMBERS_PAGE_SIZE",
    "QUEUES_PATH",
    "Group",
    "Queue",
    "QueueMember",
    "find_group",
    "find_queue",
    "list_group_members",
    "list_groups",
    "list_queue_members",
    "list_queues",
]

QUEUES_PATH: Final = "/api/v2/routing/queues"
GROUPS_PATH: Final = "/api/v2/groups"
QUEUES_PAGE_SIZE: Final = 100
MEMBERS_PAGE_SIZE: Final = 100
MAX_PAGES: Final = 50
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


@dataclass(frozen=True)
class Queue:
    """An ACD queue: its id and name."""

    id: str
    name: str


@dataclass(frozen=True)
class Group:
    """A group of users: its id and name."""

    id: str
    name: str


_Named = TypeVar("_Named", Queue, Group)


@dataclass(frozen=True)
class QueueMember:
    """A queue's (or a group's) member: the user's id, name and email (None when the listing
    has none)."""

    id: str
    name: str
    email: str | None = None


async def _pages(
    transport: Transport,
    path: str,
    size: int,
    max_pages: int,
    params: Mapping[str, str] | None = None,
) -> list[Mapping[str, Any]]:
    found: list[Mapping[str, Any]] = []
    for page in range(1, max_pages + 1):
        query = {**(params or {}), "pageSize": str(size), "pageNumber": str(page)}
        response = await transport.request("GET", path, params=query, idempotent=True)
        data = response.json()
        entities = data.get("entities") if isinstance(data, Mapping) else None
        if not isinstance(entities, list):
            break
        found += [e for e in entities if isinstance(e, Mapping)]
        count = data.get("pageCount")
        if isinstance(count, int) and page >= count:
            break
        if len(entities) < size or ("pageCount" not in data and not data.get("nextUri")):
            break
    return found


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


async def _listed(
    transport: Transport,
    path: str,
    make: Callable[[str, str], _Named],
    max_pages: int,
    params: Mapping[str, str] | None = None,
) -> list[_Named]:
    """Every entity of a listing, made from its id and name (the id when it has none)."""
    found: list[_Named] = []
    for entity in await _pages(transport, path, QUEUES_PAGE_SIZE, max_pages, params):
        entity_id = _text(entity.get("id"))
        if entity_id is not None:
            found.append(make(entity_id, _text(entity.get("name")) or entity_id))
    return found


async def _by_id(
    transport: Transport, path: str, ref: str, make: Callable[[str, str], _Named]
) -> _Named | None:
    """The entity at ``path/ref`` (a UUID), or None when there is none."""
    try:
        response = await transport.request("GET", f"{path}/{ref.lower()}", idempotent=True)
    except NotFoundError:
        return None
    data = response.json()
    if isinstance(data, Mapping) and _text(data.get("id")):
        return make(str(data["id"]), _text(data.get("name")) or str(data["id"]))
    return None


async def list_queues(transport: Transport, *, max_pages: int = MAX_PAGES) -> list[Queue]:
    """The organisation's queues, every page (at most ``max_pages`` of 100)."""
    return await _listed(transport, QUEUES_PATH, Queue, max_pages)


async def find_queue(transport: Transport, ref: str) -> Queue | None:
    """The queue whose id, or else exact name (case-insensitive), is ``ref``; None if none."""
    ref = ref.strip()
    if not ref:
        return None
    if _UUID.match(ref):
        return await _by_id(transport, QUEUES_PATH, ref, Queue)
    for queue in await _listed(transport, QUEUES_PATH, Queue, 1, {"name": ref}):
        if queue.name.lower() == ref.lower():
            return queue
    return None


async def list_queue_members(
    transport: Transport,
    queue_id: str,
    *,
    page_size: int = MEMBERS_PAGE_SIZE,
    max_pages: int = MAX_PAGES,
) -> list[QueueMember]:
    """The queue's members (ids, names, emails), every page (at most ``max_pages``).

    An unknown queue raises ``NotFoundError``; an id that is not a UUID is refused as one
    without a request.
    """
    try:
        uuid.UUID(queue_id)
    except ValueError:
        raise NotFoundError(
            f"no queue has id {queue_id!r}", status=404, hint="A queue id is a UUID."
        ) from None
    path = f"{QUEUES_PATH}/{quote(queue_id.lower(), safe='')}/members"
    members: list[QueueMember] = []
    seen: set[str] = set()
    for entity in await _pages(transport, path, page_size, max_pages):
        user = entity.get("user")
        user = user if isinstance(user, Mapping) else {}
        member_id = _text(entity.get("id")) or _text(user.get("id"))
        if member_id is None or member_id in seen:
            continue
        seen.add(member_id)
        name = _text(entity.get("name")) or _text(user.get("name")) or member_id
        members.append(QueueMember(member_id, name, _text(user.get("email"))))
    return members


async def list_groups(transport: Transport, *, max_pages: int = MAX_PAGES) -> list[Group]:
    """The organisation's groups, every page (at most ``max_pages`` of 100)."""
    return await _listed(transport, GROUPS_PATH, Group, max_pages)


async def find_group(transport: Transport, ref: str) -> Group | None:
    """The group whose id, or else exact name (case-insensitive), is ``ref``; None if none."""
    ref = ref.strip()
    if _UUID.match(ref):
        return await _by_id(transport, GROUPS_PATH, ref, Group)
    for group in await list_groups(transport) if ref else []:
        if group.name.lower() == ref.lower():
            return group
    return None


async def list_group_members(
    transport: Transport,
    group_id: str,
    *,
    page_size: int = MEMBERS_PAGE_SIZE,
    max_pages: int = MAX_PAGES,
) -> list[QueueMember]:
    """The group's members (ids, names, emails), every page (at most ``max_pages``). An
    unknown group raises ``NotFoundError``, as does an id that is not a UUID (not asked)."""
    try:
        uuid.UUID(group_id)
    except ValueError:
        raise NotFoundError(
            f"no group has id {group_id!r}", status=404, hint="A group id is a UUID."
        ) from None
    path = f"{GROUPS_PATH}/{quote(group_id.lower(), safe='')}/members"
    members: list[QueueMember] = []
    seen: set[str] = set()
    for user in await _pages(transport, path, page_size, max_pages):
        member_id = _text(user.get("id"))
        if member_id is None or member_id in seen:
            continue
        seen.add(member_id)
        name = _text(user.get("name")) or member_id
        members.append(QueueMember(member_id, name, _text(user.get("email"))))
    return members
