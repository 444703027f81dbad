"""The exit codes of ``gcdial``: one number per thing a script may want to react to.

0-9 say whether the command did its job and, if not, whose move it is (fix the input, fix the
setup, reconcile, retry later). 10 and up are the outcome of a call followed with ``--wait`` or
``watch`` (0 when the customer answered): 1x the customer's side, 2x the agent's side, 3x a
failure or an unknown outcome, 40 an ambiguous create proven not placed (one proven placed exits
as a placed call, one still unknown exits 5), 124 a wait that timed out (as coreutils'
``timeout``), 130 Ctrl-C and 141 a closed output pipe (128 + the signal number, as a shell
reports them).
``docs/cli.md`` carries the same table for users; a test keeps the two in step.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Process exit statuses of every ``gcdial`` command."""

    OK = 0
    INTERNAL = 1
    USAGE = 2
    CONFIG = 3
    REFUSED = 4
    OUTCOME_UNKNOWN = 5
    NETWORK = 6
    AGENT_NOT_READY = 7
    SERVER = 8
    RATE_LIMITED = 9
    NO_ANSWER = 10
    BUSY = 11
    INVALID_NUMBER = 12
    UNREACHABLE = 13
    AGENT_NO_ANSWER = 20
    AGENT_REJECTED = 21
    ABANDONED = 22
    CALL_FAILED = 30
    CALL_UNKNOWN = 31
    NOT_PLACED = 40
    WAIT_TIMEOUT = 124
    INTERRUPTED = 130
    PIPE_CLOSED = 141


MEANINGS: dict[ExitCode, str] = {
    ExitCode.OK: "success (with --wait/watch: the customer answered)",
    ExitCode.INTERNAL: "internal error in gcdial: a bug, please report it (run with -v for detail)",
    ExitCode.USAGE: "bad input: unknown option, invalid phone number, malformed argument",
    ExitCode.CONFIG: "configuration or authentication: missing/wrong credentials, unknown region",
    ExitCode.REFUSED: (
        "refused, nothing placed: Genesys refused the request (4xx: permissions, not found, bad "
        "request), or a calling rule (calling window, do-not-call list)"
    ),
    ExitCode.OUTCOME_UNKNOWN: (
        "the call may or may not have been placed (still unknown): gcdial resolve, do not re-send"
    ),
    ExitCode.NETWORK: "network: could not connect, or the connection failed before sending",
    ExitCode.AGENT_NOT_READY: (
        "the agent cannot take the call: unknown, inactive, no station, or on a live call"
    ),
    ExitCode.SERVER: "Genesys failed (5xx) or answered something that is not its API",
    ExitCode.RATE_LIMITED: "rate limited (429) after retrying: nothing was placed, try later",
    ExitCode.NO_ANSWER: "call outcome: the customer did not answer",
    ExitCode.BUSY: "call outcome: the customer's line was busy",
    ExitCode.INVALID_NUMBER: "call outcome: the number is invalid (not in service)",
    ExitCode.UNREACHABLE: "call outcome: the number could not be reached (carrier/network failure)",
    ExitCode.AGENT_NO_ANSWER: "call outcome: the agent did not answer, the customer was not dialed",
    ExitCode.AGENT_REJECTED: "call outcome: the agent rejected the call",
    ExitCode.ABANDONED: "call outcome: abandoned (hung up before the customer answered)",
    ExitCode.CALL_FAILED: "call outcome: the call failed (see the Genesys errorInfo)",
    ExitCode.CALL_UNKNOWN: "call outcome: could not be determined",
    ExitCode.NOT_PLACED: (
        "the create-call answer was lost, and the call was proven NOT placed: safe to dial again"
    ),
    ExitCode.WAIT_TIMEOUT: "--timeout ran out before the call ended (the call goes on)",
    ExitCode.INTERRUPTED: "interrupted (Ctrl-C)",
    ExitCode.PIPE_CLOSED: (
        "the reader of the output went away (piped into head): ended quietly, as on SIGPIPE"
    ),
}

# Outcome names of gcdial.monitor (OutcomeKind values) -> exit code. The library returns outcomes
# and knows nothing of process statuses: this is the only table of them.
OUTCOME_CODES: dict[str, ExitCode] = {
    "answered": ExitCode.OK,
    "no_answer": ExitCode.NO_ANSWER,
    "busy": ExitCode.BUSY,
    "invalid_number": ExitCode.INVALID_NUMBER,
    "unreachable": ExitCode.UNREACHABLE,
    "agent_no_answer": ExitCode.AGENT_NO_ANSWER,
    "agent_rejected": ExitCode.AGENT_REJECTED,
    "abandoned": ExitCode.ABANDONED,
    "failed": ExitCode.CALL_FAILED,
    "unknown": ExitCode.CALL_UNKNOWN,
}


def for_outcome(outcome: str) -> ExitCode:
    """The exit code for a call outcome name; outcomes gcdial does not know map to CALL_UNKNOWN."""
    return OUTCOME_CODES.get(outcome.lower(), ExitCode.CALL_UNKNOWN)
