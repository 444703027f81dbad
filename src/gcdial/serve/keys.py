"""API keys: generated here, shown once, stored only as SHA-256 hashes; scopes and rates."""

from __future__ import annotations

import re
import secrets
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from gcdial.errors import InputError
from gcdial.serve.queues import WATCH_QUEUE
from gcdial.serve.store import RULES_POLICIES, ApiKeyRecord, hash_api_key

__all__ = [
    "KEY_PREFIX",
    "SCOPES",
    "NewKey",
    "new_api_key",
    "parse_rate",
    "parse_rules_policy",
    "parse_scopes",
]

KEY_PREFIX = "gcd_"
# ``override``: a dial may carry {"override": {"reason": ...}} to go against a calling rule.
SCOPES = ("dial", "watch", "campaigns", "metrics", "override", "admin")
DEFAULT_SCOPES = ("dial", "watch")
_RATE = re.compile(r"^\s*(\d+)\s*/\s*(s|sec|second|m|min|minute|h|hour)\s*$")
_UNIT_S = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60}
_UNIT_S |= {"h": 3600, "hour": 3600}


@dataclass(frozen=True)
class NewKey:
    """A key just made: ``key`` is shown to the user once and never stored."""

    key: str
    record: ApiKeyRecord


def parse_rate(text: str) -> int:
    """``"60/min"`` (also ``/s``, ``/h``) as requests per minute (at least 1)."""
    match = _RATE.match(text)
    if match is None:
        raise InputError(
            f"rate {text!r} is not understood", hint="Write it as a count per unit: 60/min, 2/s."
        )
    count, unit = int(match.group(1)), match.group(2)
    per_minute = count * 60 / _UNIT_S[unit]
    if per_minute < 1 or count < 1:
        raise InputError(f"rate {text!r} is below one request per minute")
    return int(per_minute)


def parse_scopes(values: Iterable[str]) -> tuple[str, ...]:
    """Comma- or space-separated scopes, checked against ``SCOPES``."""
    found: list[str] = []
    for value in values:
        for scope in re.split(r"[,\s]+", value.strip()):
            if not scope:
                continue
            if scope not in SCOPES:
                raise InputError(
                    f"unknown scope {scope!r}", hint=f"Choose among {', '.join(SCOPES)}."
                )
            if scope not in found:
                found.append(scope)
    return tuple(found) or DEFAULT_SCOPES


def parse_rules_policy(text: str) -> str:
    """A key's rules policy: ``enforce`` (a dial against a calling rule is refused) or ``warn``
    (it is placed, with the warnings on the call); anything else is an error."""
    policy = text.strip().lower()
    if policy not in RULES_POLICIES:
        raise InputError(
            f"rules policy {text!r} does not exist",
            hint=f"Choose {' or '.join(RULES_POLICIES)} (enforce is the default).",
        )
    return policy


def new_api_key(
    name: str,
    *,
    now: float,
    scopes: tuple[str, ...] = DEFAULT_SCOPES,
    agents: tuple[str, ...] = (),
    rate_per_minute: int = 60,
    rules: str = "enforce",
    watch_queue: str | None = None,
) -> NewKey:
    """A fresh random key and the record that stores only its hash; ``watch_queue`` (a Genesys
    queue's name or id) is the queue whose members its page and ``GET /v1/agents`` show."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}", name):
        raise InputError(
            f"key name {name!r} is not valid",
            hint="Use 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit.",
        )
    extra: dict[str, str] = {}
    if watch_queue is not None:
        queue = watch_queue.strip()
        if not 1 <= len(queue) <= 200 or not queue.isprintable():
            raise InputError(
                f"watch queue {watch_queue!r} is not a queue name or id",
                hint="Give the Genesys queue's name or id (1-200 printable characters).",
            )
        extra[WATCH_QUEUE] = queue
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    record = ApiKeyRecord(
        id="key_" + uuid.uuid4().hex[:16],
        name=name,
        key_hash=hash_api_key(key),
        created_at=now,
        scopes=scopes,
        agents=tuple(agent.strip().lower() for agent in agents if agent.strip()),
        rate_per_minute=rate_per_minute,
        prefix=key[:8],
        rules=parse_rules_policy(rules),
        extra=extra,
    )
    return NewKey(key=key, record=record)
