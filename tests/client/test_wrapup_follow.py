"""Following a call through after-call work: ``dial(follow=True, wrapup=True)``, ``calls.wait``,
and the details fallback, against the emulator's queues and wrap-up fixture.

The built-in sandbox picks a queue call's wrap-up by the third digit from the end of the number:
2 callback requested, 3 wrong number, 4 do not call, 5 never arrives, others Sale.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from gcdial.calls import CallParams
from gcdial.client import AsyncClient, Client
from gcdial.emulator import EmulatorServer
from gcdial.monitor import CallMonitor, EventKind, OutcomeKind
from gcdial.monitor.wrapup import WrapupWait

from .support import ALICE, emu_settings, route_count

SALES = "9ee00001-0000-4000-8000-000000000001"
DETAILS_ROUTE = "POST /api/v2/analytics/conversations/details/query"
GET_ROUTE = "GET /api/v2/conversations/calls/{conversationId}"


@pytest.mark.parametrize(
    ("number", "name", "notes"),
    [
        ("+14155550105", "Sale", "Order placed"),
        ("+14155550210", "Callback requested", "Call back at "),
        ("+14155550310", "Wrong number", None),
        ("+14155550410", "Do not call", "Asked not to be called again"),
    ],
)
def test_a_queue_call_followed_with_wrapup_returns_the_agents_wrapup(
    emulator: EmulatorServer, number: str, name: str, notes: str | None
) -> None:
    with Client(emu_settings(emulator)) as client:
        handle = client.dial(
            ALICE, CallParams(to=number, queue=SALES), follow=True, timeout_s=60, wrapup=True
        )
    assert handle.outcome is not None
    wrapup = handle.outcome.wrapup
    assert wrapup is not None
    assert (wrapup.name, wrapup.source) == (name, "live")
    assert (wrapup.notes or "").startswith(notes or "")
    assert wrapup.code is not None
    assert wrapup.code.startswith("c0de")
    assert handle.outcome.to_dict()["wrapup"]["name"] == name
    assert [e.kind for e in handle.events][-1] is EventKind.WRAPUP
    # The emulator's ledger recorded the same wrap-up for this conversation.
    ledger = emulator.wrapups()["wrapups"]
    assert [w["code"] for w in ledger if w["conversationId"] == handle.conversation_id] == [
        wrapup.code
    ]


def test_following_through_wrapup_costs_no_request_when_the_frame_arrives(
    emulator: EmulatorServer,
) -> None:
    with Client(emu_settings(emulator)) as client:
        before = emulator.request_counts()["total"]
        plain = client.dial(ALICE, CallParams(to="+14155550105", queue=SALES), follow=True)
        middle = emulator.request_counts()["total"]
        wrapped = client.dial(
            ALICE, CallParams(to="+14155550105", queue=SALES), follow=True, wrapup=True
        )
        after = emulator.request_counts()["total"]
    assert plain.outcome is not None
    assert plain.outcome.wrapup is None  # not asked: the call's end is the end
    assert wrapped.outcome is not None
    assert wrapped.outcome.wrapup is not None
    # The same requests (token reused), one fewer for the token: waiting adds none.
    assert after - middle <= middle - before


def test_a_call_without_a_queue_is_not_waited_for(emulator: EmulatorServer) -> None:
    with Client(emu_settings(emulator)) as client:
        handle = client.dial(
            ALICE, CallParams(to="+14155550210"), follow=True, wrapup=True, wrapup_timeout_s=600
        )
    assert handle.outcome is not None
    assert handle.outcome.kind is OutcomeKind.ANSWERED
    assert (handle.outcome.wrapup, handle.outcome.wrapup_missing) == (None, False)


def test_the_setting_queue_id_makes_every_dial_an_acd_call(emulator: EmulatorServer) -> None:
    with Client(emu_settings(emulator, queue_id=SALES)) as client:
        handle = client.dial(ALICE, CallParams(to="+14155550410"), follow=True, wrapup=True)
    assert handle.outcome is not None
    assert handle.outcome.wrapup is not None
    assert handle.outcome.wrapup.name == "Do not call"
    assert emulator.calls_created()[-1]["queueId"] == SALES


def test_a_wrapup_that_never_comes_ends_the_wait_after_the_timeout_with_one_get_and_one_query(
    emulator: EmulatorServer,
) -> None:
    with Client(emu_settings(emulator)) as client:
        handle = client.dial(
            ALICE,
            CallParams(to="+14155550510", queue=SALES),
            follow=True,
            wrapup=True,
            wrapup_timeout_s=0.5,
        )
    assert handle.outcome is not None
    assert handle.outcome.kind is OutcomeKind.ANSWERED
    assert handle.outcome.wrapup is None
    assert handle.outcome.wrapup_missing
    assert handle.outcome.to_dict()["wrapupMissing"] is True
    assert route_count(emulator, DETAILS_ROUTE) == 1
    assert emulator.wrapups()["pending"] == 1


async def test_when_the_frame_and_the_get_miss_it_conversation_details_find_the_wrapup(
    emulator: EmulatorServer,
) -> None:
    emulator.set_analytics(ingestion_delay=0)
    async with (
        AsyncClient(emu_settings(emulator)) as client,
        CallMonitor(client.transport) as monitor,
    ):
        await monitor.watch_agent(ALICE)
        handle = await client.dial(
            ALICE, CallParams(to="+14155550410", queue=SALES), monitor=monitor, follow=True
        )
        assert handle.conversation_id is not None
        state = await client.calls.get(handle.conversation_id)
        assert handle.outcome is not None
        await client.calls.wait(handle.conversation_id, wrapup=True, timeout_s=30)
        emulator.add_fault(route="get_call", mode="status", status=404, count=1)
        events = await monitor._wrapup_fallback(
            handle.conversation_id, state.model_dump(by_alias=True, mode="json")
        )
    assert [e.kind for e in events] == [EventKind.WRAPUP]
    found = events[0].wrapup
    assert found is not None
    assert (found.source, found.name, found.notes) == (
        "details",
        "Do not call",
        "Asked not to be called again",
    )


def test_calls_wait_with_wrapup_sees_the_queue_on_the_agents_leg(emulator: EmulatorServer) -> None:
    with Client(emu_settings(emulator)) as client:
        created = client.calls.create(ALICE, to="+14155550310", queue=SALES)
        outcome = client.calls.wait(created.id, agent_id=ALICE, timeout_s=60, wrapup=True)
        quick = client.calls.wait(
            created.id, timeout_s=60, wrapup=WrapupWait(timeout_s=0, acd=True)
        )
    assert outcome.wrapup is not None
    assert outcome.wrapup.name == "Wrong number"
    assert quick.wrapup is not None  # already recorded: no wait needed


def test_the_setting_wrapup_non_acd_waits_on_calls_without_a_queue(
    make_emulator: Callable[..., EmulatorServer],
) -> None:
    # Whether a call placed without a queue carries a wrap-up is UNCONFIRMED: both are settings.
    emulator = make_emulator(non_acd_wrapup=True)
    with Client(emu_settings(emulator)) as client:
        skipped = client.dial(ALICE, CallParams(to="+14155550105"), follow=True, wrapup=True)
    with Client(emu_settings(emulator, wrapup_non_acd=True)) as client:
        waited = client.dial(ALICE, CallParams(to="+14155550105"), follow=True, wrapup=True)
    assert skipped.outcome is not None
    assert skipped.outcome.wrapup is None  # not waited for: it came after the call ended
    assert waited.outcome is not None
    assert waited.outcome.wrapup is not None
    assert waited.outcome.wrapup.name == "Sale"
