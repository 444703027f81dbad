"""The gate of ``gcdial call``: the calling rules and the agent's row in the machine's file.

A single call passes the same gate as a campaign run (:class:`gcdial.gate.SingleCallGate` over
:class:`gcdial.local_leases.LocalAgentLeases`, the file every CLI campaign of this user shares):

- the calling window in the customer's local time (``--window``, default 08:00-21:00 as a
  campaign's; ``$GCDIAL_CALLING_WINDOW`` sets it for every call; ``--any-hour`` or
  ``--sandbox``: any hour) and the ``--dnc`` file: refused with exit 4, naming the rule, the
  customer's local time and the override;
- the agent's row: refused with exit 7 while a campaign run or another ``gcdial call`` holds it.
  A call followed with ``--wait`` holds it until its end (renewed while it is followed); a call
  not placed frees it at once; a call placed without ``--wait`` keeps it for
  :data:`UNFOLLOWED_HOLD_S` (nothing follows that call, so its end is not known here).
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from gcdial.config import Settings
    from gcdial.local_leases import LocalAgentLeases

__all__ = [
    "CALLING_WINDOW_ENV",
    "DEFAULT_CALLING_WINDOW",
    "UNFOLLOWED_HOLD_S",
    "open_leases",
    "rules_hint",
]

CALLING_WINDOW_ENV: Final = "GCDIAL_CALLING_WINDOW"
DEFAULT_CALLING_WINDOW: Final = "08:00-21:00"
UNFOLLOWED_HOLD_S: Final = 120.0
"""How long a call placed without ``--wait`` holds its agent's row (seconds)."""


def open_leases(settings: Settings, *, ttl_s: float) -> LocalAgentLeases:
    """The machine's file of agents with a live call (ConfigError when it cannot be opened)."""
    import sqlite3

    from gcdial.errors import ConfigError
    from gcdial.local_leases import LocalAgentLeases, default_path

    path = default_path()
    try:
        return LocalAgentLeases(
            path,
            scope=settings.endpoints().api_base_url,
            run=f"call:{uuid.uuid4().hex}",
            ttl_s=ttl_s,
        )
    except (OSError, sqlite3.Error) as exc:
        raise ConfigError(
            f"Cannot open {path}, where gcdial records which agents have a live call: {exc}",
            hint="Check that you may write there, or set GCDIAL_AGENT_LOCKS to a writable file.",
        ) from None


def rules_hint(rule: str, window: str) -> str:
    """How to get past a refused rule, in the CLI's own options."""
    if rule == "do_not_call":
        return "The number is in the --dnc file: it must not be dialed."
    if rule == "unknown_time_zone":
        return (
            "No time zone is known for this number, so its local time cannot be checked: give "
            "the customer's --timezone, or --any-hour to dial anyway."
        )
    return (
        f"The calling window is {window} in the customer's local time (--window, or "
        f"${CALLING_WINDOW_ENV}). Dial again inside it; give --timezone if the number's zone is "
        "not the customer's; or, to dial anyway, --any-hour (or --window 00:00-24:00)."
    )
