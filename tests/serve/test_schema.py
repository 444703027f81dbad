"""schemathesis against the served /openapi.json: no 500, no answer that breaks its own schema.

Both ways in are driven: a Bearer API key, and the page's session (cookie plus CSRF token), over
every operation of the document, the page's own routes (sign-in, sign-out, session, number
preview) included. schemathesis' pytest plugin does not run under this pytest, so the tests drive
the operations' Hypothesis strategies themselves; ``MAX_EXAMPLES`` per operation bounds the time.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from .conftest import Running

MAX_EXAMPLES = 30
ALICE = "alice@example.com"
CHECKS = [status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture(autouse=True)
def _keepalive_pings_off_the_global_random() -> Iterator[None]:
    """websockets draws each keepalive ping's payload from the global ``random``; the service's
    and the emulator's sockets ping from their threads while Hypothesis draws a case here, and
    Hypothesis takes any change of the global state during a draw for a strategy using
    ``random`` (a flaky HypothesisDeprecationWarning). Their pings draw from their own generator."""
    own = random.Random()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(random, "getrandbits", own.getrandbits)
        yield


def test_api_conforms_to_its_served_schema(running: Running) -> None:
    loaded = schemathesis.openapi.from_url(f"{running.base_url}/openapi.json")
    loaded.config.update(base_url=running.base_url)
    # The SSE streams never end by design; their answers are tested in test_events_webhooks.
    operations = []
    for result in loaded.exclude(path_regex=r".*/events$").get_all_operations():
        assert isinstance(result, Ok), result
        operations.append(result.ok())
    assert len(operations) >= 9
    tried: list[str] = []
    seen: list[tuple[str, int]] = []
    for operation in operations:
        _checker(running, operation, seen)()
        tried.append(operation.label)
    assert "POST /v1/calls" in tried
    assert ("POST /v1/calls", 202) in seen
    assert {"POST /page/signin", "GET /page/number", "GET /page/session"} <= set(tried)


def test_the_page_session_surface_conforms_too(running: Running) -> None:
    """The same operations reached as the page reaches them: the session cookie, and the CSRF
    token on actions. Sign-out is driven last, since it ends the session."""
    cookie, csrf = _page_session(running)
    loaded = schemathesis.openapi.from_url(f"{running.base_url}/openapi.json")
    loaded.config.update(base_url=running.base_url)
    operations = []
    for result in loaded.exclude(path_regex=r".*/events$").get_all_operations():
        assert isinstance(result, Ok), result
        operations.append(result.ok())
    operations.sort(key=lambda op: op.label == "POST /page/signout")
    seen: list[tuple[str, int]] = []
    for operation in operations:
        _session_checker(running, operation, cookie, csrf, seen)()
    assert ("GET /v1/calls", 200) in seen
    assert ("GET /page/session", 200) in seen
    assert not [label for label, status in seen if status == 401 and "/page/sign" not in label]


def _page_session(running: Running) -> tuple[str, str]:
    with httpx.Client(base_url=running.base_url) as http:
        signed = http.post("/page/signin", data={"key": running.admin_key})
        assert signed.status_code == 303, signed.text
        found = re.search(r'name="csrf-token" content="([^"]+)"', http.get("/").text)
        assert found is not None
        return http.cookies["gcdial_page"], found.group(1)


def _session_checker(
    running: Running, operation: Any, cookie: str, csrf: str, seen: list[tuple[str, int]]
) -> Any:
    label = operation.label

    @given(case=operation.as_strategy())
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    def check(case: Any) -> None:
        headers = {k: v for k, v in (case.headers or {}).items() if k.lower() != "authorization"}
        case.headers = headers
        response = case.call(headers={"X-CSRF-Token": csrf}, cookies={"gcdial_page": cookie})
        where = f"{case.method} {case.formatted_path}"
        assert response.status_code < 500, f"{where}: {response.status_code} {response.text}"
        case.validate_response(response, checks=CHECKS)
        seen.append((label, response.status_code))

    return check


def _checker(running: Running, operation: Any, seen: list[tuple[str, int]]) -> Any:
    """A Hypothesis test of one operation: every generated request, then a dialable one."""
    label = operation.label

    @given(case=operation.as_strategy())
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    def check(case: Any) -> None:
        key = running.admin_key if case.method in ("GET", "DELETE") else running.key
        bodies = [case.body]
        if label == "POST /v1/calls" and isinstance(case.body, dict):
            # Also a body that can dial, so the 202 answers are checked too.
            bodies.append({"agent": ALICE, "to": "+141555501" + str(len(seen) % 100).zfill(2)})
        for body in bodies:
            case.body = body
            response = case.call(headers=running.headers(key))
            where = f"{case.method} {case.formatted_path}"
            assert response.status_code < 500, f"{where}: {response.status_code} {response.text}"
            case.validate_response(response, checks=CHECKS)
            seen.append((label, response.status_code))

    return check
