"""``-v``: debug logging on stderr, with every secret redacted from what is written.

Redaction happens on the finished text of each record (message, arguments and traceback alike),
so a secret cannot slip out through a library's log line or an exception's repr.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable

REDACTED = "***"

# Credentials in the shapes they travel in: auth headers, form fields, JSON fields, query strings.
_PATTERNS = [
    re.compile(r"(?i)\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=\-]+"),
    re.compile(
        r"(?i)([\"']?\b(?:access_token|refresh_token|id_token|client_secret|code_verifier|"
        r"password|secret|token)\b[\"']?\s*[:=]\s*[\"']?)[^\"'\s,&}]+"
    ),
    re.compile(r"([?&]code=)[^&\s\"']+"),
]


# Literal secret values of this run (client secret and its Basic form, tokens), longest first.
_known: list[str] = []


class RedactingFormatter(logging.Formatter):
    """A formatter that replaces known secret values and credential-shaped text with ``***``."""

    def format(self, record: logging.LogRecord) -> str:
        return scrub(super().format(record))


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with the given secret values and credential-shaped substrings replaced."""
    for secret in secrets:
        text = text.replace(secret, REDACTED)
    text = _PATTERNS[0].sub(lambda m: f"{m.group(1)} {REDACTED}", text)
    for pattern in _PATTERNS[1:]:
        text = pattern.sub(lambda m: f"{m.group(1)}{REDACTED}", text)
    return text


def scrub(text: str) -> str:
    """``text`` without this run's known secrets or anything shaped like a credential."""
    return redact(text, _known)


def add_secrets(secrets: Iterable[str]) -> None:
    """Register values (the client secret, tokens) that must never be printed or logged."""
    for secret in secrets:
        if secret and len(secret) >= 4 and secret not in _known:
            _known.append(secret)
    _known.sort(key=len, reverse=True)


def setup(*, verbose: bool) -> None:
    """Send gcdial's (and httpx's) logs to stderr: debug detail with ``-v``, warnings otherwise."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(RedactingFormatter("%(levelname)s %(name)s: %(message)s"))
    level = logging.DEBUG if verbose else logging.WARNING
    for name in ("gcdial", "httpx"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(level)
        logger.propagate = False
