"""The calling rules of a single call (``POST /v1/calls``, the page): asked before its
Idempotency-Key is claimed.

The decision is the gate's (:func:`gcdial.gate.rule_breaches`: the calling window in the
customer's time zone(s), by the campaign rules' own code, and the do-not-call list); here it is
fed from the service's store and settings, and turned into what the API answers:

- no rule broken: dial;
- a rule broken, the key's policy ``enforce`` and no override: a 403 naming the rule and the
  customer's local time, an audit line, nothing claimed or dialed;
- a rule broken and the key's policy ``warn``, or an override (its scope checked by the route):
  dial, the call carrying the rules it broke as ``warnings``; an override is an audit line.

A store that cannot answer raises ``StoreError`` (a 503): a number is never dialed unchecked.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from gcdial.gate import RuleBreach, rule_breaches
from gcdial.serve.models import CallRequest
from gcdial.serve.problems import ErrorDetail, ErrorItem, problem_body
from gcdial.serve.store import ApiKeyRecord, AuditEntry, DncEntry, Store

if TYPE_CHECKING:
    from gcdial.serve.service_core import ServiceCore

__all__ = ["RulesAnswer", "call_rules_in_store"]

_HINTS = {
    "do_not_call": "The number is on the do-not-call list (gcdial serve dnc list); a key with "
    'the override scope may dial it with {"override": {"reason": "..."}}.',
    "calling_window": "Dial again inside the calling window, in the contact's local time "
    "(the service's setting --calling-window / GCDIAL_SERVE_CALLING_WINDOW), or send the "
    "customer's own timeZone if the number's is not theirs.",
    "unknown_time_zone": "No time zone is known for this number, so its local time cannot be "
    "checked; send the customer's timeZone, or dial with an override.",
    "no_calling_hours": "The number's time zones share no hour of the calling window; send the "
    "customer's own timeZone.",
}


@dataclass(frozen=True)
class RulesAnswer:
    """``refusal``: the 403 body to answer (None: dial); ``warnings``: what the call carries."""

    refusal: dict[str, Any] | None
    warnings: list[dict[str, Any]]


def _facts(
    store: Store, key_id: str, idem_key: str, number: str, now: float
) -> tuple[bool, DncEntry | None]:
    """Whether the key was claimed before (its answer then stands, whatever the hour), and the
    number's do-not-call entry: one hop to the store's thread for both."""
    claimed = store.get_idempotency(key_id, idem_key)
    if claimed is not None and claimed.expires_at > now:
        return True, None
    return False, store.dnc_listed([number]).get(number)


def _shown(breaches: tuple[RuleBreach, ...]) -> list[dict[str, Any]]:
    return [{"rule": b.rule, "message": b.message, "localTime": b.local_time} for b in breaches]


def call_rules_in_store(
    service: ServiceCore, key: ApiKeyRecord, idem_key: str, request: CallRequest
) -> RulesAnswer:
    """The calling rules for one dial of ``key`` (see the module docstring), run in the store's
    thread with their audit lines: the dial's claim calls it in the same hop, just before
    claiming."""
    number = request.to_e164
    seen, entry = _facts(service.store, key.id, idem_key, number, service.clock())
    if seen:
        return RulesAnswer(None, [])
    breaches = rule_breaches(
        service.config.call_rules,
        number,
        datetime.fromtimestamp(service.clock(), UTC),
        listed=None if entry is None else entry.reason or "",
        time_zone=request.timeZone,
    )
    broken = ", ".join(b.rule for b in breaches) or "none"
    if request.override is not None:
        result = "applied" if breaches else "not_needed"
        _audit(service, key, "override", result, request, f"{request.override.reason} "
               f"| rules: {broken}")  # fmt: skip
    if not breaches or request.override is not None or key.rules == "warn":
        return RulesAnswer(None, _shown(breaches))
    first = breaches[0]
    local = first.local_time or "unknown (no time zone is known for the number)"
    error = ErrorDetail(
        type=first.rule,
        message=f"Refused, nothing was dialed: {first.message}. The contact's local time: {local}.",
        hint=_HINTS.get(first.rule),
        path="$.to",
        errors=[ErrorItem(path="$.to", message=b.message) for b in breaches],
    )
    service.metrics.dials.labels("refused_rules").inc()
    _audit(service, key, "dial", "refused_rules", request, "; ".join(b.message for b in breaches))
    body = {**problem_body(error), "rules": _shown(breaches), "localTime": first.local_time}
    return RulesAnswer(body, _shown(breaches))


def _audit(
    service: ServiceCore,
    key: ApiKeyRecord,
    action: str,
    result: str,
    request: CallRequest,
    detail: str,
) -> None:
    entry = AuditEntry(
        at=service.clock(),
        api_key_id=key.id,
        action=action,
        result=result,
        agent=request.agent,
        number=request.to_e164,
        detail=detail,
    )
    service.store.append_audit(entry)
