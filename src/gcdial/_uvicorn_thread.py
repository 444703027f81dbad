"""An ASGI app under uvicorn in a background thread: shared by ``gcdial serve`` and the emulator.

Neutral ground: this module imports nothing from gcdial, so the emulator may use it and still
stay an implementation independent of the client side (``tests/emulator/test_boundaries.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Self

import uvicorn

__all__ = ["ThreadedServer", "UvicornThread", "bind"]


def bind(host: str, port: int, *, listen: bool = True) -> tuple[socket.socket, str]:
    """A bound socket and its base URL (port 0 picks a free one); OSError when it cannot.

    ``listen``: start listening now (connections queue until uvicorn accepts them); otherwise
    uvicorn starts listening once it serves.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # An explicit IPPROTO_TCP makes asyncio set TCP_NODELAY on accepted connections; without
    # it every keep-alive response waits ~40 ms for the client's delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        if listen:
            sock.listen(socket.SOMAXCONN)
    except OSError:
        sock.close()
        raise
    shown = f"[{host}]" if family == socket.AF_INET6 else host
    return sock, f"http://{shown}:{sock.getsockname()[1]}"


class UvicornThread:
    """One ``uvicorn.Server`` serving a bound socket from a daemon thread.

    ``failure`` holds what ended the thread early (for the caller's error message); ``loop`` is
    the server's event loop once it runs (to schedule work on it from another thread);
    ``loop_factory`` makes it (None: asyncio's own).
    """

    def __init__(
        self,
        config: uvicorn.Config,
        *,
        name: str,
        loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None,
    ) -> None:
        self.server = uvicorn.Server(config)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.failure: BaseException | None = None
        self._name = name
        self._loop_factory = loop_factory
        self._thread: threading.Thread | None = None

    def start(self, sock: socket.socket, *, timeout_s: float) -> bool:
        """Serve ``sock`` (closed when serving ends); True once started, False if not in time."""
        self._thread = threading.Thread(
            target=self._serve, args=(sock,), name=self._name, daemon=True
        )
        self._thread.start()
        waited = 0.0
        while not self.server.started and self._thread.is_alive() and waited < timeout_s:
            self._thread.join(0.01)
            waited += 0.01
        return bool(self.server.started)

    def _serve(self, sock: socket.socket) -> None:
        try:
            with sock, asyncio.Runner(loop_factory=self._loop_factory) as runner:
                runner.run(self._run(sock))
        except BaseException as exc:  # reported by the caller of start()
            self.failure = exc

    async def _run(self, sock: socket.socket) -> None:
        self.loop = asyncio.get_running_loop()
        await self.server.serve(sockets=[sock])

    def stop(self, timeout_s: float) -> None:
        """Ask the server to exit and wait up to ``timeout_s`` for the thread."""
        self.server.should_exit = True
        if self._thread is not None:
            with contextlib.suppress(RuntimeError):
                self._thread.join(timeout_s)


class ThreadedServer:
    """A server started and stopped around a ``with`` block (``start`` returns the server)."""

    def start(self) -> Self:
        """Start serving; return ``self``."""
        raise NotImplementedError

    def stop(self) -> None:
        """Stop serving."""
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
