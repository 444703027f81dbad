"""Standard Webhooks signatures: ``v1,`` + base64 HMAC-SHA256 over ``id.timestamp.body``.

The secret is ``whsec_`` + base64 of 32 random bytes; the HMAC key is those bytes. Receivers check
the signature with the same function, reject timestamps older than a few minutes and dedupe by id.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

__all__ = ["SECRET_PREFIX", "new_secret", "sign", "verify"]

SECRET_PREFIX = "whsec_"  # noqa: S105 (a prefix, not a secret)
TOLERANCE_S = 300


def new_secret() -> str:
    """A new endpoint secret."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def _key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header value for one delivery."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def verify(
    secret: str, msg_id: str, timestamp: str, body: bytes, signature_header: str, *, now: float
) -> bool:
    """True when one of the header's signatures matches and the timestamp is fresh."""
    try:
        stamp = int(timestamp)
    except ValueError:
        return False
    if abs(now - stamp) > TOLERANCE_S:
        return False
    expected = sign(secret, msg_id, stamp, body)
    return any(hmac.compare_digest(expected, given) for given in signature_header.split())
