"""Each error class says once what it means for a call (``call_effect``), and the CLI, the
campaign runner and the service all read it there: one table, three readers, no disagreement."""

from __future__ import annotations

import inspect
from datetime import UTC, datetime

import pytest

from gcdial import errors as e
from gcdial.campaign.decide import ResultKind
from gcdial.campaign.placer import _result_of_error
from gcdial.cli.errors import describe
from gcdial.errors import CallEffect
from gcdial.serve.dialing import failed_dial_status

R, N, U = CallEffect.REFUSED, CallEffect.NOT_PLACED, CallEffect.UNKNOWN

TABLE: dict[type[e.GcdialError], CallEffect] = {
    e.GcdialError: U,
    e.ConfigError: R,
    e.InputError: R,
    e.InvalidPhoneNumberError: R,
    e.InputFileError: R,
    e.CsvFileError: R,
    e.DncFileError: R,
    e.WrapupRulesFileError: R,
    e.CsvValidationError: R,
    e.JournalError: R,
    e.JournalLockedError: R,
    e.JournalMismatchError: R,
    e.JournalSchemaError: R,
    e.JournalDataError: R,
    e.JournalFencedError: R,
    e.ReviewConflictError: R,
    e.AgentNotReadyError: R,
    e.NoUsableAgentError: R,
    e.CallRulesError: R,
    e.AuthError: N,
    e.InvalidClientError: N,
    e.BudgetUnavailableError: N,
    e.TakenOverError: N,
    e.ApiError: N,
    e.BadRequestError: N,
    e.AuthenticationError: N,
    e.PermissionDeniedError: N,
    e.NotFoundError: N,
    e.RateLimitedError: N,
    e.ServerError: N,
    e.CallsRefusedError: N,
    e.ApiConnectionError: N,
    e.ApiTimeoutError: N,
    e.ResponseFormatError: U,
    e.RequestOutcomeUnknownError: U,
    e.CallOutcomeUnknownError: U,
    e.ChannelUnavailableError: U,
    e.CallWaitTimeoutError: U,
}

# The runner's kinds, by what they mean for the call.
RUNNER_KINDS = {
    R: {ResultKind.INVALID, ResultKind.AGENT_REFUSED, ResultKind.FATAL},
    N: {
        ResultKind.RATE_LIMITED,
        ResultKind.REFUSED,
        ResultKind.AGENT_REFUSED,
        ResultKind.SYSTEMIC,
        ResultKind.NOT_SENT,
        ResultKind.FATAL,
    },
    U: {ResultKind.UNKNOWN},
}


def test_every_error_class_is_in_the_table() -> None:
    classes = {
        cls for _, cls in inspect.getmembers(e, inspect.isclass) if issubclass(cls, e.GcdialError)
    }
    assert classes == set(TABLE)


@pytest.mark.parametrize(("cls", "effect"), TABLE.items(), ids=lambda v: getattr(v, "__name__", v))
def test_each_class_states_its_effect(cls: type[e.GcdialError], effect: CallEffect) -> None:
    assert cls.call_effect is effect


SAMPLES: list[e.GcdialError] = [
    e.GcdialError("odd"),
    e.ConfigError("bad region"),
    e.InputError("bad input"),
    e.InvalidPhoneNumberError("12", "too short"),
    e.AgentNotReadyError("no station", agent="a@example.com", reason="no_station"),
    e.AuthError("token refused"),
    e.BadRequestError("bad", status=400, code="bad.request"),
    e.NotFoundError("gone", status=404),
    e.PermissionDeniedError("no", status=403),
    e.RateLimitedError("slow down", status=429, retry_after=3),
    e.ServerError("down", status=503),
    e.ApiConnectionError("refused"),
    e.ApiTimeoutError("slow"),
    e.ResponseFormatError("html"),
    e.CallOutcomeUnknownError(
        method="POST",
        url="/api/v2/conversations/calls",
        body={},
        sent_at=datetime.now(UTC),
        cause=None,
    ),
]


@pytest.mark.parametrize("exc", SAMPLES, ids=lambda x: type(x).__name__)
def test_the_cli_the_runner_and_the_service_agree(exc: e.GcdialError) -> None:
    effect = TABLE[type(exc)]
    assert failed_dial_status(exc) == effect.value
    assert describe(exc).as_json()["error"]["call"] == effect.value
    assert _result_of_error(exc, placed=False).kind in RUNNER_KINDS[effect]


def test_a_config_error_is_refused_everywhere_and_stops_a_campaign() -> None:
    """The disagreement this table ended: fatal to the runner, refused to the service. Both
    hold now, read from one place: nothing was sent, and the run cannot go on."""
    exc = e.ConfigError("no credentials")
    assert failed_dial_status(exc) == "refused"
    assert _result_of_error(exc, placed=False).kind is ResultKind.FATAL


def test_anything_not_a_gcdial_error_is_unknown() -> None:
    assert failed_dial_status(RuntimeError("bug")) == "unknown"
