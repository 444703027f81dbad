"""Bearer-token checks for the Platform API routes."""

from starlette.requests import Request

from gcdial.emulator.errorbody import ApiError
from gcdial.emulator.state import EmulatorState, Token

NOT_A_USER_MESSAGE = (
    "This request requires a user context. "
    "Client credentials cannot be used for requests to this resource."
)


def bearer(request: Request) -> str | None:
    """The bearer token in the Authorization header, if any."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def require_token(request: Request, state: EmulatorState) -> Token:
    """The valid token of ``request``, or a 401 ErrorBody."""
    value = bearer(request)
    if value is None:
        raise ApiError(
            401,
            "authentication.required",
            "No authentication bearer token specified in authorization header.",
        )
    token = state.tokens.get(value)
    if token is None or token.revoked or token.expires_at <= state.clock.now():
        raise ApiError(401, "bad.credentials", "Invalid login credentials.")
    return token


def require_user_token(request: Request, state: EmulatorState) -> Token:
    """A valid token that belongs to a user, or 400 ``not.a.user`` for client credentials."""
    token = require_token(request, state)
    if token.user_id is None:
        raise ApiError(400, "not.a.user", NOT_A_USER_MESSAGE)
    return token
