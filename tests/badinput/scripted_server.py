"""A real loopback HTTP server whose answers a test scripts: any status, headers and body bytes.

The token endpoint answers a valid token unless the test scripts it; every other route answers
what the test put in :attr:`ScriptedServer.replies` for its kind (``token``, ``create``,
``get_call``, ``users``). Each answer closes the connection, so a malformed one cannot spill into
the next request.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Literal

ISSUED_TOKEN = "tok-scripted-Q2hlY2tNZQ-77e1"
Mode = Literal["normal", "truncate", "close"]


class Reply:
    """One scripted answer. ``truncate`` promises more bytes than it sends; ``close`` sends none.

    A plain class with a short ``repr``: hypothesis prints failing examples, and a body may be
    megabytes long.
    """

    __slots__ = ("body", "headers", "mode", "status")

    def __init__(
        self,
        status: int = 200,
        headers: tuple[tuple[str, str], ...] = (("Content-Type", "application/json"),),
        body: bytes = b"{}",
        mode: Mode = "normal",
    ) -> None:
        self.status = status
        self.headers = headers
        self.body = body
        self.mode = mode

    def __repr__(self) -> str:
        shown = self.body[:60] + (b"..." if len(self.body) > 60 else b"")
        return (
            f"Reply({self.status}, {self.headers!r}, {shown!r} ({len(self.body)} bytes), "
            f"{self.mode})"
        )


TOKEN_REPLY = Reply(
    body=json.dumps(
        {"access_token": ISSUED_TOKEN, "token_type": "bearer", "expires_in": 86399}
    ).encode()
)


def kind_of(method: str, path: str) -> str:
    """Which scripted route a request belongs to."""
    path = path.split("?", 1)[0]
    if path == "/oauth/token":
        return "token"
    if method == "POST" and path.startswith("/api/v2/conversations/calls"):
        return "create"
    if path.startswith("/api/v2/conversations/calls/"):
        return "get_call"
    if path.startswith("/api/v2/users"):
        return "users"
    return "other"


@dataclass
class ScriptedServer:
    """The server's script and what it saw; replace ``replies`` between examples."""

    base_url: str = ""
    replies: dict[str, Reply] = field(default_factory=dict)
    seen: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def script(self, **replies: Reply) -> None:
        """Answer each named kind with its reply from now on; forget what was seen."""
        with self.lock:
            self.replies = {"token": TOKEN_REPLY, **replies}
            self.seen = Counter()

    def reply_for(self, kind: str) -> Reply:
        with self.lock:
            self.seen[kind] += 1
            return self.replies.get(kind, Reply(status=404, body=b'{"code": "not.found"}'))


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        reply = self.server.script.reply_for(kind_of(self.command, self.path))
        self.close_connection = True
        if reply.mode == "close":
            return
        self.send_response_only(reply.status)
        for name, value in reply.headers:
            self.send_header(name, value)
        promised = len(reply.body) + (1000 if reply.mode == "truncate" else 0)
        self.send_header("Content-Length", str(promised))
        self.send_header("Connection", "close")
        self.end_headers()
        # The client may give up on a huge body: that is its right.
        with contextlib.suppress(OSError):
            self.wfile.write(reply.body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _answer

    def log_message(self, format: str, *args: object) -> None:
        return


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, script: ScriptedServer) -> None:
        self.script = script
        super().__init__(("127.0.0.1", 0), _Handler)


def serve() -> Iterator[ScriptedServer]:
    """Run a scripted server on 127.0.0.1 (a free port) until the generator is closed."""
    script = ScriptedServer()
    server = _Server(script)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    script.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield script
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
