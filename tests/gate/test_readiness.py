"""The one definition of "ready" (gcdial.readiness): its order, its policy, its setting."""

from __future__ import annotations

import pytest

from gcdial.config import load_settings
from gcdial.errors import ConfigError
from gcdial.readiness import ReadinessPolicy, judge, parse_names


def _judge(policy: ReadinessPolicy | None = None, **state: object) -> tuple[bool, str | None]:
    fields: dict[str, object] = {
        "active": True,
        "state": "active",
        "has_station": True,
        "presence": "AVAILABLE",
        "routing_status": "OFF_QUEUE",
        **state,
    }
    verdict = judge("a@example.com", policy=policy or ReadinessPolicy(), **fields)  # type: ignore[arg-type]
    return verdict.ready, verdict.reason


def test_checks_in_the_order_a_person_fixes_them() -> None:
    assert _judge() == (True, None)
    assert _judge(active=False, has_station=False, presence="BUSY") == (False, "inactive")
    assert _judge(has_station=False, presence="BUSY") == (False, "no_station")
    assert _judge(presence="BUSY", routing_status="INTERACTING") == (False, "presence")
    assert _judge(routing_status="INTERACTING") == (False, "routing_status")
    assert _judge(routing_status="COMMUNICATING") == (False, "routing_status")


@pytest.mark.parametrize(
    "presence", ["Available", "available", "AVAILABLE", "On Queue", "ON_QUEUE"]
)
def test_casing_does_not_matter(presence: str) -> None:
    assert _judge(presence=presence, routing_status="idle") == (True, None)


def test_unknown_presence_is_accepted_with_a_note() -> None:
    verdict = judge(
        "a",
        active=True,
        state="active",
        has_station=True,
        presence=None,
        routing_status=None,
        policy=ReadinessPolicy(),
    )
    assert verdict.ready
    assert verdict.notes


def test_the_policy_is_a_setting() -> None:
    env = {"GCDIAL_READY_PRESENCES": "available, on queue, Busy"}
    env["GCDIAL_READY_ROUTING_STATUSES"] = "any"
    policy = load_settings(environ=env, config_file=None, env_file=None).readiness_policy()
    assert policy.presences == ("AVAILABLE", "ON_QUEUE", "BUSY")
    assert _judge(policy, presence="busy", routing_status="INTERACTING") == (True, None)
    with pytest.raises(ConfigError, match="ready_presences"):
        load_settings(environ={"GCDIAL_READY_PRESENCES": " , "}, config_file=None, env_file=None)


def test_parse_names() -> None:
    assert parse_names("any") == ("any",)
    assert parse_names(["On-Queue", "ON_QUEUE"]) == ("ON_QUEUE",)
    with pytest.raises(ValueError):
        parse_names("")
