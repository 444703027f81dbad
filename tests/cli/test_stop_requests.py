"""Stop requests from signals: one event delivered twice is one request."""

from __future__ import annotations

from gcdial.cli.campaign_cmd import SIGNAL_ECHO_S, StopRequests


class FakeMonotonic:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_signals_within_the_echo_window_are_one_request() -> None:
    clock = FakeMonotonic()
    requests = StopRequests(clock)
    assert requests.signal() == 1
    clock.now += 0.001  # the same SIGINT, sent to the process group
    assert requests.signal() == 1
    clock.now += SIGNAL_ECHO_S - 0.01
    assert requests.signal() == 1, "an echo of the echo is still the same event"


def test_a_signal_after_the_echo_window_is_a_second_request() -> None:
    clock = FakeMonotonic()
    requests = StopRequests(clock)
    assert requests.signal() == 1
    clock.now += SIGNAL_ECHO_S + 0.2
    assert requests.signal() == 2
