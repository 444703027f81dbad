"""The one exception tree of gcdial.

Every error's ``str()`` is one user-facing paragraph: what went wrong, and a hint of what to do.
The tree is split by "did a response come back?"::

    GcdialError                      root: catch this to catch everything gcdial raises
    ├── ConfigError                  bad or missing settings: which one, its source, the fix
    ├── InputError                   bad user input, refused before anything is sent
    │   └── InvalidPhoneNumberError  a number that cannot be dialed (number, reason)
    ├── AgentNotReadyError           agent missing / inactive / without station: what to fix
    ├── AuthError                    the OAuth token endpoint refused or failed
    │   └── InvalidClientError       invalid_client: wrong region first, then id/secret
    ├── ApiError                     a response came back with an error status
    │   ├── BadRequestError          400
    │   ├── AuthenticationError      401
    │   ├── PermissionDeniedError    403
    │   ├── NotFoundError            404
    │   ├── RateLimitedError         429 (retry_after seconds, if the server said)
    │   └── ServerError              5xx
    ├── ApiConnectionError           no (complete) response: DNS, refused, reset, protocol error
    │   └── ApiTimeoutError          the server did not answer in time
    ├── ResponseFormatError          a response came back but is unusable (HTML, wrong shape)
    └── CallOutcomeUnknownError      a create-call POST may or may not have placed the call

No exception text ever contains a secret or a token: none of these classes is ever given one.
"""

from __future__ import annotations

import email.utils
import math
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from gcdial._shared import CORRELATION_HEADER, RETRY_AFTER_HEADER

__all__ = [
    "AgentNotReadyError",
    "ApiConnectionError",
    "ApiError",
    "ApiTimeoutError",
    "AuthError",
    "AuthenticationError",
    "BadRequestError",
    "CallOutcomeUnknownError",
    "ConfigError",
    "GcdialError",
    "InputError",
    "InvalidClientError",
    "InvalidPhoneNumberError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitedError",
    "ResponseFormatError",
    "ServerError",
    "api_error_from_response",
    "hint_for",
]


class GcdialError(Exception):
    """Root of every error gcdial raises; ``str()`` is a one-paragraph message with a hint."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return sentences(self.message, self.hint)


def sentences(*parts: str | None) -> str:
    """Join message parts as sentences: each one ends with a full stop before the next begins."""
    text = ""
    for part in parts:
        part = (part or "").strip()
        if not part:
            continue
        if not part.endswith((".", "!", "?", "…")):
            part += "."
        # After a multi-line part (a list of rows), the next sentence starts on its own line.
        text += ("\n" if "\n" in text else " ") + part if text else part
    return text


def redact_error(error: GcdialError, redact: Callable[[str], str]) -> GcdialError:
    """Pass every text an error carries through ``redact`` (in place), and return it.

    Server text quoted in an error (an ErrorBody message, an HTML excerpt) may echo a token back;
    this is the last line of defence that keeps it out of ``str(error)`` and the error's fields.
    """
    for name, value in list(vars(error).items()):
        if isinstance(value, str):
            setattr(error, name, redact(value))
        elif isinstance(value, GcdialError):
            redact_error(value, redact)
        elif isinstance(value, dict | list):
            setattr(error, name, _redact_json(value, redact))
    error.args = tuple(redact(a) if isinstance(a, str) else a for a in error.args)
    return error


def _redact_json(value: object, redact: Callable[[str], str]) -> object:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: _redact_json(v, redact) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact_json(v, redact) for v in value]
    return value


class ConfigError(GcdialError):
    """A setting is missing or invalid; says which one, where it came from and how to fix it."""

    def __init__(
        self,
        message: str,
        *,
        setting: str | None = None,
        source: str | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.setting = setting
        self.source = source


class InputError(GcdialError):
    """Bad user input, refused before anything was sent to Genesys Cloud."""


class InvalidPhoneNumberError(InputError):
    """A phone number that cannot be dialed; ``reason`` says why."""

    def __init__(self, number: str, reason: str, *, hint: str | None = None) -> None:
        super().__init__(
            f"Invalid phone number {number!r}: {reason}.",
            hint=hint
            or "Give it in E.164 form (+14155550100) or as a national number with the right "
            "default country (setting default_country, e.g. GCDIAL_DEFAULT_COUNTRY=GB).",
        )
        self.number = number
        self.reason = reason


class AgentNotReadyError(GcdialError):
    """The agent cannot take a call: missing, inactive or without a station; says what to fix."""

    def __init__(
        self,
        message: str,
        *,
        agent: str,
        reason: str,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.agent = agent
        self.reason = reason


class AuthError(GcdialError):
    """The OAuth token endpoint refused to issue a token, or failed."""

    def __init__(
        self,
        message: str,
        *,
        login_host: str | None = None,
        status: int | None = None,
        code: str | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.login_host = login_host
        self.status = status
        self.code = code


class InvalidClientError(AuthError):
    """``invalid_client``: the login host does not know this client id / secret pair."""

    def __init__(self, *, login_host: str, client_id: str | None, status: int | None) -> None:
        who = f"client id {client_id!r}" if client_id else "the OAuth client"
        super().__init__(
            f"The login host {login_host} rejected {who} (invalid_client).",
            login_host=login_host,
            status=status,
            code="invalid_client",
            hint=(
                "Likely causes, commonest first: (1) the wrong region: an OAuth client exists only "
                "in the region of the org that created it, so check GENESYSCLOUD_REGION (e.g. "
                "eu_west_1 for mypurecloud.ie) against the address you log in to Genesys Cloud at; "
                "(2) a wrong or rotated client secret, or a mistyped client id (Admin > "
                "Integrations > OAuth); (3) the OAuth client is not of the Client Credentials "
                "grant type, or it was deleted."
            ),
        )
        self.client_id = client_id


class ApiError(GcdialError):
    """Genesys Cloud answered with an error status; carries its code, message and contextId."""

    def __init__(
        self,
        message: str,
        *,
        status: int,
        code: str | None = None,
        context_id: str | None = None,
        correlation_id: str | None = None,
        hint: str | None = None,
        body: object = None,
        method: str | None = None,
        url: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.status = status
        self.code = code
        self.context_id = context_id
        self.correlation_id = correlation_id
        self.body = body
        self.method = method
        self.url = url

    def __str__(self) -> str:
        what = f"HTTP {self.status}" + (f" {self.code}" if self.code else "")
        where = f" to {self.method} {self.url}" if self.method and self.url else ""
        text = f"Genesys Cloud answered{where} with {what}: {self.message.rstrip('.')}."
        if self.hint:
            text += f" {self.hint}"
        text += f" (contextId: {self.context_id or 'none in the response'}"
        if self.correlation_id:
            text += f"; correlation id: {self.correlation_id}"
        return text + ")"


class BadRequestError(ApiError):
    """HTTP 400: the request was refused as invalid."""


class AuthenticationError(ApiError):
    """HTTP 401: the token is missing, expired or revoked."""


class PermissionDeniedError(ApiError):
    """HTTP 403: the token's roles lack a permission."""


class NotFoundError(ApiError):
    """HTTP 404: no such user, conversation or route."""


class RateLimitedError(ApiError):
    """HTTP 429: too many requests; ``retry_after`` is the server's wait in seconds, if given."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class ServerError(ApiError):
    """HTTP 5xx: Genesys Cloud failed or is unavailable."""


class ApiConnectionError(GcdialError):
    """No complete response came back: DNS failure, refused or reset connection, protocol error."""

    def __init__(
        self,
        message: str,
        *,
        method: str | None = None,
        url: str | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(
            message,
            hint=hint
            or "Check the network, proxy settings and the region or base URL in your settings.",
        )
        self.method = method
        self.url = url


class ApiTimeoutError(ApiConnectionError):
    """The server did not answer within the timeout."""


class ResponseFormatError(GcdialError):
    """A response came back but cannot be used: not JSON, HTML, or the wrong shape."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        content_type: str | None = None,
        url: str | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(
            message,
            hint=hint
            or "The base URL may point at something that is not the Genesys Cloud API (a proxy, "
            "a captive portal, a web page); check the region / base URL setting.",
        )
        self.status = status
        self.content_type = content_type
        self.url = url


class CallOutcomeUnknownError(GcdialError):
    """A create-call POST was sent and may or may not have placed the call; do not re-send it.

    Carries what was sent (``method``, ``url``, ``body``) and when (``sent_at``), so the caller can
    reconcile with the agent's conversations before deciding to dial again.
    """

    def __init__(
        self,
        *,
        method: str,
        url: str,
        body: object,
        sent_at: datetime,
        cause: BaseException | None,
        reason: str | None = None,
    ) -> None:
        why = reason or (str(cause) if cause is not None else "no usable response came back")
        dialed = body.get("phoneNumber") if isinstance(body, dict) else None
        to = f" (dialing {dialed})" if isinstance(dialed, str) and dialed else ""
        super().__init__(
            f"The call request {method} {url}{to} was sent at {_iso(sent_at)} but its outcome is "
            f"unknown: {why.rstrip('.')}. The call may or may not have been placed.",
            hint=(
                "It was deliberately not re-sent, so the customer cannot be rung twice. Reconcile "
                "first: look at the agent's recent conversations (gcdial status, or the "
                "Interactions view in Genesys Cloud) before dialing again."
            ),
        )
        self.method = method
        self.url = url
        self.body = body
        self.sent_at = sent_at
        self.cause = cause


def _iso(moment: datetime) -> str:
    if moment.tzinfo is None:
        return moment.isoformat(timespec="seconds")
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


_STATION_HINT = (
    "The agent has no phone station. The agent picks one in Genesys Cloud (Calls > Phone "
    "selector), or an admin assigns a default station under Admin > Telephony > Phone Management; "
    "WebRTC phones must allow placing calls with another app."
)
_PERMISSION_HINT = (
    "The OAuth client (or user) lacks a permission: give its role conversation:call:add, or "
    "conversation:agentlessCall:add for calls placed on behalf of an agent (Admin > People & "
    "Permissions > Roles, then assign the role under Admin > Integrations > OAuth > Roles)."
)
_EXPIRED_HINT = (
    "The access token is missing, expired or revoked. A client-credentials token is renewed "
    "automatically; for a user token run `gcdial login` again."
)

_HINTS_BY_CODE: Mapping[str, str] = {
    "not.a.user": (
        "Client credentials cannot use this endpoint: use the on-behalf route (setting "
        "call_route = on_behalf) or a user token (`gcdial login`, call_route = user)."
    ),
    "conversation.error.no.user.station": _STATION_HINT,
    "too.many.create.conversation.parameters": (
        "Give exactly one destination (a phone number, a queue or a user), not several."
    ),
    "missing.permissions": _PERMISSION_HINT,
    "missing.any.permissions": _PERMISSION_HINT,
    "not.authorized": _PERMISSION_HINT,
    "bad.credentials": _EXPIRED_HINT,
    "authentication.required": _EXPIRED_HINT,
    "too.many.requests": (
        "The rate limit (by default 300 requests a minute per token) was hit; gcdial waits for "
        "Retry-After on its own. Lower the concurrency or pacing if it keeps happening."
    ),
    "not.found": (
        "Check the id: the user or conversation may not exist, or belongs to an org in another "
        "region."
    ),
}

_HINTS_BY_STATUS: Mapping[int, str] = {
    401: _EXPIRED_HINT,
    403: _PERMISSION_HINT,
    404: _HINTS_BY_CODE["not.found"],
    429: _HINTS_BY_CODE["too.many.requests"],
    500: (
        "Genesys Cloud had an internal error. If it persists, give Genesys support the contextId."
    ),
    502: "Genesys Cloud is temporarily unreachable (bad gateway); try again in a minute.",
    503: (
        "Genesys Cloud is temporarily unavailable; try again in a minute, and check "
        "https://status.mypurecloud.com if it persists."
    ),
    504: "Genesys Cloud timed out (gateway timeout); try again in a minute.",
}

_CLASS_BY_STATUS: Mapping[int, type[ApiError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    429: RateLimitedError,
}


def hint_for(status: int, code: str | None) -> str | None:
    """Return what the user should do about an API error, picked by Genesys ``code`` then status."""
    if code and code in _HINTS_BY_CODE:
        return _HINTS_BY_CODE[code]
    if status in _HINTS_BY_STATUS:
        return _HINTS_BY_STATUS[status]
    if status >= 500:
        return _HINTS_BY_STATUS[500]
    return None


def header_value(headers: Mapping[str, str], name: str) -> str | None:
    """A header's value by case-insensitive name, from httpx.Headers or any plain mapping."""
    getter = getattr(headers, "get_list", None)
    if callable(getter):  # httpx.Headers: already case-insensitive
        values: list[str] = getter(name)
        return values[0] if values else None
    wanted = name.lower()
    return next((v for k, v in headers.items() if k.lower() == wanted), None)


def _str_field(body: object, name: str) -> str | None:
    if isinstance(body, Mapping):
        value = body.get(name)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def retry_after_seconds(raw: str | None, *, now: datetime | None = None) -> float | None:
    """Parse ``Retry-After`` as seconds or as an HTTP date; None when absent or unusable."""
    if raw is None or not raw.strip():
        return None
    try:
        seconds = float(raw.strip())
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(raw.strip())
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


def _permission_names(body: object) -> str | None:
    """Name the missing permissions when Genesys lists them in ``messageParams``."""
    if not isinstance(body, Mapping):
        return None
    params = body.get("messageParams")
    if not isinstance(params, Mapping):
        return None
    names = [str(v) for v in params.values() if isinstance(v, str) and ":" in v]
    return ", ".join(names) or None


def api_error_from_response(
    status: int,
    body: object,
    headers: Mapping[str, str],
    *,
    method: str | None = None,
    url: str | None = None,
) -> ApiError:
    """Build the right ApiError subclass for an error response, reading ErrorBody defensively.

    ``body`` is the parsed JSON (any shape, or None); ``headers`` the response headers.
    """
    code = _str_field(body, "code")
    message = (
        _str_field(body, "messageWithParams")
        or _str_field(body, "message")
        or f"HTTP {status} with no error message"
    )
    hint = hint_for(status, code)
    if code in {"missing.permissions", "missing.any.permissions"}:
        missing = _permission_names(body)
        if missing:
            hint = f"Missing: {missing}. {hint}"
    common: dict[str, Any] = {
        "status": status,
        "code": code,
        "context_id": _str_field(body, "contextId"),
        "correlation_id": header_value(headers, CORRELATION_HEADER),
        "hint": hint,
        "body": body,
        "method": method,
        "url": url,
    }
    if status == 429:
        retry_after = retry_after_seconds(header_value(headers, RETRY_AFTER_HEADER))
        return RateLimitedError(message, retry_after=retry_after, **common)
    cls = _CLASS_BY_STATUS.get(status)
    if cls is None:
        cls = ServerError if status >= 500 else ApiError
    return cls(message, **common)
