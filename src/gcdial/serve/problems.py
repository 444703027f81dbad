"""The one JSON error shape of the API, and the exception that carries it.

Every error answer is ``{"error": {"type", "message", "hint", "path", "errors"}}``: ``path`` is the
JSON path of the offending part of the body (``$.to``) or the header/query name, ``errors`` lists
each problem when there are several.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

__all__ = ["ApiProblem", "ErrorBody", "ErrorDetail", "ErrorItem", "json_path", "problem_body"]


class ErrorItem(BaseModel):
    """One problem of a request: where, and what."""

    path: str | None = None
    message: str


class ErrorDetail(BaseModel):
    """What went wrong, where, and how to fix it."""

    model_config = ConfigDict(extra="forbid")

    type: str
    message: str
    hint: str | None = None
    path: str | None = None
    errors: list[ErrorItem] = []


class ErrorBody(BaseModel):
    """The error shape of every non-2xx answer."""

    error: ErrorDetail


class ApiProblem(Exception):
    """Raise to answer with the error shape; ``headers`` go on the answer (Retry-After...)."""

    def __init__(
        self,
        status: int,
        type: str,
        message: str,
        *,
        hint: str | None = None,
        path: str | None = None,
        errors: list[ErrorItem] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.detail = ErrorDetail(
            type=type, message=message, hint=hint, path=path, errors=errors or []
        )
        self.headers = headers or {}


def json_path(loc: tuple[Any, ...] | list[Any]) -> str:
    """``("body", "attributes", "x")`` as ``$.attributes.x``; header/query locations by name."""
    parts = list(loc)
    if parts and parts[0] in ("header", "query", "path", "cookie") and len(parts) > 1:
        return f"{parts[0]}:{parts[1]}"
    if parts and parts[0] == "body":
        parts = parts[1:]
    path = "$"
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def problem_body(detail: ErrorDetail) -> dict[str, Any]:
    """The JSON of an error answer."""
    return ErrorBody(error=detail).model_dump(mode="json")
