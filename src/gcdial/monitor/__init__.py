"""Follow calls to their outcome: notifications WebSocket, polling fallback, events, outcomes.

``CallMonitor`` shares one notifications channel among many calls; ``follow`` / ``wait`` follow
one call; ``classify`` turns a call's events or final snapshot into an ``Outcome``.
"""

from gcdial.errors import CallWaitTimeoutError, ChannelUnavailableError
from gcdial.monitor.channel import ChannelSettings, Transport
from gcdial.monitor.events import CallEvent, ErrorInfo, EventKind, Role, events_between, merge
from gcdial.monitor.follow import CallMonitor, MonitorMode, follow, wait
from gcdial.monitor.outcome import DEFAULT_RULES, Outcome, OutcomeKind, OutcomeRules, classify
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
