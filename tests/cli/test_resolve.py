"""``gcdial resolve`` and the doctor's ladder check, as a user runs them, against the emulator."""

from __future__ import annotations

from gcdial import CallParams, Client
from gcdial.config import Settings
from gcdial.emulator import EmulatorServer
from gcdial.resolve import Attempt

from .helpers import ALICE, ALICE_ID, ANSWERS, Cli

NO_ANALYTICS = {
    "GENESYSCLOUD_OAUTHCLIENT_ID": "sandbox-no-analytics",
    "GENESYSCLOUD_OAUTHCLIENT_SECRET": "sandbox-no-analytics-secret",
}


def _lost_attempt(emulator: EmulatorServer, mode: str, **fault: object) -> Attempt:
    """An attempt whose answer was lost (``resolve=False``: the library leaves it unknown)."""
    emulator.set_analytics(ingestion_delay=0.1)
    emulator.add_fault(route="create_call", mode=mode, count=1, **fault)
    settings = Settings.model_validate(
        {
            "api_base_url": emulator.base_url,
            "client_id": emulator.client_id,
            "client_secret": emulator.client_secret,
        }
    )
    with Client(settings) as client:
        dial = client.dial(ALICE, CallParams(to=ANSWERS), resolve=False)
    assert dial.ambiguity is not None
    return dial.attempt


def _at(attempt: Attempt) -> str:
    moment = attempt.sent_after or attempt.sent_at
    return moment.isoformat()


def test_resolve_by_attempt_id_finds_the_call(cli: Cli, emulator: EmulatorServer) -> None:
    attempt = _lost_attempt(emulator, "drop_after_create")
    (created,) = emulator.calls_created()
    result = cli("resolve", attempt.attempt_id, "--agent", ALICE, "--at", _at(attempt))
    assert result.code == 0, result.err
    assert f"placed: conversation {created['id']}" in result.err


def test_resolve_by_number_and_json(cli: Cli, emulator: EmulatorServer) -> None:
    attempt = _lost_attempt(emulator, "status_after_create", status=504)
    (created,) = emulator.calls_created()
    result = cli("resolve", "--agent", ALICE_ID, "--to", ANSWERS, "--at", _at(attempt), "--json")
    assert result.code == 0, result.err
    data = result.json()
    assert data["verdict"] == "placed"
    assert data["conversationId"] == created["id"]


def test_a_recent_attempt_that_placed_nothing_stays_unknown(
    cli: Cli, emulator: EmulatorServer
) -> None:
    attempt = _lost_attempt(emulator, "drop_without_create")
    result = cli("resolve", attempt.attempt_id, "--agent", ALICE, "--at", _at(attempt))
    assert result.code == 5, result.err
    assert "still unknown" in result.err
    assert emulator.calls_created() == []


def test_resolve_refusals(cli: Cli) -> None:
    missing = cli("resolve", "a-1", "--agent", ALICE)
    assert missing.code == 2
    assert "--at" in missing.err
    bad_time = cli("resolve", "a-1", "--agent", ALICE, "--at", "yesterday")
    assert bad_time.code == 2
    assert "ISO 8601" in bad_time.err
    neither = cli("resolve", "--agent", ALICE, "--at", "2026-11-30T10:00:00Z")
    assert neither.code == 2
    assert "--to" in neither.err


def test_doctor_reports_the_ladder_the_credentials_get(cli: Cli) -> None:
    full = cli("doctor")
    assert full.code == 0, full.err
    assert "✓ resolution ladder: full: live evidence and conversation details" in full.out
    partial = cli("doctor", env=NO_ANALYTICS)
    assert partial.code == 0, partial.err
    assert "resolution ladder: live evidence only" in partial.out
    assert "analytics:conversationDetail:view" in partial.out
