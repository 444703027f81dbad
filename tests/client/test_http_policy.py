"""The retry policy as pure functions: which failures are retried, how long to wait."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import httpx
import pytest

from gcdial.errors import ResponseFormatError
from gcdial.http import (
    INITIAL_BACKOFF_S,
    JITTER_FRACTION,
    MAX_BACKOFF_S,
    MAX_RETRIES,
    PreparedRequest,
    backoff_delay,
    parse_json,
    parse_retry_after,
    redact_headers,
    request_was_sent,
    should_retry,
)

_REQ = httpx.Request("POST", "https://api.example.test/api/v2/conversations/calls")


class _FixedRng:
    def __init__(self, value: float) -> None:
        self.value = value

    def random(self) -> float:
        return self.value


@pytest.mark.parametrize("status", [429, 502, 503, 504])
def test_idempotent_requests_retry_transient_statuses(status: int) -> None:
    assert should_retry(idempotent=True, attempt=0, status=status)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 500, 501])
def test_idempotent_requests_do_not_retry_other_statuses(status: int) -> None:
    assert not should_retry(idempotent=True, attempt=0, status=status)


def test_create_call_is_retried_after_429_only() -> None:
    assert should_retry(idempotent=False, attempt=0, status=429)
    for status in (500, 502, 503, 504, 400, 401):
        assert not should_retry(idempotent=False, attempt=0, status=status), status


@pytest.mark.parametrize(
    "error",
    [
        httpx.ConnectError("refused", request=_REQ),
        httpx.ConnectTimeout("slow connect", request=_REQ),
        httpx.PoolTimeout("pool", request=_REQ),
    ],
)
def test_errors_before_sending_are_retried_even_for_create_call(error: Exception) -> None:
    assert not request_was_sent(error)
    assert should_retry(idempotent=False, attempt=0, error=error)
    assert should_retry(idempotent=True, attempt=0, error=error)


@pytest.mark.parametrize(
    "error",
    [
        httpx.ReadTimeout("no answer", request=_REQ),
        httpx.WriteTimeout("write", request=_REQ),
        httpx.ReadError("reset", request=_REQ),
        httpx.WriteError("broken pipe", request=_REQ),
        httpx.RemoteProtocolError("Server disconnected without sending a response.", request=_REQ),
    ],
)
def test_errors_after_sending_are_never_retried_for_create_call(error: Exception) -> None:
    assert request_was_sent(error)
    assert not should_retry(idempotent=False, attempt=0, error=error)
    assert should_retry(idempotent=True, attempt=0, error=error)


def test_non_transport_errors_are_not_retried() -> None:
    assert not should_retry(idempotent=True, attempt=0, error=ValueError("bug"))
    assert not should_retry(idempotent=True, attempt=0, error=httpx.UnsupportedProtocol("ftp"))
    assert not should_retry(idempotent=True, attempt=0)


def test_retries_stop_at_the_limit() -> None:
    assert should_retry(idempotent=True, attempt=MAX_RETRIES - 1, status=503)
    assert not should_retry(idempotent=True, attempt=MAX_RETRIES, status=503)
    assert not should_retry(idempotent=False, attempt=MAX_RETRIES, status=429)
    assert not should_retry(idempotent=True, attempt=1, status=503, max_retries=1)


def test_parse_retry_after_seconds_and_dates() -> None:
    assert parse_retry_after({"Retry-After": "7"}) == 7.0
    assert parse_retry_after({"retry-after": " 1.5 "}) == 1.5
    assert parse_retry_after(httpx.Headers({"Retry-After": "3"})) == 3.0
    now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert parse_retry_after({"Retry-After": "Fri, 02 Jan 2026 03:04:15 GMT"}, now=now) == 10.0
    assert parse_retry_after({"Retry-After": "Fri, 02 Jan 2026 03:00:00 GMT"}, now=now) == 0.0
    assert parse_retry_after({"Retry-After": "-4"}) == 0.0


@pytest.mark.parametrize("raw", ["", "soon", "nan", "inf"])
def test_parse_retry_after_ignores_junk(raw: str) -> None:
    assert parse_retry_after({"Retry-After": raw}) is None
    assert parse_retry_after({}) is None


def test_backoff_grows_exponentially_and_is_capped() -> None:
    no_jitter = _FixedRng(0.0)
    delays = [backoff_delay(n, rng=no_jitter) for n in range(8)]
    assert delays[:4] == [INITIAL_BACKOFF_S * 2**n for n in range(4)]
    assert max(delays) == MAX_BACKOFF_S
    assert delays == sorted(delays)


def test_backoff_jitter_stays_within_its_fraction() -> None:
    rng = random.Random(42)
    for attempt in range(6):
        base = min(MAX_BACKOFF_S, INITIAL_BACKOFF_S * 2**attempt)
        for _ in range(50):
            delay = backoff_delay(attempt, rng=rng)
            assert base * (1 - JITTER_FRACTION) <= delay <= base
    assert backoff_delay(2, rng=_FixedRng(0.999)) < backoff_delay(2, rng=_FixedRng(0.0))


def test_redact_headers_hides_credentials_only() -> None:
    safe = redact_headers(
        {"Authorization": "Bearer abc.def", "Accept": "application/json", "Cookie": "s=1"}
    )
    assert safe == {"Authorization": "Bearer ***", "Accept": "application/json", "Cookie": "***"}


def test_parse_json_reports_html_with_a_short_excerpt() -> None:
    html = "<html><body>" + "Service unavailable " * 50 + "</body></html>"
    response = httpx.Response(200, text=html, headers={"content-type": "text/html"}, request=_REQ)
    with pytest.raises(ResponseFormatError) as caught:
        parse_json(response)
    text = str(caught.value)
    assert "text/html" in text
    assert "<html><body>Service unavailable" in text
    assert len(text) < 600


def test_parse_json_never_echoes_a_token() -> None:
    body = "debug: Authorization: Bearer eyJsecret.token.value access_token=abc123 not json"
    response = httpx.Response(200, text=body, request=_REQ)
    with pytest.raises(ResponseFormatError) as caught:
        parse_json(response)
    assert "eyJsecret" not in str(caught.value)
    assert "abc123" not in str(caught.value)


def test_parse_json_empty_body_is_none() -> None:
    assert parse_json(httpx.Response(202, content=b"", request=_REQ)) is None
    assert parse_json(httpx.Response(200, json={"id": "x"}, request=_REQ)) == {"id": "x"}


def test_prepared_request_describes_without_secrets() -> None:
    prepared = PreparedRequest(
        method="POST", url="https://x/api", headers={"Authorization": "Bearer ***"}, body={"a": 1}
    )
    assert prepared.to_dict() == {
        "method": "POST",
        "url": "https://x/api",
        "headers": {"Authorization": "Bearer ***"},
        "body": {"a": 1},
    }
