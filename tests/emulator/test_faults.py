"""Every fault mode, over real HTTP, and the admin API that manages them."""

import time
from typing import Any

import httpx
import pytest

from gcdial.emulator import EmulatorConfig, EmulatorServer
from gcdial.emulator.faults import FaultSpec

from .helpers import ALICE, DAVE, api, assert_error, client_token, wait_for

CREATE = f"/api/v2/conversations/calls/user/{ALICE}"
BODY = {"phoneNumber": "+14155550170"}


def test_status_fault_answers_before_the_call_is_created(emulator: EmulatorServer) -> None:
    emulator.add_fault(route="create_call", mode="status", status=503, count=1)
    with api(emulator) as http:
        assert_error(http.post(CREATE, json=BODY), 503, "service.unavailable")
        assert emulator.calls_created() == []
        assert http.post(CREATE, json=BODY).status_code == 200
    assert len(emulator.calls_created()) == 1


def test_status_fault_with_code_and_retry_after(emulator: EmulatorServer) -> None:
    emulator.add_fault(
        route="get_call", mode="status", status=429, code="too.many.requests", retry_after=7
    )
    with api(emulator) as http:
        response = http.get(f"/api/v2/conversations/calls/{ALICE}")
    assert_error(response, 429, "too.many.requests")
    assert response.headers["Retry-After"] == "7"


def test_status_fault_on_any_route_and_on_the_token(emulator: EmulatorServer) -> None:
    token = client_token(emulator)
    emulator.add_fault(route="token", mode="status", status=500)
    with httpx.Client(base_url=emulator.base_url) as http:
        response = http.post(
            "/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=(emulator.client_id, emulator.client_secret),
        )
    assert_error(response, 500, "internal.server.error")
    emulator.clear_faults()
    emulator.add_fault(route="any", mode="status", status=403, code="missing.permissions")
    with api(emulator, token) as http:
        assert_error(http.get(f"/api/v2/users/{ALICE}"), 403, "missing.permissions")
        assert_error(http.post("/api/v2/notifications/channels"), 403, "missing.permissions")
    assert emulator.request_counts()["internalErrors"] == 0


def test_probability_is_a_share_and_reproducible(make_emulator: Any) -> None:
    outcomes = []
    for _ in range(2):
        emu = make_emulator(seed=7)
        emu.add_fault(route="users", mode="status", status=502, probability=0.5)
        with api(emu) as http:
            outcomes.append([http.get(f"/api/v2/users/{ALICE}").status_code for _ in range(30)])
    assert outcomes[0] == outcomes[1]
    assert 5 < outcomes[0].count(502) < 25
    assert set(outcomes[0]) == {200, 502}


def test_latency_fault_delays_the_answer(emulator: EmulatorServer) -> None:
    emulator.add_fault(route="users", mode="latency", seconds=0.3, count=1)
    with api(emulator) as http:
        started = time.monotonic()
        assert http.get(f"/api/v2/users/{ALICE}").status_code == 200
        slow = time.monotonic() - started
        started = time.monotonic()
        http.get(f"/api/v2/users/{ALICE}")
        fast = time.monotonic() - started
    assert slow >= 0.3
    assert fast < 0.3


def test_drop_after_create_cuts_the_response_but_creates_the_call(
    emulator: EmulatorServer,
) -> None:
    emulator.add_fault(route="create_call", mode="drop_after_create", count=1)
    with api(emulator) as http, pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        http.post(CREATE, json=BODY)
    [call] = emulator.calls_created()
    assert call["phoneNumber"] == "+14155550170"
    with api(emulator) as http:
        assert http.post(CREATE, json=BODY).status_code == 200
    assert len(emulator.calls_created()) == 2


def test_hang_after_create_withholds_the_response(emulator: EmulatorServer) -> None:
    emulator.add_fault(route="create_call", mode="hang_after_create", seconds=30, count=1)
    with api(emulator) as http:
        with pytest.raises(httpx.ReadTimeout):
            http.post(CREATE, json=BODY, timeout=0.3)
        assert len(emulator.calls_created()) == 1
        assert http.get(f"/api/v2/users/{ALICE}").status_code == 200


def test_hang_after_create_answers_late(emulator: EmulatorServer) -> None:
    emulator.add_fault(route="create_call", mode="hang_after_create", seconds=0.2)
    with api(emulator) as http:
        started = time.monotonic()
        response = http.post(CREATE, json=BODY)
    assert response.status_code == 200
    assert time.monotonic() - started >= 0.2


def test_admin_lists_and_removes_faults(emulator: EmulatorServer) -> None:
    first = emulator.add_fault(route="users", mode="status", status=500)
    emulator.add_fault(route="get_call", mode="latency", seconds=1, count=3)
    with httpx.Client(base_url=emulator.base_url) as http:
        listed = http.get("/_emulator/faults").json()["faults"]
        assert [f["route"] for f in listed] == ["users", "get_call"]
        assert listed[1]["remaining"] == 3
        emulator.remove_fault(first)
        assert len(http.get("/_emulator/faults").json()["faults"]) == 1
        assert_error(http.delete(f"/_emulator/faults/{first}"), 404, "not.found")
        emulator.clear_faults()
        assert http.get("/_emulator/faults").json() == {"faults": []}


@pytest.mark.parametrize(
    "fault",
    [
        {"route": "get_call", "mode": "drop_after_create"},
        {"route": "any", "mode": "hang_after_create"},
        {"route": "users", "mode": "status"},
        {"route": "users", "mode": "status", "status": 200},
        {"route": "users", "mode": "latency", "status": 500},
        {"route": "nowhere", "mode": "status", "status": 500},
        {"route": "users", "mode": "explode"},
        {"route": "users", "mode": "status", "status": 500, "probability": 2},
        {"route": "users", "mode": "status", "status": 500, "colour": "red"},
    ],
)
def test_invalid_faults_are_rejected(emulator: EmulatorServer, fault: dict[str, Any]) -> None:
    with httpx.Client(base_url=emulator.base_url) as http:
        response = http.post("/_emulator/faults", json=fault)
        assert_error(response, 400, "bad.request")
        assert_error(http.post("/_emulator/faults", content=b"{"), 400, "bad.request")
    assert emulator.request_counts()["internalErrors"] == 0


def test_faults_configured_at_start(make_emulator: Any) -> None:
    config = EmulatorConfig(
        speed=50.0,
        admin=True,
        faults=(FaultSpec(route="users", mode="status", status=504, count=1),),
    )
    emu = make_emulator(config)
    with api(emu) as http:
        assert_error(http.get(f"/api/v2/users/{ALICE}"), 504, "gateway.timeout")
        assert http.get(f"/api/v2/users/{ALICE}").status_code == 200


def test_admin_api_is_off_by_default(make_emulator: Any) -> None:
    emu = make_emulator(admin=False)
    with httpx.Client(base_url=emu.base_url) as http:
        assert_error(http.get("/_emulator/calls"), 404, "not.found")
        assert_error(http.post("/_emulator/reset"), 404, "not.found")


# The two truths of an ambiguous create: the call exists (acted) or it does not (not acted),
# while the client sees the same kinds of failure.
ACTED = [
    ({"mode": "drop_after_create"}, (httpx.RemoteProtocolError, httpx.ReadError)),
    ({"mode": "hang_after_create", "seconds": 30}, httpx.ReadTimeout),
    ({"mode": "status_after_create", "status": 503}, 503),
    ({"mode": "status_after_create", "status": 504}, 504),
    ({"mode": "status_after_create", "status": 500}, 500),
]
NOT_ACTED = [
    ({"mode": "drop_without_create"}, (httpx.RemoteProtocolError, httpx.ReadError)),
    ({"mode": "hang_without_create", "seconds": 30}, httpx.ReadTimeout),
    ({"mode": "status_without_create", "status": 503}, 503),
    ({"mode": "status_without_create", "status": 502}, 502),
]


def _ambiguous_create(http: httpx.Client, expected: Any) -> None:
    """One create that must fail the way ``expected`` says (an exception type or a status)."""
    if isinstance(expected, int):
        response = http.post(CREATE, json=BODY, timeout=5)
        assert response.status_code == expected, response.text
        assert response.json()["status"] == expected
    else:
        with pytest.raises(expected):
            http.post(CREATE, json=BODY, timeout=0.3)


@pytest.mark.parametrize(("fault", "expected"), ACTED)
def test_acted_then_failed_creates_the_call_and_records_it(
    emulator: EmulatorServer, fault: dict[str, Any], expected: Any
) -> None:
    fault_id = emulator.add_fault(route="create_call", count=1, **fault)
    with api(emulator) as http:
        _ambiguous_create(http, expected)
        [call] = emulator.calls_created()
        [entry] = emulator.fault_ledger()
        assert entry["faultId"] == fault_id
        assert entry["mode"] == fault["mode"]
        assert entry["conversationId"] == call["id"]
        assert entry["path"] == CREATE
        assert emulator.fired(fault_id) == 1
        # The call goes on: the agent answers and the customer leg is dialed.
        emulator.set_speed(1000)
        got = wait_for(
            lambda: (
                len(http.get(f"/api/v2/conversations/calls/{call['id']}").json()["participants"])
                == 2
            )
        )
        assert got
        assert http.post(CREATE, json=BODY).status_code == 200
    assert len(emulator.calls_created()) == 2
    assert emulator.request_counts()["internalErrors"] == 0


@pytest.mark.parametrize(("fault", "expected"), NOT_ACTED)
def test_failed_without_acting_reads_the_body_and_creates_nothing(
    emulator: EmulatorServer, fault: dict[str, Any], expected: Any
) -> None:
    fault_id = emulator.add_fault(route="create_call", count=1, **fault)
    with api(emulator) as http:
        _ambiguous_create(http, expected)
        assert emulator.calls_created() == []
        [entry] = emulator.fault_ledger()
        assert entry["faultId"] == fault_id
        assert "conversationId" not in entry
        assert emulator.fired(fault_id) == 1
        assert http.post(CREATE, json=BODY).status_code == 200
    assert len(emulator.calls_created()) == 1
    assert emulator.request_counts()["internalErrors"] == 0


def test_a_withheld_create_that_was_not_acted_on_answers_504_late(
    emulator: EmulatorServer,
) -> None:
    emulator.add_fault(route="create_call", mode="hang_without_create", seconds=0.2)
    with api(emulator) as http:
        started = time.monotonic()
        response = http.post(CREATE, json=BODY)
    assert time.monotonic() - started >= 0.2
    assert_error(response, 504, "gateway.timeout")
    assert emulator.calls_created() == []


def test_count_means_the_next_n_valid_creates(emulator: EmulatorServer) -> None:
    fault_id = emulator.add_fault(
        route="create_call", mode="status_after_create", status=502, count=2
    )
    with api(emulator) as http:
        # Refused requests do not use the fault up: it waits for a create it can act on.
        assert_error(http.post(CREATE, json={"phoneNumber": "12"}), 400, "bad.request")
        assert_error(
            http.post("/api/v2/conversations/calls/user/" + DAVE, json=BODY),
            400,
            "conversation.error.no.user.station",
        )
        assert emulator.fired(fault_id) == 0
        listed = httpx.get(emulator.base_url + "/_emulator/faults").json()["faults"]
        assert [(f["remaining"], f["fired"]) for f in listed] == [(2, 0)]
        codes = [http.post(CREATE, json=BODY).status_code for _ in range(3)]
    assert codes == [502, 502, 200]
    assert emulator.fired(fault_id) == 2
    assert len(emulator.calls_created()) == 3
    assert [e["conversationId"] for e in emulator.fault_ledger()] == [
        c["id"] for c in emulator.calls_created()[:2]
    ]
    with httpx.Client(base_url=emulator.base_url) as http:
        assert http.get("/_emulator/faults").json() == {"faults": []}


def test_every_fault_kind_is_in_the_ledger_until_reset(emulator: EmulatorServer) -> None:
    slow = emulator.add_fault(route="users", mode="latency", seconds=0.01, count=1)
    failing = emulator.add_fault(route="users", mode="status", status=500, count=1)
    with api(emulator) as http:
        assert_error(http.get(f"/api/v2/users/{ALICE}"), 500, "internal.server.error")
        assert http.get(f"/api/v2/users/{ALICE}").status_code == 200
    assert [(e["faultId"], e["mode"]) for e in emulator.fault_ledger()] == [
        (slow, "latency"),
        (failing, "status"),
    ]
    assert emulator.fault_ledger()[1]["status"] == 500
    emulator.clear_faults()
    assert len(emulator.fault_ledger()) == 2
    emulator.reset()
    assert emulator.fault_ledger() == []


@pytest.mark.parametrize(
    "fault",
    [
        {"route": "create_call", "mode": "status_after_create", "status": 429},
        {"route": "create_call", "mode": "status_after_create"},
        {"route": "users", "mode": "drop_without_create"},
        {"route": "create_call", "mode": "drop_without_create", "seconds": 3},
        {"route": "create_call", "mode": "hang_after_create", "retry_after": 3},
        {"route": "create_call", "mode": "status", "status": 503, "seconds": 1},
    ],
)
def test_inconsistent_ambiguous_faults_are_rejected(
    emulator: EmulatorServer, fault: dict[str, Any]
) -> None:
    with httpx.Client(base_url=emulator.base_url) as http:
        body = assert_error(http.post("/_emulator/faults", json=fault), 400, "bad.request")
    assert body["message"]
