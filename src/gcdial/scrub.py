"""The one place that takes secrets out of text: errors, logs, doctor lines, dry runs.

Two things are removed, and nothing else:

- the **known secret values** of this client or process (the client secret, its
  ``Basic base64(id:secret)`` form, issued tokens), wherever they appear;
- **credential-shaped text** a server or library may echo that we never saw: the value after
  ``Bearer``/``Basic`` when it looks like a credential, the value of a credential field
  (``access_token``, ``refresh_token``, ``id_token``, ``client_secret``, ``code_verifier``,
  ``password``) in form, query, JSON or repr syntax, a ``code=`` query parameter, and JWTs.

Ordinary words are never taken for credentials: ``got a token: client credentials`` stays as it
is, because ``token`` is not a credential field and ``client`` is not credential-shaped.
"""

from __future__ import annotations

import base64
import binascii
import re
import threading
from collections.abc import Callable, Iterable
from typing import Final

from gcdial.errors import GcdialError

REDACTED: Final = "***"

MIN_SECRET_CHARS: Final = 6
"""Known values shorter than this are not masked: masking every ``abc`` would eat ordinary text,
and no real client secret or token is that short."""

_MIN_TOKEN_CHARS: Final = 8
_MIN_WORDLIKE_TOKEN_CHARS: Final = 24
_CREDENTIAL_FIELDS: Final = (
    "access_token",
    "refresh_token",
    "id_token",
    "client_secret",
    "code_verifier",
    "password",
)
# A trailing full stop ends the sentence, not the token.
_BEARER = re.compile(r"\b(Bearer)(\s+)([A-Za-z0-9._~+/=-]*[A-Za-z0-9_~+/=-])", re.IGNORECASE)
_BASIC = re.compile(r"\b(Basic)(\s+)([A-Za-z0-9+/]+={0,2})(?![A-Za-z0-9+/=])", re.IGNORECASE)
_FIELD = re.compile(
    r"(?P<key>[\"']?\b(?:" + "|".join(_CREDENTIAL_FIELDS) + r")\b[\"']?\s*[:=]\s*[\"']?)"
    r"(?P<value>[^\"'\s,&;}\]]+)",
    re.IGNORECASE,
)
_CODE_PARAM = re.compile(r"(?P<key>[?&]code=)(?P<value>[^&\s\"'#]+)")
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*")


def _looks_like_token(value: str) -> bool:
    """A credential rather than a word of prose ("Bearer tokens") or a number ("Bearer 405")."""
    if len(value) < _MIN_TOKEN_CHARS:
        return False
    return len(value) >= _MIN_WORDLIKE_TOKEN_CHARS or not value.isalpha()


def _is_basic_credentials(value: str) -> bool:
    """The base64 of ``id:secret``, as in an HTTP Basic header."""
    try:
        decoded = base64.b64decode(value + "=" * (-len(value) % 4), validate=True)
    except (binascii.Error, ValueError):
        return False
    return b":" in decoded


def _scheme(match: re.Match[str], keep: bool) -> str:
    return match.group(0) if keep else f"{match.group(1)}{match.group(2)}{REDACTED}"


def scrub_shapes(text: str) -> str:
    """``text`` with credential-shaped substrings replaced by ``***`` (no known values needed)."""
    text = _BEARER.sub(
        lambda m: _scheme(m, m.group(3) == REDACTED or not _looks_like_token(m.group(3))), text
    )
    text = _BASIC.sub(lambda m: _scheme(m, not _is_basic_credentials(m.group(3))), text)
    text = _FIELD.sub(
        lambda m: m.group(0) if m["value"] == REDACTED else f"{m['key']}{REDACTED}", text
    )
    text = _CODE_PARAM.sub(lambda m: f"{m['key']}{REDACTED}", text)
    return _JWT.sub(REDACTED, text)


def scrub(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` without the given secret values nor anything credential-shaped."""
    for secret in sorted({s for s in secrets if len(s) >= MIN_SECRET_CHARS}, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return scrub_shapes(text)


class Scrubber:
    """Known secret values plus the shapes: call it on any text before it is shown or logged.

    Thread-safe; values are added as they become known (a token as soon as it is issued).
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._lock = threading.Lock()
        self._known: tuple[str, ...] = ()
        self.add(secrets)

    def add(self, secrets: Iterable[str]) -> None:
        """Register values that must never be shown (short ones are ignored, see above)."""
        with self._lock:
            known = set(self._known) | {s for s in secrets if len(s) >= MIN_SECRET_CHARS}
            self._known = tuple(sorted(known, key=len, reverse=True))

    def __call__(self, text: str) -> str:
        """``text`` scrubbed of every registered value and every credential shape."""
        return scrub(text, self._known)


def basic_form(client_id: str, secret: str) -> str:
    """The ``Basic`` header value of a client id and secret, as it could be echoed back."""
    return base64.b64encode(f"{client_id}:{secret}".encode()).decode("ascii")


def redact_error(error: GcdialError, redact: Callable[[str], str]) -> GcdialError:
    """Pass every text an error carries through ``redact`` (in place), and return it.

    Server text quoted in an error (an ErrorBody message, an HTML excerpt) may echo a token back;
    this is the last line of defence that keeps it out of ``str(error)`` and the error's fields.
    """
    for name, value in list(vars(error).items()):
        if isinstance(value, str):
            setattr(error, name, redact(value))
        elif isinstance(value, GcdialError):
            redact_error(value, redact)
        elif isinstance(value, dict | list):
            setattr(error, name, _redact_json(value, redact))
    error.args = tuple(redact(a) if isinstance(a, str) else a for a in error.args)
    return error


def _redact_json(value: object, redact: Callable[[str], str]) -> object:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: _redact_json(v, redact) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact_json(v, redact) for v in value]
    return value


PROCESS: Final = Scrubber()
"""The process-wide scrubber the CLI feeds with its settings' secrets (for logs and messages)."""
