"""The campaign runner against the emulator: real HTTP, real WebSocket, real SQLite journal.

Only time is faked: the emulator's accelerated clock for call progress, and (in the rules tests) a
clock for the calling window that moves only when the runner waits.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from campaign_support import (
    DAVE,
    ERIN,
    SPEED,
    FakeClock,
    agent,
    allowed_calls,
    calls_per_number,
    create_requests,
    events_of,
    number,
    write_csv,
    write_fixture,
)

from gcdial.campaign.journal import AttemptState, ContactStatus, Journal, JournalLockedError
from gcdial.campaign.pool import NoUsableAgentError
from gcdial.campaign.progress import CampaignEvent
from gcdial.campaign.runner import CallsRefusedError, CampaignRunner, RunResult, StopReason
from gcdial.campaign.settings import CampaignSettings
from gcdial.client import AsyncClient
from gcdial.config import Settings
from gcdial.emulator import EmulatorServer
from gcdial.http import MAX_RETRY_AFTER_S

ALL_DAY = "00:00-24:00"


@pytest.fixture(scope="module")
def org(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorServer]:
    """One emulator for the module: six agents with stations, dave without, erin inactive."""
    from gcdial.emulator import EmulatorConfig

    fixture = write_fixture(tmp_path_factory.mktemp("org") / "org.json", agents=6)
    with EmulatorServer(EmulatorConfig(speed=SPEED, admin=True, fixture=fixture)) as server:
        yield server


@pytest.fixture
def emu(org: EmulatorServer) -> EmulatorServer:
    org.reset()
    org.set_speed(SPEED)
    return org


@pytest.fixture
async def client(emu: EmulatorServer) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(
        base_url=emu.base_url, client_id=emu.client_id, client_secret=emu.client_secret
    ) as ac:
        yield ac


def settings(csv: Path, agents: list[str], **kw: Any) -> CampaignSettings:
    base: dict[str, Any] = {
        "window": ALL_DAY,
        "retry_no_answer_s": 0,
        "retry_busy_s": 0,
        "max_attempts": 2,
    }
    return CampaignSettings(csv_path=str(csv), agents=tuple(agents), **{**base, **kw})


async def run(
    tmp_path: Path,
    client: AsyncClient,
    config: CampaignSettings,
    events: list[CampaignEvent] | None = None,
    **kw: Any,
) -> RunResult:
    sink = events if events is not None else []
    runner = CampaignRunner(
        config,
        client,
        journal_path=tmp_path / "c.db",
        observer=sink.append,
        progress_interval_s=None,
        **kw,
    )
    return await asyncio.wait_for(runner.run(), timeout=40)


def journal_contacts(tmp_path: Path) -> dict[str, Any]:
    with Journal.open(tmp_path / "c.db", read_only=True) as journal:
        return {c.phone: c for c in journal.contacts.all()}


async def test_end_to_end_every_outcome_with_several_agents(
    tmp_path: Path, emu: EmulatorServer, client: AsyncClient
) -> None:
    outcomes = {
        0: "answered",
        7: "answered",
        55: "no_answer",
        63: "busy",
        71: "invalid_number",
        84: "unreachable",
        91: "agent_no_answer",
        97: "agent_rejected",
    }
    phones = {number("415", last, ex): kind for ex in (1, 2) for last, kind in outcomes.items()}
    rows = [{"phone": p, "name": f"n{i}", "plan": "gold"} for i, p in enumerate(phones)]
    csv = write_csv(tmp_path / "c.csv", rows, ["phone", "name", "plan"])
    events: list[CampaignEvent] = []
    agents = [agent(1), agent(2), agent(3), agent(4), DAVE]

    result = await run(tmp_path, client, settings(csv, agents), events)

    assert result.reason is StopReason.FINISHED, result
    assert result.error is None
    assert [e.agent for e in result.excluded] == [DAVE]
    contacts = journal_contacts(tmp_path)
    assert len(contacts) == len(phones)
    for phone, kind in phones.items():
        assert contacts[phone].status is ContactStatus.DONE
        assert contacts[phone].outcome == kind, phone
    created = calls_per_number(emu)
    for phone, kind in phones.items():
        expected = {"no_answer": 2, "busy": 2, "agent_no_answer": 4, "agent_rejected": 4}
        assert created[phone] == expected.get(kind, 1), phone
    calls = emu.calls_created()
    assert {c["body"].get("attributes", {}).get("plan") for c in calls} == {"gold"}
    # One live call per agent: between an agent's "placed" and that call's outcome, no other.
    live: dict[str, str] = {}
    for event in events:
        if event.kind == "placed":
            assert event.data["agent"] not in live, f"{event.data['agent']} dialed twice at once"
            live[event.data["agent"]] = event.data["phone"]
        elif event.kind == "outcome":
            assert live.pop(event.data["agent"]) == event.data["phone"]
    used = {e.data["agent"] for e in events_of("placed", events)}
    assert used == {agent(1), agent(2), agent(3), agent(4)}
    assert result.status.finished
    assert result.status.attempts == {"ended": sum(created.values())}


async def test_calling_window_dnc_and_end_time_with_a_fake_clock(
    tmp_path: Path, emu: EmulatorServer, client: AsyncClient
) -> None:
    # Monday 2026-03-02 14:00 UTC: 09:00 in New York, 06:00 in Los Angeles, 14:00 in London,
    # 04:00 in Honolulu.
    clock = FakeClock(datetime(2026, 3, 2, 14, 0, tzinfo=UTC))
    ny, la, hi = number("212", 1), number("415", 2), number("808", 3)
    london = number("646", 4)  # a New York number, but the CSV says the customer is in London
    blocked = number("312", 5)
    late_la = number("415", 6)
    rows = [
        {"phone": la},
        {"phone": ny},
        {"phone": london, "timezone": "Europe/London"},
        {"phone": blocked},
        {"phone": hi},
        {"phone": late_la},
    ]
    csv = write_csv(tmp_path / "c.csv", rows, ["phone", "timezone"])
    dnc = tmp_path / "dnc.txt"
    dnc.write_text("# do not call\n(312) 555-0105\nnot a number\n")
    config = settings(
        csv,
        [agent(1), agent(2)],
        window="09:00-17:00",
        dnc_path=str(dnc),
        end="2026-03-02T17:30:00+00:00",
    )
    events: list[CampaignEvent] = []

    result = await run(tmp_path, client, config, events, clock=clock, sleep=clock.sleep)

    assert result.reason is StopReason.ENDED, result
    with Journal.open(tmp_path / "c.db", read_only=True) as journal:
        contacts = {c.phone: c for c in journal.contacts.all()}
        dialed_at = {
            journal.contacts.get(a.contact_id).phone: a.created_at for a in journal.attempts.all()
        }
    # New York and London were open at once; Los Angeles waited for 09:00 Pacific (17:00 UTC).
    assert dialed_at[ny] == datetime(2026, 3, 2, 14, 0, tzinfo=UTC)
    assert dialed_at[london] == datetime(2026, 3, 2, 14, 0, tzinfo=UTC)
    assert dialed_at[la] >= datetime(2026, 3, 2, 17, 0, tzinfo=UTC)
    assert dialed_at[late_la] >= datetime(2026, 3, 2, 17, 0, tzinfo=UTC)
    # Honolulu opens at 19:00 UTC, after the end: left pending for a later run.
    assert hi not in dialed_at
    assert contacts[hi].status is ContactStatus.PENDING
    assert contacts[blocked].status is ContactStatus.SKIPPED
    assert contacts[blocked].outcome == "do_not_call"
    assert set(calls_per_number(emu)) == {ny, london, la, late_la}
    deferred = {e.data["phone"] for e in events_of("deferred", events)}
    assert {la, late_la} <= deferred
    assert ny not in deferred
    assert [e.data["phone"] for e in events_of("after_end", events)] == [hi]
    assert [e.data["line"] for e in events_of("dnc_problem", events)] == [3]


async def test_a_429_storm_pauses_everyone_and_rings_nobody_twice(
    tmp_path: Path, emu: EmulatorServer, client: AsyncClient
) -> None:
    phones = [number("415", last) for last in range(12)]
    csv = write_csv(tmp_path / "c.csv", [{"phone": p} for p in phones], ["phone"])
    emu.add_fault(route="create_call", mode="status", status=429, retry_after=1, count=8)

    started = asyncio.get_running_loop().time()
    result = await run(tmp_path, client, settings(csv, [agent(n) for n in range(1, 6)]))
    elapsed = asyncio.get_running_loop().time() - started

    assert result.reason is StopReason.FINISHED, result
    created = calls_per_number(emu)
    assert sorted(created) == sorted(phones)
    assert set(created.values()) == {1}
    assert client.budget.rate_limited_count >= 1
    assert elapsed >= 1.0  # the Retry-After was honoured
    assert result.status.outcomes == {"answered": 12}


async def test_a_429_asking_for_an_absurd_wait_is_tried_again_not_left_half_dialed(
    tmp_path: Path, emu: EmulatorServer
) -> None:
    # A 429 provably placed nothing, whatever its Retry-After says (here ~31,700 years): the
    # contact must be put back for a later try, not crash the worker with its intent in flight.
    phone = number("415", 1)
    csv = write_csv(tmp_path / "c.csv", [{"phone": phone}], ["phone"])
    emu.add_fault(route="create_call", mode="status", status=429, retry_after=1e12, count=1)
    start = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)
    clock = FakeClock(start)

    async def no_wait(seconds: float) -> None:
        await asyncio.sleep(0)

    async with AsyncClient(
        base_url=emu.base_url,
        client_id=emu.client_id,
        client_secret=emu.client_secret,
        sleep=no_wait,
    ) as quick:
        config = settings(csv, [agent(1)])
        result = await run(tmp_path, quick, config, clock=clock, sleep=clock.sleep)

    assert result.error is None, repr(result.error)
    assert result.reason is StopReason.FINISHED, result
    assert calls_per_number(emu) == {phone: 1}
    assert journal_contacts(tmp_path)[phone].status is ContactStatus.DONE
    with Journal.open(tmp_path / "c.db", read_only=True) as journal:
        first, second = journal.attempts.all()
    assert first.state is AttemptState.NOT_SENT
    assert second.created_at - start <= timedelta(seconds=MAX_RETRY_AFTER_S)


async def test_a_dropped_answer_is_resolved_from_live_evidence_and_never_redialed(
    tmp_path: Path, emu: EmulatorServer, client: AsyncClient
) -> None:
    phones = [number("415", last) for last in (1, 2, 3, 55)]
    csv = write_csv(tmp_path / "c.csv", [{"phone": p} for p in phones], ["phone"])
    emu.add_fault(route="create_call", mode="drop_after_create", count=2)
    config = settings(csv, [agent(1)])
    events: list[CampaignEvent] = []

    first = await run(tmp_path, client, config, events)
    again = await run(tmp_path, client, config)

    # The calls existed: the dialing core found them on the agent's topic (their attempt id),
    # so they were followed to their outcome instead of being left for a person.
    assert first.status.needs_review == 0
    assert again.status.needs_review == 0
    created = calls_per_number(emu)
    for phone in phones:
        assert created[phone] <= allowed_calls(phone, max_attempts=2)
    assert created[phones[0]] == created[phones[1]] == 1
    contacts = journal_contacts(tmp_path)
    assert contacts[phones[0]].outcome == contacts[phones[1]].outcome == "answered"
    # Every attempt carries its tag, in the journal and in the call's attributes.
    with Journal.open(tmp_path / "c.db", read_only=True) as journal:
        tags = {a.tag for a in journal.attempts.all()}
    sent = {c["body"]["attributes"]["gcdialAttemptId"] for c in emu.calls_created()}
    assert None not in tags
    assert sent == tags
    assert not events_of("unknown", events)


@pytest.mark.parametrize(("status", "code"), [(403, "missing.permissions"), (400, "bad.request")])
async def test_the_api_refusing_every_call_stops_the_run_without_burning_the_list(
    tmp_path: Path, emu: EmulatorServer, client: AsyncClient, status: int, code: str
) -> None:
    phones = [number("415", last) for last in range(30)]
    csv = write_csv(tmp_path / "c.csv", [{"phone": p} for p in phones], ["phone"])
    emu.add_fault(route="create_call", mode="status", status=status, code=code)

    result = await run(tmp_path, client, settings(csv, [agent(1), agent(2)], max_refusals=5))

    assert isinstance(result.error, CallsRefusedError)
    assert result.error.code == code
    assert result.reason is StopReason.FAILED
    assert 5 <= create_requests(emu) <= 8
    assert emu.calls_created() == []
    statuses = {c.status for c in journal_contacts(tmp_path).values()}
    assert statuses == {ContactStatus.PENDING}, "refused contacts must stay dialable"


async def test_resume_reconciles_calls_left_in_flight(
    tmp_path: Path, emu: EmulatorServer, client: AsyncClient
) -> None:
    intent_only, accepted, fresh = number("415", 1), number("415", 2), number("415", 3)
    csv = write_csv(
        tmp_path / "c.csv", [{"phone": p} for p in (intent_only, accepted, fresh)], ["phone"]
    )
    config = settings(csv, [agent(1), agent(2)])
    # A first run loads the list, then the process "dies" in two places: once after committing
    # an intent (the POST may or may not have left), once after Genesys accepted a call.
    runner = CampaignRunner(
        config, client, journal_path=tmp_path / "c.db", progress_interval_s=None
    )
    journal, _ = await asyncio.to_thread(runner._open_journal)
    await asyncio.to_thread(runner._load_contacts, journal)
    by_phone = {c.phone: c for c in journal.contacts.all()}
    journal.attempts.begin(by_phone[intent_only].id, agent_id="x", agent="gone@example.com")
    agent1 = await client.agents.get(agent(1))
    attempt = journal.attempts.begin(by_phone[accepted].id, agent_id=agent1.id, agent=agent(1))
    created = await client.calls.create(agent1.id, to=accepted, check_agent=False)
    journal.attempts.mark_accepted(attempt, created.id)
    journal.close()

    events: list[CampaignEvent] = []
    result = await run(tmp_path, client, config, events)

    assert result.resumed
    contacts = journal_contacts(tmp_path)
    assert contacts[intent_only].status is ContactStatus.UNKNOWN
    assert contacts[accepted].status is ContactStatus.DONE
    assert contacts[accepted].outcome == "answered"
    assert contacts[fresh].outcome == "answered"
    created_now = calls_per_number(emu)
    assert created_now == {accepted: 1, fresh: 1}, "nothing was re-dialed"
    assert [e.data["conversation_id"] for e in events_of("reconciling", events)] == [created.id]
    with Journal.open(tmp_path / "c.db", read_only=True) as done:
        assert done.attempts.in_flight() == []
        states = {a.state for a in done.attempts.all()}
    assert states == {AttemptState.UNKNOWN, AttemptState.ENDED}


async def test_a_second_process_on_the_same_journal_is_refused(
    tmp_path: Path, emu: EmulatorServer, client: AsyncClient
) -> None:
    csv = write_csv(tmp_path / "c.csv", [{"phone": number("415", 1)}], ["phone"])
    config = settings(csv, [agent(1)])
    await run(tmp_path, client, config)
    holder = Journal.open(tmp_path / "c.db")
    try:
        with pytest.raises(JournalLockedError, match="in use by another gcdial process"):
            await run(tmp_path, client, config)
    finally:
        holder.close()


async def test_nobody_with_a_station_is_a_clear_error_and_dials_nothing(
    tmp_path: Path, emu: EmulatorServer, client: AsyncClient
) -> None:
    csv = write_csv(tmp_path / "c.csv", [{"phone": number("415", 1)}], ["phone"])
    with pytest.raises(NoUsableAgentError, match="No agent can take calls") as caught:
        await run(tmp_path, client, settings(csv, [DAVE, ERIN, "nobody@example.com"]))
    assert {e.reason for e in caught.value.excluded} == {"no_station", "inactive", "unknown"}
    assert create_requests(emu) == 0


async def test_rows_naming_an_agent_go_to_that_agent_or_wait(
    tmp_path: Path, emu: EmulatorServer, client: AsyncClient
) -> None:
    rows = [{"phone": number("415", n), "agent": agent(2) if n % 2 else ""} for n in range(8)]
    rows.append({"phone": number("415", 9), "agent": DAVE})
    csv = write_csv(tmp_path / "c.csv", rows, ["phone", "agent"])
    events: list[CampaignEvent] = []

    result = await run(tmp_path, client, settings(csv, [agent(1), agent(2), DAVE]), events)

    assert result.reason is StopReason.WAITING_FOR_AGENTS
    assert result.waiting_for == {DAVE: 1}
    placed = {e.data["phone"]: e.data["agent"] for e in events_of("placed", events)}
    for row in rows[:8]:
        if row["agent"]:
            assert placed[row["phone"]] == agent(2)
    assert number("415", 9) not in placed
    assert journal_contacts(tmp_path)[number("415", 9)].status is ContactStatus.PENDING


async def test_stopping_follows_calls_in_progress_to_their_end(
    tmp_path: Path, emu: EmulatorServer, client: AsyncClient
) -> None:
    emu.set_speed(60)
    phones = [number("415", n) for n in range(10)]
    csv = write_csv(tmp_path / "c.csv", [{"phone": p} for p in phones], ["phone"])
    events: list[CampaignEvent] = []
    runner: CampaignRunner | None = None

    def observe(event: CampaignEvent) -> None:
        events.append(event)
        if event.kind == "placed" and runner is not None:
            runner.request_stop()

    runner = CampaignRunner(
        settings(csv, [agent(1), agent(2)]),
        client,
        journal_path=tmp_path / "c.db",
        observer=observe,
        progress_interval_s=None,
    )
    result = await asyncio.wait_for(runner.run(), timeout=30)

    assert result.reason is StopReason.INTERRUPTED
    placed = events_of("placed", events)
    assert 1 <= len(placed) <= 2
    with Journal.open(tmp_path / "c.db", read_only=True) as journal:
        assert journal.attempts.in_flight() == []
        ended = [a for a in journal.attempts.all() if a.state is AttemptState.ENDED]
    assert len(ended) == len(placed)
    assert result.status.contacts["pending"] == len(phones) - len(placed)


async def test_resuming_with_another_list_is_refused(
    tmp_path: Path, emu: EmulatorServer, client: AsyncClient
) -> None:
    from gcdial.campaign.journal import JournalMismatchError

    csv = write_csv(tmp_path / "c.csv", [{"phone": number("415", 1)}], ["phone"])
    await run(tmp_path, client, settings(csv, [agent(1)]))
    csv.write_text("phone\n" + number("415", 2) + "\n")
    with pytest.raises(JournalMismatchError, match="differs"):
        await run(tmp_path, client, settings(csv, [agent(1)]))
    assert calls_per_number(emu) == {number("415", 1): 1}


def test_fake_clock_moves_only_when_slept() -> None:
    clock = FakeClock(datetime(2026, 1, 1, tzinfo=UTC))
    asyncio.run(clock.sleep(90))
    assert clock() == datetime(2026, 1, 1, 0, 1, 30, tzinfo=UTC)
    assert clock() - datetime(2026, 1, 1, tzinfo=UTC) == timedelta(seconds=90)


async def test_until_deferred_stops_and_a_lower_max_attempts_binds_scheduled_retries(
    tmp_path: Path, emu: EmulatorServer, client: AsyncClient
) -> None:
    no_answer, answered = number("415", 55), number("415", 1)
    csv = write_csv(tmp_path / "c.csv", [{"phone": no_answer}, {"phone": answered}], ["phone"])
    first = settings(csv, [agent(1)], max_attempts=3, retry_no_answer_s=3600)
    events: list[CampaignEvent] = []

    result = await run(tmp_path, client, first, events, until_deferred=True)

    assert result.reason is StopReason.DEFERRED, result
    assert calls_per_number(emu) == {no_answer: 1, answered: 1}
    assert journal_contacts(tmp_path)[no_answer].status is ContactStatus.PENDING
    assert len(events_of("deferred_only", events)) == 1

    # The retry is scheduled an hour later; resumed with --max-attempts 1 when it is due, the
    # contact is finished with its last outcome, not dialed again.
    clock = FakeClock(datetime.now(UTC) + timedelta(hours=2))
    lowered = first.with_changes(max_attempts=1)
    result = await run(tmp_path, client, lowered, clock=clock, sleep=clock.sleep)

    assert result.reason is StopReason.FINISHED, result
    assert calls_per_number(emu) == {no_answer: 1, answered: 1}
    contact = journal_contacts(tmp_path)[no_answer]
    assert contact.status is ContactStatus.DONE
    assert contact.outcome == "no_answer"
    assert "limits given at resume" in (contact.detail or "")


def quick_settle_settings(emu: EmulatorServer) -> Settings:
    """Emulator settings whose conversation details settle after 1 s."""
    return Settings.model_validate(
        {
            "api_base_url": emu.base_url,
            "client_id": emu.client_id,
            "client_secret": emu.client_secret,
            "analytics_settle_s": 1.0,
        }
    )


async def test_a_resume_resolves_attempts_left_unknown_by_a_crash(
    tmp_path: Path, emu: EmulatorServer
) -> None:
    placed, never_sent, long_ago = number("415", 11), number("415", 12), number("415", 13)
    csv = write_csv(
        tmp_path / "c.csv", [{"phone": p} for p in (placed, never_sent, long_ago)], ["phone"]
    )
    config = settings(csv, [agent(1)])
    async with AsyncClient(quick_settle_settings(emu)) as client:
        # A run "dies" (kill -9) twice after committing a tagged intent: once after its POST
        # created the call, once before the POST left.
        runner = CampaignRunner(
            config, client, journal_path=tmp_path / "c.db", progress_interval_s=None
        )
        journal, _ = await asyncio.to_thread(runner._open_journal)
        await asyncio.to_thread(runner._load_contacts, journal)
        by_phone = {c.phone: c for c in journal.contacts.all()}
        agent1 = await client.agents.get(agent(1))
        journal.attempts.begin(by_phone[placed].id, agent_id=agent1.id, tag="tag-placed")
        journal.attempts.begin(by_phone[never_sent].id, agent_id=agent1.id, tag="tag-never")
        await client.calls.create(
            agent1.id, to=placed, attributes={"gcdialAttemptId": "tag-placed"}, check_agent=False
        )
        journal.close()
        # And one crashed two hours ago, before its POST left.
        two_hours_ago = datetime.now(UTC) - timedelta(hours=2)
        with Journal.open(tmp_path / "c.db", clock=lambda: two_hours_ago) as old:
            old.attempts.begin(by_phone[long_ago].id, agent_id=agent1.id, tag="tag-long-ago")
        events: list[CampaignEvent] = []

        result = await run(tmp_path, client, config, events, resolve_timeout_s=5.0)

    contacts = journal_contacts(tmp_path)
    # Found by its attempt id in the conversation details: followed to its outcome.
    assert contacts[placed].status is ContactStatus.DONE
    assert contacts[placed].outcome == "answered"
    resolved = {e.data["phone"] for e in events_of("resolved", events)}
    assert resolved == {placed, long_ago}
    # Nothing proves the other was not placed (the channel was not watching when it was sent):
    # it stays for a person, never re-dialed.
    assert contacts[never_sent].status is ContactStatus.UNKNOWN
    # So old that a call it created would show in the conversation details by now: proven not
    # placed, dialed again, without using up an attempt.
    assert contacts[long_ago].outcome == "answered"
    assert contacts[long_ago].attempts == 1
    assert calls_per_number(emu) == {placed: 1, long_ago: 1}
    assert result.status.needs_review == 1
    with Journal.open(tmp_path / "c.db", read_only=True) as done:
        assert done.attempts.in_flight() == []
        assert [e["kind"] for e in done.events.all() if e["kind"] == "attempt.unresolved"]


async def test_a_resume_does_not_take_an_earlier_untagged_call_for_an_unknown_attempt(
    tmp_path: Path, emu: EmulatorServer
) -> None:
    """A call the agent made to the same number before the attempt (outside gcdial), seen in
    conversation details without attributes, must not turn an attempt the server never acted on
    into "placed" when a resume resolves it: the journal keeps the attempt's server-time bounds."""
    phone = number("415", 7, 3)
    csv = write_csv(tmp_path / "c.csv", [{"phone": phone}], ["phone"])
    config = settings(csv, [agent(1)])
    emu.set_analytics(include_attributes=False)
    async with AsyncClient(quick_settle_settings(emu)) as client:
        agent1 = await client.agents.get(agent(1))
        earlier = await client.calls.create(agent1.id, to=phone, check_agent=False)
        await asyncio.sleep(1.0)  # minutes of emulated time: the earlier call is long over
        emu.add_fault(route="create_call", mode="drop_without_create", count=1)
        first = await run(tmp_path, client, config, resolve_timeout_s=0.0)
        assert first.status.needs_review == 1  # left unknown, for the resume to resolve
        events: list[CampaignEvent] = []

        again = await run(tmp_path, client, config, events, resolve_timeout_s=5.0)

    assert [c["id"] for c in emu.calls_created()] == [earlier.id]
    with Journal.open(tmp_path / "c.db", read_only=True) as journal:
        (attempt,) = journal.attempts.all()
        unresolved = [e for e in journal.events.all() if e["kind"] == "attempt.unresolved"]
    assert attempt.match_after is not None
    assert attempt.sent_after is not None
    assert attempt.conversation_id is None
    assert attempt.state is AttemptState.UNKNOWN
    assert unresolved, "the resume must have asked the ladder again"
    assert not events_of("resolved", events)
    assert journal_contacts(tmp_path)[phone].status is ContactStatus.UNKNOWN
    assert again.status.needs_review == 1


async def test_a_resume_proves_an_old_attempt_not_placed_despite_an_earlier_untagged_call(
    tmp_path: Path, emu: EmulatorServer
) -> None:
    """An attempt left unknown so long ago that its call would show by now, with an earlier
    untagged call of the agent to the number in the details: not placed, dialed again."""
    phone = number("415", 7, 4)
    csv = write_csv(tmp_path / "c.csv", [{"phone": phone}], ["phone"])
    config = settings(csv, [agent(1)])
    emu.set_analytics(include_attributes=False)
    async with AsyncClient(quick_settle_settings(emu)) as client:
        runner = CampaignRunner(
            config, client, journal_path=tmp_path / "c.db", progress_interval_s=None
        )
        journal, _ = await asyncio.to_thread(runner._open_journal)
        await asyncio.to_thread(runner._load_contacts, journal)
        (contact,) = journal.contacts.all()
        agent1 = await client.agents.get(agent(1))
        earlier = await client.calls.create(agent1.id, to=phone, check_agent=False)
        await asyncio.sleep(0.5)  # minutes of emulated time
        await client.agents.get(agent1.id)  # the server's clock, as a run would have seen it
        clock = client.transport.server_clock
        journal.close()
        # A run committed the intent two hours ago (by this machine's clock), then died before
        # its POST left.
        two_hours_ago = datetime.now(UTC) - timedelta(hours=2)
        with Journal.open(tmp_path / "c.db", clock=lambda: two_hours_ago) as old:
            old.attempts.begin(
                contact.id,
                agent_id=agent1.id,
                tag="tag-never-sent",
                sent_after=clock.last,
                match_after=clock.passed(5.0),
            )

        result = await run(tmp_path, client, config, resolve_timeout_s=5.0)

    created = emu.calls_created()
    assert len(created) == 2, "proven not placed, so dialed again"
    assert created[0]["id"] == earlier.id
    assert created[1]["body"]["attributes"]["gcdialAttemptId"] != "tag-never-sent"
    done = journal_contacts(tmp_path)[phone]
    assert done.status is ContactStatus.DONE
    assert done.outcome == "answered"
    assert done.attempts == 1  # the attempt never sent did not use one up
    assert result.status.needs_review == 0
