"""Follow calls to their outcome: notifications WebSocket, polling fallback, events, outcomes.

``CallMonitor`` shares one notifications channel among many calls; ``follow`` / ``wait`` follow
one call; ``classify`` turns a call's events or final snapshot into an ``Outcome``.
"""

from typing import TYPE_CHECKING, Any

from gcdial.errors import CallWaitTimeoutError, ChannelUnavailableError

if TYPE_CHECKING:
    from gcdial.monitor.channel import ChannelSettings, Transport
    from gcdial.monitor.events import (
        CallEvent,
        ErrorInfo,
        EventKind,
        Role,
        events_between,
        merge,
    )
    from gcdial.monitor.follow import CallMonitor, MonitorMode, follow, wait
    from gcdial.monitor.outcome import (
        DEFAULT_RULES,
        Outcome,
        OutcomeKind,
        OutcomeRules,
        classify,
    )
    from gcdial.monitor.polling import PollSettings

__all__ = [
    "DEFAULT_RULES",
    "CallEvent",
    "CallMonitor",
    "CallWaitTimeoutError",
    "ChannelSettings",
    "ChannelUnavailableError",
    "ErrorInfo",
    "EventKind",
    "MonitorMode",
    "Outcome",
    "OutcomeKind",
    "OutcomeRules",
    "PollSettings",
    "Role",
    "Transport",
    "classify",
    "events_between",
    "follow",
    "merge",
    "wait",
]


# Start-up speed: importing gcdial.monitor.events or .outcome (a call's outcome, its events) must
# not load the WebSocket client, the channel and the follower, which only following a call needs.
# So the package's names are resolved on first use.
_HOMES = {
    "ChannelSettings": "channel",
    "Transport": "channel",
    "CallEvent": "events",
    "ErrorInfo": "events",
    "EventKind": "events",
    "Role": "events",
    "events_between": "events",
    "merge": "events",
    "CallMonitor": "follow",
    "MonitorMode": "follow",
    "follow": "follow",
    "wait": "follow",
    "DEFAULT_RULES": "outcome",
    "Outcome": "outcome",
    "OutcomeKind": "outcome",
    "OutcomeRules": "outcome",
    "classify": "outcome",
    "PollSettings": "polling",
}


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        import importlib

        value = getattr(importlib.import_module(f"gcdial.monitor.{_HOMES[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'gcdial.monitor' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
