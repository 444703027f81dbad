"""The one place where an exception becomes what the user reads, and the exit code.

Every ``GcdialError`` already reads as a paragraph (what, how to fix, contextId); this module adds
where it came from when the exception knows (setting and source, login host, URL) and picks the
exit code. Anything else is a bug: a short "internal error" line, its traceback only under ``-v``
(through the redacting log handler), exit 1. No command ever shows a raw Python traceback.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Any

from gcdial.cli.exitcodes import ExitCode
from gcdial.cli.logs import scrub
from gcdial.cli.output import Output

log = logging.getLogger("gcdial.cli")

_STATION_CODE = "conversation.error.no.user.station"
_REPORT_URL_HINT = "please report it with the output of the same command run with -v"


@dataclass(frozen=True)
class Failure:
    """What to tell the user about an error, and how the process ends."""

    code: ExitCode
    kind: str
    message: str
    # What the error means for a call the command was placing: the error class's call_effect.
    call: str = "unknown"

    def as_json(self) -> dict[str, Any]:
        """The ``{"error": ...}`` document printed on stdout in ``--json`` mode."""
        return {
            "error": {
                "type": self.kind,
                "message": self.message,
                "exit_code": int(self.code),
                "call": self.call,
            }
        }


def _exit_code_for(exc: BaseException) -> ExitCode:
    # Imported here so that `gcdial --help` does not pay for the error module's imports.
    from gcdial import errors as e

    table: list[tuple[type[BaseException], ExitCode]] = [
        (e.CallWaitTimeoutError, ExitCode.WAIT_TIMEOUT),
        # Raised to the CLI only where notifications are required (watch --agent).
        (e.ChannelUnavailableError, ExitCode.REFUSED),
        (e.CallOutcomeUnknownError, ExitCode.OUTCOME_UNKNOWN),
        # Any other request not safe to repeat that got no usable answer: Genesys failed.
        (e.RequestOutcomeUnknownError, ExitCode.SERVER),
        (e.InputError, ExitCode.USAGE),
        (e.ConfigError, ExitCode.CONFIG),
        (e.AuthError, ExitCode.CONFIG),
        (e.AuthenticationError, ExitCode.CONFIG),
        (e.AgentNotReadyError, ExitCode.AGENT_NOT_READY),
        (e.CallRulesError, ExitCode.REFUSED),
        (e.RateLimitedError, ExitCode.RATE_LIMITED),
        (e.ServerError, ExitCode.SERVER),
        (e.ResponseFormatError, ExitCode.SERVER),
        (e.ApiConnectionError, ExitCode.NETWORK),
    ]
    if isinstance(exc, e.ApiError) and exc.code == _STATION_CODE:
        return ExitCode.AGENT_NOT_READY
    for cls, code in table:
        if isinstance(exc, cls):
            return code
    if isinstance(exc, e.ApiError):
        return ExitCode.SERVER if exc.status >= 500 else ExitCode.REFUSED
    return ExitCode.INTERNAL


def _where(exc: BaseException) -> str:
    """Extra 'where' detail the exception carries but its message may not say."""
    from gcdial import errors as e

    candidates: list[tuple[str, str | None]] = []
    if isinstance(exc, e.ConfigError):
        candidates = [("setting", exc.setting), ("from", exc.source)]
    elif isinstance(exc, e.AuthError):
        candidates = [("login host", exc.login_host)]
    elif isinstance(exc, e.ApiConnectionError | e.ResponseFormatError):
        candidates = [("url", exc.url)]
    text = str(exc)
    parts = [f"{label}: {value}" for label, value in candidates if value and value not in text]
    return f" ({'; '.join(parts)})" if parts else ""


def describe(exc: BaseException) -> Failure:
    """Turn any exception into the message and exit code the user gets."""
    from gcdial.errors import GcdialError

    if isinstance(exc, KeyboardInterrupt):
        return Failure(ExitCode.INTERRUPTED, "Interrupted", "Interrupted.", "unknown")
    if isinstance(exc, GcdialError):
        # Spaces are tidied within a line; a list of rows (bad CSV rows) keeps one per line.
        lines = [" ".join(line.split()) for line in str(exc).splitlines()]
        message = "\n".join(line for line in lines if line) + _where(exc)
        return Failure(_exit_code_for(exc), type(exc).__name__, message, exc.call_effect.value)
    return Failure(
        ExitCode.INTERNAL,
        "InternalError",
        f"internal error ({type(exc).__name__}): this is a bug in gcdial; {_REPORT_URL_HINT}.",
    )


def report(exc: BaseException, output: Output, *, verbose: bool = False) -> ExitCode:
    """Tell the user about ``exc`` (stderr, plus a JSON error document in ``--json`` mode)."""
    failure = describe(exc)
    # Defence in depth: a server may echo credentials into an error text; never print them.
    failure = replace(failure, message=scrub(failure.message))
    output.fail(failure.message)
    if failure.code is ExitCode.INTERNAL and verbose:
        # A bug's traceback is the detail to report; it goes through the redacting log handler.
        log.debug("detail of the internal error above", exc_info=exc)
    if output.json_mode:
        output.data(failure.as_json())
    return failure.code
