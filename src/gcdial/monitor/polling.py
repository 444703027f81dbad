"""Polling fallback: GET the conversation with a growing interval when no channel can be had.

Every GET goes through the client's transport, so it draws on the same rate budget as everything
else (a 429 there pauses every worker). The interval starts short (calls change fast at first),
grows while nothing changes, and snaps back when something does.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import quote

from gcdial.errors import (
    ApiConnectionError,
    InputError,
    RateLimitedError,
    ResponseFormatError,
    ServerError,
)
from gcdial.monitor.channel import Transport
from gcdial.monitor.events import events_between, is_over, merge

logger = logging.getLogger("gcdial.monitor")

CALLS_PATH: Final = "/api/v2/conversations/calls"
POLL_INITIAL_S: Final = 1.0
POLL_FACTOR: Final = 1.5
POLL_MAX_S: Final = 10.0


@dataclass(frozen=True)
class PollSettings:
    """How often to GET a conversation: start, growth factor and cap (seconds)."""

    initial_s: float = POLL_INITIAL_S
    factor: float = POLL_FACTOR
    max_s: float = POLL_MAX_S


def next_poll_delay(current: float, *, changed: bool, settings: PollSettings) -> float:
    """The wait before the next GET: back to the start after a change, else grown up to the cap."""
    if changed:
        return settings.initial_s
    return min(max(current, settings.initial_s) * settings.factor, settings.max_s)


def conversation_path(conversation_id: str) -> str:
    """The REST path of one call conversation (the id checked and URL-quoted)."""
    if not isinstance(conversation_id, str) or not conversation_id.strip():
        raise InputError(
            f"Invalid conversation id {conversation_id!r}: it must be a non-empty string.",
            hint="Use the id returned when the call was placed (a UUID).",
        )
    return f"{CALLS_PATH}/{quote(conversation_id.strip(), safe='')}"


async def get_conversation(transport: Transport, conversation_id: str) -> dict[str, Any]:
    """``GET /api/v2/conversations/calls/{id}`` as a dict; NotFoundError for an unknown id."""
    response = await transport.request("GET", conversation_path(conversation_id), idempotent=True)
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise ResponseFormatError(
            f"GET conversation {conversation_id}: expected a JSON object",
            status=response.status_code,
        )
    return body


async def poll_conversation(
    transport: Transport,
    conversation_id: str,
    *,
    deliver: Callable[[Mapping[str, Any] | BaseException], None],
    settings: PollSettings | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    first_delay_s: float | None = None,
    done: Callable[[Mapping[str, Any]], bool] = is_over,
) -> None:
    """GET the conversation until ``done`` (by default: it is over), handing each snapshot to
    ``deliver`` (a follower waiting for the wrap-up polls on past the call's end).

    Passing failures (5xx, network, 429 beyond the transport's retries) lengthen the wait; a
    final error (404, 403, ...) is handed to ``deliver`` and ends the loop.
    """
    settings = settings or PollSettings()
    delay = settings.initial_s if first_delay_s is None else first_delay_s
    state: dict[str, Any] | None = None
    while True:
        await sleep(delay)
        try:
            snapshot = await get_conversation(transport, conversation_id)
        except RateLimitedError as exc:
            delay = max(
                exc.retry_after or 0.0, next_poll_delay(delay, changed=False, settings=settings)
            )
            continue
        except (ServerError, ApiConnectionError, ResponseFormatError) as exc:
            logger.info("polling %s: %s; trying again", conversation_id, exc)
            delay = next_poll_delay(delay, changed=False, settings=settings)
            continue
        except Exception as exc:  # handed to the follower, who raises it to the user
            deliver(exc)
            return
        changed = bool(events_between(state, snapshot))
        state = merge(state, snapshot)
        deliver(snapshot)
        if done(state):
            return
        delay = next_poll_delay(delay, changed=changed, settings=settings)
