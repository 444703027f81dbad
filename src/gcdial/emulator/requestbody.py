"""Reading JSON request bodies with Genesys-style 400s instead of exceptions."""

import json
from typing import Any

from starlette.requests import Request

from gcdial.emulator.errorbody import ApiError

MALFORMED_MESSAGE = "The request could not be understood by the server due to malformed syntax."


async def read_json(request: Request) -> Any:
    """The parsed JSON body, or a 400 ``bad.request`` ErrorBody when it is missing or malformed."""
    raw = await request.body()
    if not raw.strip():
        raise ApiError(400, "bad.request", "A JSON request body is required.")
    try:
        return json.loads(raw)
    except RecursionError:
        raise ApiError(400, "bad.request", f"{MALFORMED_MESSAGE} JSON nested too deeply.") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        where = (
            f" (line {exc.lineno} column {exc.colno})"
            if isinstance(exc, json.JSONDecodeError)
            else ""
        )
        raise ApiError(400, "bad.request", f"{MALFORMED_MESSAGE} Invalid JSON{where}.") from None
