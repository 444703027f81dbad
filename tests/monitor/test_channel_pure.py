"""The pure parts of the channel and the poller: frames, topics, renewal time, poll backoff."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gcdial.errors import InputError
from gcdial.monitor.channel import (
    conversation_topic,
    parse_frame,
    renew_time,
    user_topic,
)
from gcdial.monitor.polling import PollSettings, conversation_path, next_poll_delay


def test_topics() -> None:
    assert user_topic("u-1") == "v2.users.u-1.conversations.calls"
    assert conversation_topic("c-1") == "v2.conversations.calls.c-1"


def test_call_frame() -> None:
    body = {"id": "c-1", "participants": []}
    frame = parse_frame(json.dumps({"topicName": user_topic("u"), "eventBody": body}))
    assert frame is not None
    assert frame.conversation() == body
    assert not frame.is_heartbeat
    assert not frame.is_closing


def test_heartbeat_and_closing_frames() -> None:
    beat = parse_frame(
        '{"topicName": "channel.metadata", "eventBody": {"message": "WebSocket Heartbeat"}}'
    )
    closing = parse_frame('{"topicName": "v2.system.socket_closing"}')
    assert beat is not None
    assert beat.is_heartbeat
    assert beat.conversation() is None
    assert closing is not None
    assert closing.is_closing


@pytest.mark.parametrize(
    "message",
    [
        "",
        "nope",
        b"\xff\xfe",
        "[]",
        "null",
        '{"eventBody": {}}',
        '{"topicName": "", "eventBody": {}}',
        '{"topicName": "x", "eventBody": [1]}',
    ],
)
def test_garbled_frames_are_none(message: str | bytes) -> None:
    assert parse_frame(message) is None


def test_call_topic_frame_without_an_id_is_not_a_call() -> None:
    frame = parse_frame(json.dumps({"topicName": conversation_topic("c"), "eventBody": {"x": 1}}))
    assert frame is not None
    assert frame.conversation() is None


@given(st.one_of(st.text(), st.binary()))
def test_parse_frame_never_raises(message: str | bytes) -> None:
    parse_frame(message)


T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def test_renew_time() -> None:
    day = T0 + dt.timedelta(hours=24)
    assert renew_time(day, T0, 600) == day - dt.timedelta(seconds=600)
    short = T0 + dt.timedelta(seconds=60)
    assert renew_time(short, T0, 600) == T0 + dt.timedelta(seconds=30)
    assert renew_time(None, T0, 600) is None
    assert renew_time(T0 - dt.timedelta(seconds=1), T0, 600) is None


def test_poll_delay_grows_to_the_cap_and_snaps_back_on_change() -> None:
    settings = PollSettings(initial_s=1.0, factor=2.0, max_s=5.0)
    delays = [1.0]
    for _ in range(4):
        delays.append(next_poll_delay(delays[-1], changed=False, settings=settings))
    assert delays == [1.0, 2.0, 4.0, 5.0, 5.0]
    assert next_poll_delay(5.0, changed=True, settings=settings) == 1.0


def test_conversation_path_quotes_and_refuses_empty() -> None:
    assert conversation_path("c-1") == "/api/v2/conversations/calls/c-1"
    assert conversation_path("a/../b?x") == "/api/v2/conversations/calls/a%2F..%2Fb%3Fx"
    with pytest.raises(InputError, match="conversation id"):
        conversation_path("")
