"""A page session: a signed cookie naming the API key, and its CSRF token (pure).

The cookie holds ``key id . expiry . nonce`` and an HMAC-SHA256 over them with the page's secret;
never the API key. Each request checks the key again in the store, so revoking it ends every
session at once. The CSRF token is an HMAC of the nonce: the page sends it back in a header on
every action, which a cross-site form cannot do.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "COOKIE_NAME",
    "SECRET_ENV",
    "Session",
    "csrf_token",
    "load_secret",
    "new_session",
    "read_session",
    "seal",
]

COOKIE_NAME = "gcdial_page"
SECRET_ENV = "GCDIAL_PAGE_SECRET"  # noqa: S105 (the name of a variable)
MIN_SECRET_BYTES = 32


@dataclass(frozen=True)
class Session:
    """A signed-in browser: which API key, until when (epoch seconds), and its nonce."""

    key_id: str
    expires_at: float
    nonce: str


def _mac(secret: bytes, text: str) -> str:
    digest = hmac.new(secret, text.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def new_session(key_id: str, *, now: float, lifetime_s: float) -> Session:
    """A fresh session for ``key_id`` that ends ``lifetime_s`` from ``now``."""
    return Session(key_id=key_id, expires_at=now + lifetime_s, nonce=secrets.token_urlsafe(16))


def seal(session: Session, secret: bytes) -> str:
    """The cookie value: the session's fields and their signature."""
    body = f"{session.key_id}.{int(session.expires_at)}.{session.nonce}"
    return f"{body}.{_mac(secret, 'session:' + body)}"


def read_session(value: str | None, secret: bytes) -> Session | None:
    """The session in a cookie value, or None when missing, malformed or forged (not expiry)."""
    if not value or len(value) > 512:
        return None
    parts = value.split(".")
    if len(parts) != 4:
        return None
    key_id, expires, nonce, mac = parts
    body = f"{key_id}.{expires}.{nonce}"
    if not hmac.compare_digest(mac, _mac(secret, "session:" + body)):
        return None
    try:
        return Session(key_id=key_id, expires_at=float(int(expires)), nonce=nonce)
    except ValueError:
        return None


def csrf_token(session: Session, secret: bytes) -> str:
    """The token the page must send in ``X-CSRF-Token`` with every action of this session."""
    return _mac(secret, "csrf:" + session.nonce)


def load_secret(store_path: Path | None, environ: dict[str, str] | None = None) -> bytes:
    """The signing secret: ``$GCDIAL_PAGE_SECRET``, else a file beside the store, else random.

    The file (mode 0600, made once) keeps sessions valid across restarts of one service; replicas
    sharing a PostgreSQL store must share ``$GCDIAL_PAGE_SECRET``. Without either, sessions end
    when the process does.
    """
    env = os.environ if environ is None else environ
    raw = env.get(SECRET_ENV, "").strip()
    if raw:
        if len(raw) < MIN_SECRET_BYTES:
            raise ValueError(f"{SECRET_ENV} must be at least {MIN_SECRET_BYTES} characters")
        return raw.encode()
    if store_path is None:
        return secrets.token_bytes(32)
    path = store_path.with_name(store_path.name + ".page-secret")
    try:
        return bytes.fromhex(path.read_text().strip())
    except (OSError, ValueError):
        pass
    made = secrets.token_bytes(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(made.hex())
    except OSError:
        pass  # a read-only directory: sessions then end with the process
    return made
