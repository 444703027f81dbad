"""The CLI's foundation: help, the exit-code table, error descriptions, redaction."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

import gcdial.monitor.outcome
from gcdial import errors as e
from gcdial.cli.errors import describe
from gcdial.cli.exitcodes import MEANINGS, OUTCOME_CODES, ExitCode, for_outcome
from gcdial.monitor.outcome import OutcomeKind
from gcdial.scrub import scrub as redact

from .helpers import GCDIAL, Cli, Result

DOCS = Path(__file__).resolve().parents[2] / "docs" / "cli.md"


def test_help_lists_every_verb_and_is_fast(run_gcdial: Cli) -> None:
    started = time.perf_counter()
    result: Result = run_gcdial("--help")
    elapsed = time.perf_counter() - started
    assert result.code == 0
    for verb in ("call", "status", "hangup", "watch", "agent", "doctor", "login", "demo"):
        assert re.search(rf"^\s+{verb}\s", result.out, re.MULTILINE), verb
    assert "--client-secret-file" in result.out
    assert "--client-secret " not in result.out
    # Heavy modules are imported inside commands: --help stays well under a second.
    assert elapsed < 2.0, elapsed
    assert GCDIAL.exists()


def test_docs_exit_code_table_matches_the_code() -> None:
    text = DOCS.read_text(encoding="utf-8")
    table = text.split("<!-- exit-codes:start -->")[1].split("<!-- exit-codes:end -->")[0]
    rows = dict(re.findall(r"^\| (\d+) \| (.+?) \|$", table, re.MULTILINE))
    assert {int(k): v for k, v in rows.items()} == {int(c): m for c, m in MEANINGS.items()}
    assert set(MEANINGS) == set(ExitCode)


def test_one_exit_code_table_in_the_cli_none_in_the_library() -> None:
    assert set(OUTCOME_CODES) == {k.value for k in OutcomeKind}
    assert OUTCOME_CODES["answered"] is ExitCode.OK
    assert len(set(OUTCOME_CODES.values())) == len(OUTCOME_CODES)
    assert for_outcome("something_new") is ExitCode.CALL_UNKNOWN
    # The library returns outcomes, not process statuses.
    library = vars(gcdial.monitor.outcome)
    assert not [name for name in library if "EXIT" in name.upper()]
    assert not hasattr(gcdial.monitor.outcome.Outcome, "exit_code")


def _api(cls: type[e.ApiError], status: int, code: str | None = None) -> e.ApiError:
    return cls("boom", status=status, code=code, context_id="ctx-123")


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (e.InvalidPhoneNumberError("12", "too short"), ExitCode.USAGE),
        (e.InputError("bad"), ExitCode.USAGE),
        (e.ConfigError("no region", setting="region"), ExitCode.CONFIG),
        (e.InvalidClientError(login_host="https://login.x", client_id="c", status=400), 3),
        (_api(e.AuthenticationError, 401, "bad.credentials"), ExitCode.CONFIG),
        (_api(e.PermissionDeniedError, 403, "missing.permissions"), ExitCode.REFUSED),
        (_api(e.NotFoundError, 404), ExitCode.REFUSED),
        (_api(e.BadRequestError, 400, "conversation.error.no.user.station"), 7),
        (_api(e.ApiError, 409), ExitCode.REFUSED),
        (_api(e.RateLimitedError, 429), ExitCode.RATE_LIMITED),
        (_api(e.ServerError, 503), ExitCode.SERVER),
        (e.ResponseFormatError("html"), ExitCode.SERVER),
        (e.ApiConnectionError("refused"), ExitCode.NETWORK),
        (e.ApiTimeoutError("slow"), ExitCode.NETWORK),
        (e.AgentNotReadyError("no", agent="a", reason="no_station"), 7),
        (
            e.CallOutcomeUnknownError(
                method="POST", url="u", body={}, sent_at=datetime.now(UTC), cause=None
            ),
            ExitCode.OUTCOME_UNKNOWN,
        ),
        (KeyboardInterrupt(), ExitCode.INTERRUPTED),
        (ZeroDivisionError("x"), ExitCode.INTERNAL),
    ],
)
def test_every_error_has_its_exit_code(exc: BaseException, code: int) -> None:
    failure = describe(exc)
    assert failure.code == code
    assert "\n" not in failure.message
    if isinstance(exc, e.ApiError):
        assert "ctx-123" in failure.message


def test_unexpected_errors_ask_for_a_report_without_detail() -> None:
    failure = describe(RuntimeError("secret-ish internals"))
    assert failure.code is ExitCode.INTERNAL
    assert "bug" in failure.message
    assert "-v" in failure.message
    assert "secret-ish" not in failure.message


def test_config_errors_say_where() -> None:
    failure = describe(e.ConfigError("Bad.", setting="region", source="profile 'x'"))
    assert "setting: region" in failure.message
    assert "profile 'x'" in failure.message


def test_redaction_of_credential_shapes() -> None:
    text = redact(
        'Authorization: Bearer abc.def.ghi {"access_token": "tok123"} client_secret=s3cr3t '
        "http://h/cb?code=AUTHCODE&state=1 plain-known-value",
        ["plain-known-value"],
    )
    for leaked in ("abc.def.ghi", "tok123", "s3cr3t", "AUTHCODE", "plain-known-value"):
        assert leaked not in text
    assert "Bearer ***" in text
