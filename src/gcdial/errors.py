"""The one exception tree of gcdial.

Every error's ``str()`` is one user-facing paragraph: what went wrong, and a hint of what to do.
The tree is split by "did a response come back?"::

    GcdialError                      root: catch this to catch everything gcdial raises
    ├── ConfigError                  bad or missing settings: which one, its source, the fix
    ├── InputError                   bad user input, refused before anything is sent
    │   ├── InvalidPhoneNumberError  a number that cannot be dialed (number, reason)
    │   ├── InputFileError           a file as a whole cannot be read (file, line)
    │   │   ├── CsvFileError         the contact list: encoding, header, quoting
    │   │   ├── DncFileError         the do-not-call file
    │   │   └── WrapupRulesFileError a campaign's wrap-up rules file (TOML)
    │   ├── CsvValidationError       --strict and the list has bad rows (report)
    │   └── JournalError             a campaign journal cannot be used (file, why)
    │       ├── JournalLockedError   another process holds it
    │       ├── JournalMismatchError it belongs to another campaign or list
    │       ├── JournalSchemaError   a newer gcdial's, or not a journal at all
    │       ├── JournalDataError     a value in it is not one gcdial wrote (table, row, column)
    │       ├── JournalFencedError   this replica no longer holds the campaign: nothing written
    │       └── ReviewConflictError  a verdict on a contact no longer waiting for one
    ├── AgentNotReadyError           agent missing / inactive / without station: what to fix
    │   └── NoUsableAgentError       every agent of a campaign was excluded
    ├── CallRulesError               a calling rule (window, do-not-call) forbids the dial now
    ├── AuthError                    the OAuth token endpoint refused or failed
    │   └── InvalidClientError       invalid_client: wrong region first, then id/secret
    ├── BudgetUnavailableError       the shared request budget (a service's store) gave no token
    ├── TakenOverError               another replica took a dial's stale claim over: not sent
    ├── ApiError                     a response came back with an error status
    │   ├── BadRequestError          400
    │   ├── AuthenticationError      401
    │   ├── PermissionDeniedError    403
    │   ├── NotFoundError            404
    │   ├── RateLimitedError         429 (retry_after seconds, if the server said)
    │   ├── ServerError              5xx
    │   └── CallsRefusedError        a campaign stopped after call upon call was refused
    ├── ApiConnectionError           no (complete) response: DNS, refused, reset, protocol error
    │   └── ApiTimeoutError          the server did not answer in time
    ├── ResponseFormatError          a response came back but is unusable (HTML, wrong shape)
    ├── RequestOutcomeUnknownError   a request not safe to repeat got no usable answer
    │   └── CallOutcomeUnknownError  ... and it was the create-call: it may have placed the call
    ├── ChannelUnavailableError      no notifications channel (gcdial polls instead)
    └── CallWaitTimeoutError         a followed call was still going when the wait ran out

Each class also says once what it means for a call when it ends a dial: ``call_effect``, one
of ``CallEffect.REFUSED`` (gcdial refused before sending anything), ``NOT_PLACED`` (a request was
tried and provably placed nothing: safe to dial again) or ``UNKNOWN`` (it may have rung: never
re-send, reconcile first). The CLI, the campaign runner and the service read it there; the root's
``UNKNOWN`` is the safe answer for anything not classified.

Only the tree lives here. Reading an error response into it (``api_error_from_response``) is
done where responses are handled, in :mod:`gcdial.http`; scrubbing secrets out of an error's
text, in :mod:`gcdial.scrub`.

No exception text ever contains a secret or a token: none of these classes is ever given one.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, ClassVar, Final

if TYPE_CHECKING:
    from gcdial.campaign.csvinput import ValidationReport
    from gcdial.campaign.pool import Exclusion
    from gcdial.monitor.outcome import Outcome

__all__ = [
    "AgentNotReadyError",
    "ApiConnectionError",
    "ApiError",
    "ApiTimeoutError",
    "AuthError",
    "AuthenticationError",
    "BadRequestError",
    "BudgetUnavailableError",
    "CallEffect",
    "CallOutcomeUnknownError",
    "CallRulesError",
    "CallWaitTimeoutError",
    "CallsRefusedError",
    "ChannelUnavailableError",
    "ConfigError",
    "CsvFileError",
    "CsvValidationError",
    "DncFileError",
    "GcdialError",
    "InputError",
    "InputFileError",
    "InvalidClientError",
    "InvalidPhoneNumberError",
    "JournalDataError",
    "JournalError",
    "JournalFencedError",
    "JournalLockedError",
    "JournalMismatchError",
    "JournalSchemaError",
    "NoUsableAgentError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitedError",
    "RequestOutcomeUnknownError",
    "ResponseFormatError",
    "ReviewConflictError",
    "ServerError",
    "TakenOverError",
    "WrapupRulesFileError",
]


class CallEffect(StrEnum):
    """What an error that ends a dial means for the call."""

    REFUSED = "refused"  # refused before anything was sent: fix the input, the agent or the setup
    NOT_PLACED = "not_placed"  # tried, and provably placed nothing: safe to dial again
    UNKNOWN = "unknown"  # it may have rung: never re-send, reconcile first


class GcdialError(Exception):
    """Root of every error gcdial raises; ``str()`` is a one-paragraph message with a hint."""

    call_effect: ClassVar[CallEffect] = CallEffect.UNKNOWN
    """What this error means for a call it ends (anything unclassified: it may have rung)."""

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


class ConfigError(GcdialError):
    """A setting is missing or invalid; says which one, where it came from and how to fix it."""

    call_effect = CallEffect.REFUSED  # settings are checked before anything is sent

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

    call_effect = CallEffect.REFUSED  # input is checked before anything is sent


LIBRARY_COUNTRY: Final = "the setting default_country, e.g. GCDIAL_DEFAULT_COUNTRY=GB"
"""Where a library user gives the country of national numbers; each surface names its own."""


def number_fix(country_from: str) -> str:
    """How to fix a number that cannot be dialed, naming where this surface takes the country
    (``--country GB`` on the command line, the Country box on the page...)."""
    return (
        "Give it in E.164 form (+14155550100), or as a national number with the right country "
        f"({country_from})."
    )


class InvalidPhoneNumberError(InputError):
    """A phone number that cannot be dialed; ``reason`` says why."""

    def __init__(self, number: str, reason: str, *, hint: str | None = None) -> None:
        super().__init__(
            f"Invalid phone number {number!r}: {reason}.",
            hint=hint or number_fix(LIBRARY_COUNTRY),
        )
        self.number = number
        self.reason = reason

    def country_from(self, where: str) -> InvalidPhoneNumberError:
        """The same error, its fix naming where the caller's surface takes the country."""
        return InvalidPhoneNumberError(self.number, self.reason, hint=number_fix(where))


class AgentNotReadyError(GcdialError):
    """The agent cannot take a call: missing, inactive or without a station; says what to fix."""

    call_effect = CallEffect.REFUSED  # the agent is checked before the create-call is sent

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

    call_effect = CallEffect.NOT_PLACED  # no token, so the create-call never left

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


class BudgetUnavailableError(GcdialError):
    """The request budget shared through a service's store could not grant a token (the store
    failed): the request was not sent, rather than sent around the budget."""

    call_effect = CallEffect.NOT_PLACED  # no token, so the create-call never left


class TakenOverError(GcdialError):
    """A service's dial waited so long to be sent that its claim went stale and another replica
    took it over: it was not sent (that replica settles the call on evidence, and finds none)."""

    call_effect = CallEffect.NOT_PLACED  # stopped before the create-call left


class ApiError(GcdialError):
    """Genesys Cloud answered with an error status; carries its code, message and contextId."""

    call_effect = CallEffect.NOT_PLACED  # an error status came back: Genesys did nothing

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

    # the dialing core turns an ambiguous send into CallOutcomeUnknownError; what is left never left
    call_effect = CallEffect.NOT_PLACED

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

    call_effect = CallEffect.UNKNOWN  # an unreadable answer may hide a placed call

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


class RequestOutcomeUnknownError(GcdialError):
    """A request that is not safe to repeat was sent and no usable answer came back.

    Raised by the transport, which knows only that the request must not be re-sent, not what it
    was for; so the words stay neutral ("no usable answer; not re-sent"). The caller that knows
    what the request does says what it means: the create-call raises
    :class:`CallOutcomeUnknownError`, the notifications channel falls back to polling.
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
        message: str | None = None,
        hint: str | None = None,
    ) -> None:
        why = reason or (str(cause) if cause is not None else "no usable response came back")
        super().__init__(
            message
            or f"{method} {url} got no usable answer ({why.rstrip('.')}); it was not re-sent.",
            hint=hint,
        )
        self.method = method
        self.url = url
        self.body = body
        self.sent_at = sent_at
        self.cause = cause
        self.reason = why


class CallOutcomeUnknownError(RequestOutcomeUnknownError):
    """A create-call POST was sent and may or may not have placed the call; do not re-send it.

    Carries what was sent (``method``, ``url``, ``body``) and when (``sent_at``), so the caller can
    reconcile with the agent's conversations before deciding to dial again.
    """

    call_effect = CallEffect.UNKNOWN  # the create-call may have been acted on

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
            method=method,
            url=url,
            body=body,
            sent_at=sent_at,
            cause=cause,
            reason=why,
            message=(
                f"The call request {method} {url}{to} was sent at {_iso(sent_at)} but its outcome "
                f"is unknown: {why.rstrip('.')}. The call may or may not have been placed."
            ),
            hint=(
                "It was deliberately not re-sent, so the customer cannot be rung twice. Reconcile "
                "first: look at the agent's recent conversations (gcdial status, or the "
                "Interactions view in Genesys Cloud) before dialing again."
            ),
        )

    @classmethod
    def of_request(cls, error: RequestOutcomeUnknownError) -> CallOutcomeUnknownError:
        """The create-call's reading of what the transport reported in neutral words."""
        return cls(
            method=error.method,
            url=error.url,
            body=error.body,
            sent_at=error.sent_at,
            cause=error.cause,
            reason=error.reason,
        )


def _iso(moment: datetime) -> str:
    if moment.tzinfo is None:
        return moment.isoformat(timespec="seconds")
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class InputFileError(InputError):
    """An input file as a whole cannot be read; says which file, which line, and how to fix it."""

    def __init__(
        self, message: str, *, file: str, line: int | None = None, hint: str | None = None
    ) -> None:
        where = f"{file}:{line}" if line is not None else file
        super().__init__(f"{where}: {message}", hint=hint)
        self.file = file
        self.line = line
        self.reason = message  # without the place: for a surface that names the file its own way


class CsvFileError(InputFileError):
    """The contact list cannot be read: encoding, header, quoting."""


class CsvValidationError(InputError):
    """Strict mode: the list has bad or duplicate rows, so nothing is dialed."""

    def __init__(self, report: ValidationReport, *, shown: int = 20) -> None:
        lines = [str(p) for p in report.problems[:shown]]
        more = report.problem_count - len(lines)
        if more > 0:
            lines.append(f"... and {more} more")
        super().__init__(
            f"{report.file}: {report.problem_count} bad row(s) and --strict is on:\n"
            + "\n".join(lines),
            hint="Fix the rows listed, or run without --strict to skip them (they are recorded).",
        )
        self.report = report


class DncFileError(InputFileError):
    """The do-not-call file cannot be used (unreadable, bad encoding, or junk in strict mode)."""


class WrapupRulesFileError(InputFileError):
    """A campaign's wrap-up rules file cannot be used: bad TOML, an unknown action or key."""


class JournalError(InputError):
    """The journal file cannot be used: says which file, why, and what to do."""


class JournalLockedError(JournalError):
    """Another process holds the journal."""


class JournalMismatchError(JournalError):
    """The journal belongs to another campaign or contact list."""


class JournalSchemaError(JournalError):
    """The journal was written by a newer gcdial, or is not a gcdial journal."""


class JournalDataError(JournalError):
    """A value read back from an intact journal is not one gcdial writes (edited by hand, or
    damaged): names the file, table, row and column, so that it can be restored or corrected."""


class JournalFencedError(JournalError):
    """A campaign's journal in a shared store refused to begin an attempt: this replica no
    longer holds the campaign's lease (another replica took it over). Nothing was written, and
    nothing may be dialed."""


class ReviewConflictError(JournalError):
    """A verdict that cannot apply: the contact is no longer waiting for review (someone
    recorded one first), or its call was accepted by Genesys, so "not placed" is impossible."""


class CallRulesError(GcdialError):
    """A calling rule forbids this dial now (the calling window in the customer's local time,
    the do-not-call list): nothing was sent. ``rule`` names it; ``local_time`` is the
    customer's local time(s), None when no time zone is known."""

    call_effect = CallEffect.REFUSED  # the rules are asked before the create-call is sent

    def __init__(
        self,
        message: str,
        *,
        rule: str,
        local_time: str | None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.rule = rule
        self.local_time = local_time


class NoUsableAgentError(AgentNotReadyError):
    """Every agent of the campaign was excluded: nobody can take a call."""

    def __init__(self, excluded: Sequence[Exclusion]) -> None:
        lines = "; ".join(f"{e.agent}: {e.reason}" for e in excluded) or "no agent was given"
        super().__init__(
            f"No agent can take calls, so the campaign cannot start ({lines}).",
            agent=", ".join(e.agent for e in excluded),
            reason="no_usable_agent",
            hint="Give agents that exist, are active and have a phone station (`gcdial agent "
            "show EMAIL` says what is missing for one). Nothing was dialed.",
        )
        self.excluded = tuple(excluded)


class CallsRefusedError(ApiError):
    """Genesys Cloud refused (or left unknown) call after call: the run stopped to save the list."""

    def __init__(self, count: int, last: GcdialError) -> None:
        status = last.status if isinstance(last, ApiError) else 0
        detail = last.message.rstrip(".")
        super().__init__(
            f"{count} calls in a row failed, so the campaign stopped instead of burning the "
            f"list. The last one: {detail}",
            status=status,
            code=last.code if isinstance(last, ApiError) else None,
            context_id=last.context_id if isinstance(last, ApiError) else None,
            hint=((last.hint + " ") if last.hint else "")
            + "Contacts refused in that streak are pending again: fix the cause, then resume.",
        )
        self.count = count
        self.last = last

    def __str__(self) -> str:
        if self.status:
            return super().__str__()
        return f"{self.message}. {self.hint}"


class ChannelUnavailableError(GcdialError):
    """No notifications channel could be had (refused, limit reached, WebSocket unreachable)."""

    def __init__(self, reason: str, *, cause: BaseException | None = None) -> None:
        super().__init__(
            f"No notifications channel: {reason.rstrip('.')}.",
            hint="gcdial follows calls by polling instead (more requests, same outcome). Give the "
            "OAuth client's role the notifications permission, or free channels (20 per user/app).",
        )
        self.reason = reason
        self.cause = cause


class CallWaitTimeoutError(GcdialError):
    """The call was still going when the wait ran out; ``outcome`` is what was known then."""

    def __init__(self, conversation_id: str, timeout_s: float, outcome: Outcome) -> None:
        super().__init__(
            f"Call {conversation_id} was still in progress after {timeout_s:g} s "
            f"({outcome.reason}).",
            hint=f"The call goes on: follow it again with `gcdial watch {conversation_id}`, or "
            "hang it up; give a longer --timeout to wait for it.",
        )
        self.conversation_id = conversation_id
        self.timeout_s = timeout_s
        self.outcome = outcome


_MOVED = {
    "api_error_from_response": "gcdial.http",
    "header_value": "gcdial.http",
    "hint_for": "gcdial.http",
    "retry_after_seconds": "gcdial.http",
    "redact_error": "gcdial.scrub",
}


def __getattr__(name: str) -> Any:
    """The functions that used to live here, for code that imported them from gcdial.errors."""
    if name in _MOVED:
        import importlib

        return getattr(importlib.import_module(_MOVED[name]), name)
    raise AttributeError(f"module 'gcdial.errors' has no attribute {name!r}")
