"""A page session: a signed cookie naming the API key, and its CSRF token (pure); a widget's
token, the same session bound to a CRM origin; and the cookie of a Genesys sign-in under way.

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
    "PENDING_COOKIE",
    "SECRET_ENV",
    "WIDGET_EXPIRES_HEADER",
    "WIDGET_EXPIRES_STATE",
    "WIDGET_TOKEN_PREFIX",
    "PendingSignIn",
    "Session",
    "csrf_token",
    "load_secret",
    "new_session",
    "read_pending",
    "read_session",
    "read_widget",
    "seal",
    "seal_pending",
    "seal_widget",
]

COOKIE_NAME = "gcdial_page"
PENDING_COOKIE = "gcdial_signin"
WIDGET_TOKEN_PREFIX = "w1."  # noqa: S105 (a marker, not a secret)
# Every answer to a widget token says, in whole seconds, how long it may still place calls (0
# once it is read-only): the widget follows the service's clock, not the browser's, and so asks
# for a sign-in before the next call rather than after a refused one.
WIDGET_EXPIRES_HEADER = "Gcdial-Session-Expires-In"
WIDGET_EXPIRES_STATE = "gcdial_widget_expires_in"  # where the request's scope state carries it
SECRET_ENV = "GCDIAL_PAGE_SECRET"  # noqa: S105 (the name of a variable)
MIN_SECRET_BYTES = 32


@dataclass(frozen=True)
class Session:
    """A signed-in browser: which API key, until when (epoch seconds), and its nonce.

    A widget's session also names the CRM ``origin`` it was given to: its token is refused from
    any other origin.
    """

    key_id: str
    expires_at: float
    nonce: str
    origin: str = ""


@dataclass(frozen=True)
class PendingSignIn:
    """A Genesys sign-in under way, kept in a signed cookie of the sign-in window: the OAuth
    ``state`` it must come back with, the PKCE verifier, and the CRM origin (for a widget)."""

    state: str
    verifier: str
    origin: str
    expires_at: float


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


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _unb64(text: str) -> str | None:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        return None


def seal_widget(session: Session, secret: bytes) -> str:
    """A widget token: the session and its origin, signed (``w1.`` marks it in a Bearer header)."""
    body = f"{session.key_id}.{int(session.expires_at)}.{session.nonce}.{_b64(session.origin)}"
    return f"{WIDGET_TOKEN_PREFIX}{body}.{_mac(secret, 'widget:' + body)}"


def read_widget(value: str, secret: bytes) -> Session | None:
    """The session in a widget token, or None when malformed or forged (not expiry)."""
    if not value.startswith(WIDGET_TOKEN_PREFIX) or len(value) > 1024:
        return None
    parts = value[len(WIDGET_TOKEN_PREFIX) :].split(".")
    if len(parts) != 5:
        return None
    key_id, expires, nonce, origin, mac = parts
    body = f"{key_id}.{expires}.{nonce}.{origin}"
    decoded = _unb64(origin)
    if not hmac.compare_digest(mac, _mac(secret, "widget:" + body)) or not decoded:
        return None
    try:
        return Session(key_id, float(int(expires)), nonce, origin=decoded)
    except ValueError:
        return None


def seal_pending(pending: PendingSignIn, secret: bytes) -> str:
    """The sign-in window's cookie value."""
    body = ".".join(
        (pending.state, pending.verifier, _b64(pending.origin), str(int(pending.expires_at)))
    )
    return f"{body}.{_mac(secret, 'pending:' + body)}"


def read_pending(value: str | None, secret: bytes) -> PendingSignIn | None:
    """The sign-in under way in a cookie value, or None when missing, malformed or forged."""
    if not value or len(value) > 1024:
        return None
    parts = value.split(".")
    if len(parts) != 5:
        return None
    state, verifier, origin, expires, mac = parts
    body = f"{state}.{verifier}.{origin}.{expires}"
    decoded = _unb64(origin) if origin else ""
    if not hmac.compare_digest(mac, _mac(secret, "pending:" + body)) or decoded is None:
        return None
    try:
        return PendingSignIn(state, verifier, decoded, float(int(expires)))
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
