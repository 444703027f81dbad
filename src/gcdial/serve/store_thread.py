"""One thread of its own for a store whose calls are serialised anyway (SQLite: one connection
behind one lock).

A pool of threads gains nothing there: its threads only wait on the lock, and a dial's claim
waits behind every event the calls being followed append meanwhile (a convoy on the lock and
the GIL). Here the calls queue in one place instead, and the calls a client is waiting for (a
dial's claim, its rules, its settle: ``urgent``) are taken before the background ones (the
followers' events, audit lines), each in the order it came. A background call already running
is never interrupted, so an urgent call waits for one store call at most.
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from typing import Any

__all__ = ["URGENT", "StoreThread", "urgent"]

#: Whether the store calls made in this context are ones a client waits for.
URGENT: contextvars.ContextVar[bool] = contextvars.ContextVar("gcdial_store_urgent", default=False)


@contextlib.contextmanager
def urgent() -> Iterator[None]:
    """The store calls made inside are taken before the background ones."""
    token = URGENT.set(True)
    try:
        yield
    finally:
        URGENT.reset(token)


_Job = tuple[Future[Any], Callable[[], Any]]


class StoreThread:
    """Runs the calls given to :meth:`submit` one at a time, urgent ones first."""

    def __init__(self, name: str = "gcdial-store") -> None:
        self._urgent: deque[_Job] = deque()
        self._background: deque[_Job] = deque()
        self._ready = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, fn: Callable[[], Any], *, urgent: bool = False) -> Future[Any]:
        """Queue ``fn``; its result (or exception) arrives in the returned future."""
        future: Future[Any] = Future()
        with self._ready:
            if self._closed:
                raise RuntimeError("the store thread is closed")
            (self._urgent if urgent else self._background).append((future, fn))
            self._ready.notify()
        return future

    def close(self) -> None:
        """Stop taking calls; the queued ones still run, then the thread ends."""
        with self._ready:
            self._closed = True
            self._ready.notify()

    def _next(self) -> _Job | None:
        with self._ready:
            while not self._urgent and not self._background:
                if self._closed:
                    return None
                self._ready.wait()
            return (self._urgent or self._background).popleft()

    def _run(self) -> None:
        while (job := self._next()) is not None:
            future, fn = job
            if not future.set_running_or_notify_cancel():
                continue  # its caller gave up waiting before it started
            try:
                result = fn()
            except BaseException as exc:
                future.set_exception(exc)
            else:
                future.set_result(result)
