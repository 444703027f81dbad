"""JSON request bodies are UTF-8 and unambiguous, or refused before any route reads them.

Python's ``json.loads`` on bytes guesses UTF-16 and UTF-32, keeps the last of duplicate keys and
reads ``NaN``: a body that two parsers read differently (a proxy or a CRM log keeping the first
``to``, the service the last) is ambiguous, so it is refused with a 400 naming what was wrong.
Multipart uploads and other media types pass untouched.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gcdial.serve.problems import ErrorDetail, problem_body

__all__ = ["BodyProblem", "StrictJson", "check_json_body"]


class BodyProblem(ValueError):
    """Why a JSON body is refused: ``code`` (the error type) and a message naming the place."""

    def __init__(self, code: str, message: str, path: str = "$") -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.path = path


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for name, value in pairs:
        if name in seen:
            raise BodyProblem("duplicate_json_key", f"The key {name!r} appears twice in an object.")
        seen[name] = value
    return seen


def _no_constant(name: str) -> Any:
    raise BodyProblem("malformed_json", f"{name} is not JSON (numbers must be finite).")


def check_json_body(body: bytes, content_type: str | None) -> None:
    """Raise ``BodyProblem`` unless ``body`` is UTF-8 JSON with no duplicate key, no NaN or
    Infinity, and any declared charset is UTF-8."""
    charset = _media_type(content_type)[1].get("charset")
    if charset is not None and charset.replace("_", "-") not in ("utf-8", "utf8"):
        raise BodyProblem(
            "unsupported_charset", f"The body is declared {charset}; send it as UTF-8."
        )
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BodyProblem(
            "not_utf8", f"The body is not UTF-8 (invalid byte at offset {exc.start})."
        ) from None
    try:
        json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise BodyProblem(
            "malformed_json", f"The body is not valid JSON: {exc.msg} at offset {exc.pos}."
        ) from None
    except RecursionError:
        raise BodyProblem("malformed_json", "The body nests too deeply.") from None


def _media_type(content_type: str | None) -> tuple[str, dict[str, str]]:
    """``("application/json", {"charset": "utf-8"})`` from a Content-Type value, lower-cased."""
    kind, *params = (content_type or "").lower().split(";")
    pairs = (param.partition("=") for param in params)
    return kind.strip(), {name.strip(): value.strip().strip('"') for name, _, value in pairs}


def _is_json(content_type: str | None) -> bool:
    """What FastAPI would parse as JSON: no content type, ``application/json`` or ``+json``."""
    kind = _media_type(content_type)[0]
    return (
        not kind
        or kind == "application/json"
        or (kind.startswith("application/") and kind.endswith("+json"))
    )


class StrictJson:
    """ASGI middleware: reads a JSON request's body (under the size limit, which runs first),
    checks it with ``check_json_body``, and replays it to the app, or answers 400."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        content_type = next(
            (v.decode("latin-1") for k, v in scope["headers"] if k == b"content-type"), None
        )
        if not _is_json(content_type):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":
                await self.app(scope, _replay([message], receive), send)  # the client left
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if body:
            try:
                check_json_body(body, content_type)
            except BodyProblem as problem:
                detail = ErrorDetail(
                    type=problem.code,
                    message=problem.message,
                    hint="Send one JSON object, UTF-8 encoded, each key once, with "
                    "Content-Type: application/json.",
                    path=problem.path,
                )
                await JSONResponse(problem_body(detail), 400)(scope, receive, send)
                return
        await self.app(scope, _replay([{"type": "http.request", "body": body}], receive), send)


def _replay(messages: list[Message], then: Receive) -> Receive:
    """``messages`` first, then the client's own (a disconnect, when it leaves)."""
    pending = list(messages)

    async def replay() -> Message:
        if pending:
            return pending.pop(0)
        return await then()

    return replay
