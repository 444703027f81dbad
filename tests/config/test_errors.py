from datetime import UTC, datetime

import httpx
import pytest

from gcdial import errors
from gcdial.errors import (
    ApiError,
    AuthenticationError,
    BadRequestError,
    CallOutcomeUnknownError,
    GcdialError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    ServerError,
)
from gcdial.http import api_error_from_response, retry_after_seconds


def _body(code: str, message: str = "msg", **extra: object) -> dict[str, object]:
    return {"code": code, "message": message, "status": 0, "contextId": "ctx-123", **extra}


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, BadRequestError),
        (401, AuthenticationError),
        (403, PermissionDeniedError),
        (404, NotFoundError),
        (429, RateLimitedError),
        (500, ServerError),
        (503, ServerError),
        (504, ServerError),
        (409, ApiError),
    ],
)
def test_class_is_picked_by_status(status: int, cls: type[ApiError]) -> None:
    err = api_error_from_response(status, _body("x"), {})
    assert type(err) is cls
    assert isinstance(err, GcdialError)
    assert err.status == status


def test_context_id_and_correlation_id_are_always_in_the_text() -> None:
    err = api_error_from_response(
        400,
        _body("not.a.user", "This request requires a user context."),
        httpx.Headers({"inin-correlation-id": "corr-9"}),
        method="POST",
        url="https://api.mypurecloud.ie/api/v2/conversations/calls",
    )
    text = str(err)
    assert "ctx-123" in text
    assert "corr-9" in text
    assert "not.a.user" in text
    assert "on-behalf" in text
    assert "gcdial login" in text
    assert "POST https://api.mypurecloud.ie/api/v2/conversations/calls" in text
    assert err.code == "not.a.user"
    assert err.context_id == "ctx-123"
    assert err.correlation_id == "corr-9"


def test_context_id_shown_even_when_missing() -> None:
    err = api_error_from_response(500, "<html>oops</html>", {})
    assert "contextId: none in the response" in str(err)
    assert err.code is None
    assert "HTTP 500" in str(err)


@pytest.mark.parametrize(
    ("status", "code", "needle"),
    [
        (400, "conversation.error.no.user.station", "station"),
        (403, "missing.permissions", "conversation:agentlessCall:add"),
        (403, "missing.any.permissions", "conversation:call:add"),
        (401, "bad.credentials", "gcdial login"),
        (429, "too.many.requests", "Retry-After"),
        (503, None, "temporarily unavailable"),
        (404, "not.found", "region"),
    ],
)
def test_hints_by_status_and_code(status: int, code: str | None, needle: str) -> None:
    body = _body(code) if code else {"message": "x"}
    assert needle in str(api_error_from_response(status, body, {}))


def test_missing_permission_names_are_quoted_from_message_params() -> None:
    body = _body(
        "missing.permissions",
        messageParams={"perm": "conversation:agentlessCall:add"},
        messageWithParams="Missing conversation:agentlessCall:add",
    )
    err = api_error_from_response(403, body, {})
    assert "Missing: conversation:agentlessCall:add" in str(err)


@pytest.mark.parametrize(
    "body",
    [None, "text", 42, [], {"code": 5, "message": None, "contextId": ["x"]}, {"message": "  "}],
)
def test_body_of_any_shape_is_read_defensively(body: object) -> None:
    err = api_error_from_response(400, body, {})
    assert err.code is None
    assert err.context_id is None
    assert "HTTP 400" in str(err)
    assert err.body == body


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("7", 7.0), ("1.5", 1.5), ("-3", 0.0), ("soon", None), ("nan", None), ("inf", None)],
)
def test_retry_after_seconds(raw: str, expected: float | None) -> None:
    err = api_error_from_response(429, _body("too.many.requests"), {"Retry-After": raw})
    assert isinstance(err, RateLimitedError)
    assert err.retry_after == expected


def test_retry_after_as_http_date() -> None:
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert retry_after_seconds("Thu, 01 Jan 2026 12:00:30 GMT", now=now) == 30.0


def test_retry_after_absent() -> None:
    err = api_error_from_response(429, _body("too.many.requests"), {})
    assert isinstance(err, RateLimitedError)
    assert err.retry_after is None


def test_call_outcome_unknown_says_do_not_resend() -> None:
    cause = httpx.ReadTimeout("timed out")
    err = CallOutcomeUnknownError(
        method="POST",
        url="https://api.x/api/v2/conversations/calls/user/u1",
        body={"phoneNumber": "+14155550100"},
        sent_at=datetime(2026, 1, 1, 8, 0, 0, tzinfo=UTC),
        cause=cause,
    )
    text = str(err)
    assert "2026-01-01T08:00:00Z" in text
    assert "not re-sent" in text
    assert "Reconcile" in text
    assert err.cause is cause
    assert err.body == {"phoneNumber": "+14155550100"}


def test_every_error_class_is_listed_in_the_docstring_tree() -> None:
    doc = errors.__doc__ or ""
    for name in errors.__all__:
        obj = getattr(errors, name)
        if isinstance(obj, type) and issubclass(obj, GcdialError):
            assert name in doc, name


def test_the_whole_tree_lives_in_errors_py() -> None:
    """Every exception class of gcdial is defined in gcdial.errors and drawn in its docstring."""
    import importlib
    import inspect
    import pkgutil

    import gcdial

    doc = errors.__doc__ or ""
    for info in pkgutil.walk_packages(gcdial.__path__, "gcdial."):
        if ".emulator" in info.name:
            continue  # an independent implementation of the server side
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            if inspect.isclass(obj) and issubclass(obj, errors.GcdialError):
                assert obj.__module__ == "gcdial.errors", f"{info.name}.{name}"
                assert f" {obj.__name__} " in doc, f"{obj.__name__} missing from the drawn tree"


def test_moved_helpers_still_import_from_errors() -> None:
    """Code that imported the response helpers from gcdial.errors keeps working."""
    assert errors.api_error_from_response is api_error_from_response


def test_a_permission_refusal_names_the_create_calls_permissions_only_for_a_create_call() -> None:
    body = {"code": "missing.permissions", "message": "Unable to perform the requested action."}
    base = "https://api.mypurecloud.com/api/v2"
    call = api_error_from_response(
        403, body, {}, method="POST", url=f"{base}/conversations/calls/user/u1"
    )
    channel = api_error_from_response(
        403, body, {}, method="POST", url=f"{base}/notifications/channels"
    )
    assert call.hint is not None
    assert "conversation:call:add" in call.hint
    assert channel.hint is not None
    assert "conversation:call:add" not in channel.hint
    assert "the one Genesys names" in channel.hint
