"""Genesys ``ErrorBody`` responses and the exception that carries one out of a handler."""

import uuid
from typing import Any

from starlette.responses import JSONResponse

_DEFAULT_CODES = {
    400: (
        "bad.request",
        "The request could not be understood by the server due to malformed syntax.",
    ),
    401: ("bad.credentials", "Invalid login credentials."),
    403: ("missing.permissions", "Unable to perform the requested action."),
    404: ("not.found", "The requested resource was not found."),
    405: ("method.not.allowed", "The requested method is not allowed for this resource."),
    408: ("request.timeout", "The request timed out."),
    409: ("conflict", "The request conflicts with the current state of the resource."),
    # The code Genesys gives a 415 is UNCONFIRMED.
    415: (
        "unsupported.media.type",
        "Unsupported Media Type - Unsupported or incorrect media type.",
    ),
    429: ("too.many.requests", "Rate limit exceeded the maximum."),
    500: ("internal.server.error", "The server encountered an unexpected condition."),
    502: ("bad.gateway", "The server received an invalid response from an upstream server."),
    503: ("service.unavailable", "Service Unavailable - The server is currently unavailable."),
    504: ("gateway.timeout", "The request timed out."),
}


def default_code(status: int) -> tuple[str, str]:
    """The usual Genesys ``code`` and message for an HTTP ``status``."""
    return _DEFAULT_CODES.get(status, ("error", "The request failed."))


class ApiError(Exception):
    """Raised by a handler to answer with an ErrorBody."""

    def __init__(
        self,
        status: int,
        code: str | None = None,
        message: str | None = None,
        *,
        details: list[dict[str, str]] | None = None,
        entity_id: str | None = None,
        entity_name: str | None = None,
        limit: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        usual_code, usual_message = default_code(status)
        super().__init__(message or usual_message)
        self.status = status
        self.code = code or usual_code
        self.message = message or usual_message
        self.details = details or []
        self.entity_id = entity_id
        self.entity_name = entity_name
        self.limit = limit
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        """The ErrorBody JSON, with a fresh ``contextId``."""
        body: dict[str, Any] = {
            "message": self.message,
            "code": self.code,
            "status": self.status,
            "messageWithParams": self.message,
            "messageParams": {},
            "contextId": str(uuid.uuid4()),
            "details": self.details,
            "errors": [],
        }
        if self.entity_id is not None:
            body["entityId"] = self.entity_id
        if self.entity_name is not None:
            body["entityName"] = self.entity_name
        if self.limit is not None:
            body["limit"] = self.limit
        return body

    def response(self) -> JSONResponse:
        """The HTTP response carrying this error."""
        return JSONResponse(self.body(), status_code=self.status, headers=self.headers)


def bad_request(
    message: str, *, field: str | None = None, error_code: str | None = None
) -> ApiError:
    """A 400 ``bad.request`` naming the offending field."""
    details = []
    if field is not None:
        details.append({"errorCode": error_code or "invalid.value", "fieldName": field})
    return ApiError(400, "bad.request", message, details=details)


def not_found(entity: str, entity_id: str) -> ApiError:
    """A 404 ``not.found`` for ``entity`` ``entity_id``."""
    return ApiError(
        404,
        "not.found",
        f"The requested {entity} was not found.",
        entity_id=entity_id,
        entity_name=entity,
    )
