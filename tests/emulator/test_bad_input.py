"""Malformed requests get the Genesys status and ErrorBody, never the catch-all 500."""

import json
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.routing import Route

from gcdial.emulator import EmulatorConfig, EmulatorServer, create_app

from .helpers import ALICE, api, assert_error

CREATE = f"/api/v2/conversations/calls/user/{ALICE}"


@pytest.mark.parametrize(
    ("content", "code"),
    [
        (b"", "bad.request"),
        (b"{", "bad.request"),
        (b"\xff\xfe\x00", "bad.request"),
        (b"[" * 100_000, "bad.request"),
        (b"[]", "bad.request"),
        (b'"+14155550100"', "bad.request"),
        (b"null", "bad.request"),
        (b"{}", "bad.request"),
        (b'{"phoneNumber": 14155550100}', "bad.request"),
        (b'{"phoneNumber": null}', "bad.request"),
        (b'{"phoneNumber": "+14155550100", "to": "+1"}', "bad.request"),
        (b'{"phoneNumber": "+14155550100", "priority": "high"}', "bad.request"),
        (b'{"phoneNumber": "+14155550100", "attributes": {"a": 1}}', "bad.request"),
        (b'{"phoneNumber": "+14155550100", "attributes": ["a"]}', "bad.request"),
        (b'{"phoneNumber": "+14155550100", "participants": [{"x": 1}]}', "bad.request"),
        (b'{"phoneNumber": "+14155550100", "callerId": "me"}', "bad.request"),
        (b'{"phoneNumber": "4155550100"}', "bad.request"),
        (b'{"phoneNumber": "+1 415 555 0100"}', "bad.request"),
        (b'{"phoneNumber": "+0123456789"}', "bad.request"),
        (b'{"phoneNumber": "+1234"}', "bad.request"),
        (b'{"phoneNumber": "tel:+abc"}', "bad.request"),
        (b'{"callUserId": "33333333-3333-4333-8333-333333333333"}', "bad.request"),
        (
            b'{"phoneNumber": "+14155550100", "callUserId": "x"}',
            "too.many.create.conversation.parameters",
        ),
        (
            b'{"phoneNumber": "+14155550100", "callQueueId": "q", "conversationIds": ["c"]}',
            "too.many.create.conversation.parameters",
        ),
    ],
)
def test_bad_create_bodies(emulator: EmulatorServer, content: bytes, code: str) -> None:
    with api(emulator) as http:
        response = http.post(CREATE, content=content, headers={"Content-Type": "application/json"})
    body = assert_error(response, 400, code)
    assert "Traceback" not in body["message"]
    assert emulator.calls_created() == []
    assert emulator.request_counts()["internalErrors"] == 0


def test_messages_name_the_problem(emulator: EmulatorServer) -> None:
    with api(emulator) as http:
        unknown = http.post(CREATE, json={"phoneNumber": "+14155550100", "toType": "x"}).json()
        number = http.post(CREATE, json={"phoneNumber": "555-0100"}).json()
    assert "toType" in unknown["message"]
    assert unknown["details"] == [{"errorCode": "unrecognized.field", "fieldName": "toType"}]
    assert "E.164" in number["message"]
    assert number["details"][0]["fieldName"] == "phoneNumber"


def test_tel_prefix_is_accepted(emulator: EmulatorServer) -> None:
    with api(emulator) as http:
        assert http.post(CREATE, json={"phoneNumber": "tel:+14155550100"}).status_code == 200
    assert emulator.calls_created()[0]["phoneNumber"] == "+14155550100"


@pytest.mark.parametrize(
    "content",
    [b"", b"{", b"[]", b'{"state": "connected"}', b'{"state": "disconnected", "x": 1}', b"{}"],
)
def test_bad_patch_bodies(emulator: EmulatorServer, content: bytes) -> None:
    with api(emulator) as http:
        call_id = http.post(CREATE, json={"phoneNumber": "+14155550150"}).json()["id"]
        response = http.patch(
            f"/api/v2/conversations/calls/{call_id}",
            content=content,
            headers={"Content-Type": "application/json"},
        )
        assert_error(response, 400, "bad.request")
        participant = http.get(f"/api/v2/conversations/calls/{call_id}").json()["participants"][0]
        response = http.patch(
            f"/api/v2/conversations/calls/{call_id}/participants/{participant['id']}",
            content=content,
            headers={"Content-Type": "application/json"},
        )
        assert_error(response, 400, "bad.request")
        missing = http.patch(
            f"/api/v2/conversations/calls/{call_id}/participants/nope",
            json={"state": "disconnected"},
        )
        assert_error(missing, 404, "not.found")
    assert emulator.request_counts()["internalErrors"] == 0


def test_wrong_method_is_an_error_body(emulator: EmulatorServer) -> None:
    with api(emulator) as http:
        response = http.delete(f"/api/v2/users/{ALICE}")
    assert_error(response, 405, "method.not.allowed")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)
field_names = st.sampled_from(
    ["phoneNumber", "callerId", "callUserId", "attributes", "participants", "priority", "label"]
)


def test_fuzzed_create_bodies_never_hit_the_catch_all(emulator: EmulatorServer) -> None:
    with api(emulator) as http:

        @settings(max_examples=150, deadline=None)
        @given(body=st.dictionaries(field_names | st.text(max_size=8), json_values, max_size=4))
        def check(body: dict[str, Any]) -> None:
            response = http.post(
                CREATE, content=json.dumps(body), headers={"Content-Type": "application/json"}
            )
            assert response.status_code in (200, 400), response.text
            if response.status_code == 400:
                codes = ("bad.request", "too.many.create.conversation.parameters")
                assert response.json()["code"] in codes

        check()
    assert emulator.request_counts()["internalErrors"] == 0


def test_catch_all_turns_a_bug_into_an_error_body(caplog: pytest.LogCaptureFixture) -> None:
    app = create_app(EmulatorConfig(admin=True))

    async def broken(request: Any) -> Any:
        raise RuntimeError("a bug")

    app.router.routes.insert(0, Route("/api/v2/broken", broken))
    with EmulatorServer(app=app) as emu, httpx.Client(base_url=emu.base_url) as http:
        response = http.get("/api/v2/broken")
        counts = emu.request_counts()
    assert_error(response, 500, "internal.server.error")
    assert "a bug" not in response.text
    assert counts["internalErrors"] == 1
    assert "a bug" in caplog.text
