"""Run the service under uvicorn: in the foreground (the CLI) or in a thread (tests, bench)."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import threading
from types import TracebackType
from typing import Any, Self

import uvicorn

__all__ = ["ServeServer", "bind", "is_loopback", "uvicorn_config"]

START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 10.0


def is_loopback(host: str) -> bool:
    """``localhost`` or a loopback IP address."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def bind(host: str, port: int) -> tuple[socket.socket, str]:
    """A listening socket and its base URL (port 0 picks a free one); OSError when it cannot."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP: asyncio then sets TCP_NODELAY on each connection (no delayed-ACK stalls).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(socket.SOMAXCONN)
    except OSError:
        sock.close()
        raise
    shown = f"[{host}]" if family == socket.AF_INET6 else host
    return sock, f"http://{shown}:{sock.getsockname()[1]}"


def uvicorn_config(app: Any) -> uvicorn.Config:
    """The uvicorn settings of the service: no access log (paths only, still quieter)."""
    return uvicorn.Config(
        app,
        http="h11",
        lifespan="on",
        log_config=None,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=3,
        limit_concurrency=5000,
    )


class ServeServer:
    """The app served from a background thread on ``host:port`` (0: a free port)."""

    def __init__(self, app: Any, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app = app
        self._host = host
        self._port = port
        self.base_url = ""
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._failure: BaseException | None = None

    def start(self) -> Self:
        """Bind, serve in a thread, and wait until the app's start-up is done."""
        sock, self.base_url = bind(self._host, self._port)
        server = uvicorn.Server(uvicorn_config(self.app))
        self._server = server
        self._thread = threading.Thread(
            target=self._serve, args=(sock,), name="gcdial-serve", daemon=True
        )
        self._thread.start()
        waited = 0.0
        while not server.started and self._thread.is_alive() and waited < START_TIMEOUT_S:
            self._thread.join(0.01)
            waited += 0.01
        if not server.started:
            self.stop()
            raise RuntimeError(f"gcdial serve did not start: {self._failure!r}")
        return self

    def _serve(self, sock: socket.socket) -> None:
        assert self._server is not None
        try:
            with sock:
                asyncio.run(self._server.serve(sockets=[sock]))
        except BaseException as exc:  # reported by start()
            self._failure = exc

    def stop(self) -> None:
        """Stop serving and join the thread."""
        if self._server is None or self._thread is None:
            return
        self._server.should_exit = True
        with contextlib.suppress(RuntimeError):
            self._thread.join(STOP_TIMEOUT_S)
        self._server = None
        self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
