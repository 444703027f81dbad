"""The official Genesys models, and the check that holds an answer to them.

The facts come from ``official_models.json``, an extract of the official SDK
(PureCloudPlatformClientV2, the ``bench`` extra) made by ``gen_official_models.py``
(``make official-models``): for each Platform API route the emulator serves, the SDK operation's
response model and the content types it consumes; for each model reachable from those, its JSON
field names and types and its enum values; the required fields from the SDK's model docs; and the
models of the notification topics. Nothing here is typed by hand, so the check cannot agree with
the emulator by construction: which model an answer must follow is looked up from its route or
topic, never chosen by the test.

Why the hand-copied table this replaces missed five divergences: its ``required`` lists were the
contract's guesses, not the SDK docs (no ``types`` in ``UsersSearchResponse``); its enum for
``disconnectType`` had ``timeout`` added by hand; the test labelled each answer with a model by
hand (the PATCH of a call as ``CallConversation``, the SDK says ``Conversation``; frames as
``CallConversation``, not the topic's model); nothing checked that every served route was driven
(``GET /api/v2/stations/{id}``) or that a body of another content type is refused (415).
"""

import json
import re
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

EXTRACT: dict[str, Any] = json.loads((Path(__file__).parent / "official_models.json").read_text())
MODELS: dict[str, Any] = EXTRACT["models"]
OPERATIONS: dict[str, Any] = EXTRACT["operations"]
TOPICS: dict[str, str] = EXTRACT["topics"]
# Statuses the Platform API documents for its operations; an emulator answer outside them is a
# status no client was written for.
ERROR_STATUSES = frozenset(
    {400, 401, 403, 404, 405, 408, 409, 413, 415, 429, 500, 501, 502, 503, 504}
)
# Fields the emulator adds beyond an official model, each because the contract
# (../shared/genesys-contract.md) says the real platform sends it, and each behind a setting:
# the details query's participants carry their attributes ("Finding a conversation after the
# fact"), though the SDK types that answer without them (analytics_include_attributes).
CONTRACT_FIELDS: dict[str, dict[str, str]] = {
    "AnalyticsParticipantWithoutAttributes": {"attributes": "dict(str, str)"},
}
_LIST = re.compile(r"^list\[(.+)\]$")
_DICT = re.compile(r"^dict\(str, (.+)\)$")


def _check_type(value: Any, kind: str, path: str) -> list[str]:
    """Every way ``value`` breaks the SDK type ``kind`` (a primitive, container or model)."""
    if value is None:
        return [f"{path}: null (leave the field out instead)"]
    if (match := _LIST.match(kind)) is not None:
        if not isinstance(value, list):
            return [f"{path}: must be a list ({kind})"]
        return [
            p for i, item in enumerate(value) for p in _check_type(item, match[1], f"{path}[{i}]")
        ]
    if (match := _DICT.match(kind)) is not None:
        if not isinstance(value, dict):
            return [f"{path}: must be a map ({kind})"]
        return [p for k, item in value.items() for p in _check_type(item, match[1], f"{path}.{k}")]
    if kind in ("str", "date"):
        return [] if isinstance(value, str) else [f"{path}: must be a string, got {value!r}"]
    if kind == "datetime":
        return _check_datetime(value, path)
    if kind == "int":
        ok = isinstance(value, int) and not isinstance(value, bool)
        return [] if ok else [f"{path}: must be an integer, got {value!r}"]
    if kind == "float":
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return [] if ok else [f"{path}: must be a number, got {value!r}"]
    if kind == "bool":
        return [] if isinstance(value, bool) else [f"{path}: must be true or false, got {value!r}"]
    if kind == "object":
        return []
    return check(value, kind, path)


def _check_datetime(value: Any, path: str) -> list[str]:
    if not isinstance(value, str):
        return [f"{path}: must be an ISO 8601 date-time string, got {value!r}"]
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return [f"{path}: {value!r} is not an ISO 8601 date-time"]
    return [] if moment.tzinfo is not None else [f"{path}: {value!r} has no time zone"]


def check(value: Any, model: str, path: str = "$") -> list[str]:
    """Every way ``value`` breaks the official ``model`` (empty when it conforms): a field the
    model does not have, a null, a missing required field, a wrong type, an enum value the model
    does not list."""
    facts = MODELS[model]
    if not isinstance(value, dict):
        return [f"{path}: a {model} must be an object, got {type(value).__name__}"]
    problems = [
        f"{path}.{key}: required by {model}, missing"
        for key in sorted(set(facts["required"]) - value.keys())
    ]
    for key, item in value.items():
        where = f"{path}.{key}"
        kind = facts["fields"].get(key) or CONTRACT_FIELDS.get(model, {}).get(key)
        if kind is None:
            problems.append(f"{where}: {model} has no field {key!r}")
            continue
        problems += _check_type(item, kind, where)
        allowed = facts["enums"].get(key)
        if allowed is not None and isinstance(item, str) and item not in allowed:
            problems.append(f"{where}: {item!r} is not one of the {model} values {allowed}")
    return problems


@cache
def _route_patterns() -> list[tuple[str, re.Pattern[str], int]]:
    patterns = []
    for key in OPERATIONS:
        parts = re.split(r"\{[^}]*\}", key)
        regex = re.compile("^" + "[^/]+".join(re.escape(part) for part in parts) + "$")
        patterns.append((key, regex, len(parts) - 1))
    return patterns


def operation_of(method: str, path: str) -> str | None:
    """The official operation (``"METHOD /template"``) a request went to; literal path segments
    win over parameters (``/users/me`` over ``/users/{userId}``)."""
    candidates = [
        (params, key) for key, regex, params in _route_patterns() if regex.match(f"{method} {path}")
    ]
    return min(candidates)[1] if candidates else None


def check_exchange(operation: str, status: int, body: Any) -> list[str]:
    """Every way one answer of ``operation`` breaks the official API: its status, then its body
    against ``ErrorBody`` (an error), the operation's response model, or no body at all."""
    facts = OPERATIONS[operation]
    if status >= 400:
        problems = (
            [] if status in ERROR_STATUSES else [f"status {status}: not a Platform API status"]
        )
        return problems + check(body, "ErrorBody")
    if facts["response"] is None:
        if status not in (200, 202, 204) or body is not None:
            return [f"status {status} with body {body!r}: the operation answers no body"]
        return []
    if status not in (200, 201, 202) or body is None:
        return [f"status {status} without a body: the operation answers {facts['response']}"]
    return check(body, facts["response"])


def topic_model(topic: str) -> str:
    """The official eventBody model of a notification topic (ids as ``{id}``)."""
    shape = re.sub(r"(?<=\.)[0-9a-fA-F-]{36}(?=\.|$)", "{id}", topic)
    return TOPICS[shape]


def self_uris(value: Any) -> set[str]:
    """Every ``selfUri`` anywhere in ``value``."""
    found: set[str] = set()
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "selfUri" and isinstance(item, str):
                found.add(item)
            else:
                found |= self_uris(item)
    elif isinstance(value, list):
        for item in value:
            found |= self_uris(item)
    return found
