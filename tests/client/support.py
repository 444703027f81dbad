"""Helpers for the client tests: fixture agent ids, emulator settings, request counts."""

from __future__ import annotations

from typing import Any

from gcdial.config import Settings
from gcdial.emulator import EmulatorServer

ALICE = "11111111-1111-4111-8111-111111111111"
BOB = "22222222-2222-4222-8222-222222222222"
CAROL = "33333333-3333-4333-8333-333333333333"
DAVE = "44444444-4444-4444-8444-444444444444"
ERIN = "55555555-5555-4555-8555-555555555555"

ON_BEHALF_ROUTE = "POST /api/v2/conversations/calls/user/{userId}"
USER_ROUTE = "POST /api/v2/conversations/calls"
TOKEN_ROUTE = "POST /oauth/token"


def emu_settings(emu: EmulatorServer, **fields: Any) -> Settings:
    """Settings for the emulator with its client credentials, nothing from the environment."""
    values: dict[str, Any] = {
        "api_base_url": emu.base_url,
        "client_id": emu.client_id,
        "client_secret": emu.client_secret,
        **fields,
    }
    return Settings.model_validate(values)


def route_count(emu: EmulatorServer, route: str) -> int:
    """How many requests the emulator saw on ``route`` (e.g. ``POST /oauth/token``)."""
    by_route: dict[str, int] = emu.request_counts()["byRoute"]
    return by_route.get(route, 0)
