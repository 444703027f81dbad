"""The SQLite store's own thread: urgent calls first, each kind in order, errors passed on."""

from __future__ import annotations

import functools
import threading

import pytest

from gcdial.serve.store_thread import StoreThread


def test_urgent_calls_overtake_queued_background_calls_and_errors_reach_the_caller() -> None:
    thread = StoreThread()
    gate = threading.Event()
    ran: list[str] = []
    blocker = thread.submit(gate.wait)  # holds the thread while the others queue
    background = [thread.submit(functools.partial(ran.append, f"bg{n}")) for n in range(3)]
    urgent = [thread.submit(functools.partial(ran.append, f"u{n}"), urgent=True) for n in range(2)]
    cancelled = thread.submit(lambda: ran.append("never"))
    assert cancelled.cancel()
    failing = thread.submit(lambda: 1 / 0, urgent=True)
    gate.set()
    assert blocker.result(timeout=5) is True
    for future in [*background, *urgent]:
        future.result(timeout=5)
    with pytest.raises(ZeroDivisionError):
        failing.result(timeout=5)
    assert ran == ["u0", "u1", "bg0", "bg1", "bg2"]
    thread.close()
    with pytest.raises(RuntimeError):
        thread.submit(lambda: None)
