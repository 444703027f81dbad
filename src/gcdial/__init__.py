"""gcdial: place outbound calls on behalf of Genesys Cloud agents, safely.

The public surface is what ``__all__`` lists; everything else is implementation. The errors are
imported at once (they are light); the client, settings and models load on first use, so that
``import gcdial`` stays fast for the CLI and for programs that only catch gcdial's errors.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from gcdial._version import __version__
from gcdial.errors import (
    AgentNotReadyError,
    ApiConnectionError,
    ApiError,
    ApiTimeoutError,
    AuthenticationError,
    AuthError,
    BadRequestError,
    CallOutcomeUnknownError,
    CallRulesError,
    ConfigError,
    GcdialError,
    InputError,
    InvalidClientError,
    InvalidPhoneNumberError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    ResponseFormatError,
    ServerError,
)

if TYPE_CHECKING:
    from gcdial.agents import AgentReadiness
    from gcdial.calls import CallParams
    from gcdial.client import AsyncClient, Client
    from gcdial.config import Settings, load_settings
    from gcdial.dialing import Dial
    from gcdial.models import CallConversation, CallCreated, Participant, User
    from gcdial.resolve import Evidence, Resolution, Verdict

_LAZY: dict[str, str] = {
    "AgentReadiness": "gcdial.agents",
    "AsyncClient": "gcdial.client",
    "CallConversation": "gcdial.models",
    "CallCreated": "gcdial.models",
    "CallParams": "gcdial.calls",
    "Client": "gcdial.client",
    "Dial": "gcdial.dialing",
    "Evidence": "gcdial.resolve",
    "Resolution": "gcdial.resolve",
    "Verdict": "gcdial.resolve",
    "Participant": "gcdial.models",
    "Settings": "gcdial.config",
    "User": "gcdial.models",
    "load_settings": "gcdial.config",
}

__all__ = [
    "AgentNotReadyError",
    "AgentReadiness",
    "ApiConnectionError",
    "ApiError",
    "ApiTimeoutError",
    "AsyncClient",
    "AuthError",
    "AuthenticationError",
    "BadRequestError",
    "CallConversation",
    "CallCreated",
    "CallOutcomeUnknownError",
    "CallParams",
    "CallRulesError",
    "Client",
    "ConfigError",
    "Dial",
    "Evidence",
    "GcdialError",
    "InputError",
    "InvalidClientError",
    "InvalidPhoneNumberError",
    "NotFoundError",
    "Participant",
    "PermissionDeniedError",
    "RateLimitedError",
    "Resolution",
    "ResponseFormatError",
    "ServerError",
    "Settings",
    "User",
    "Verdict",
    "__version__",
    "load_settings",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'gcdial' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
