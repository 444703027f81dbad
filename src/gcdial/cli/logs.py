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


class RedactingFormatter(logging.Formatter):
    """A formatter that replaces known secret values and credential-shaped text with ``***``."""

    def __init__(self, fmt: str, *, secrets: Iterable[str] = ()) -> None:
        super().__init__(fmt)
        self._secrets: list[str] = []
        self.add_secrets(secrets)

    def add_secrets(self, secrets: Iterable[str]) -> None:
        """Also redact these literal values (long enough to be unambiguous)."""
        for secret in secrets:
            if secret and len(secret) >= 4 and secret not in self._secrets:
                self._secrets.append(secret)
        self._secrets.sort(key=len, reverse=True)

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record), self._secrets)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with the given secret values and credential-shaped substrings replaced."""
    for secret in secrets:
        text = text.replace(secret, REDACTED)
    text = _PATTERNS[0].sub(lambda m: f"{m.group(1)} {REDACTED}", text)
    for pattern in _PATTERNS[1:]:
        text = pattern.sub(lambda m: f"{m.group(1)}{REDACTED}", text)
    return text


_formatter: RedactingFormatter | None = None


def setup(*, verbose: bool) -> None:
    """Send gcdial's (and httpx's) logs to stderr: debug detail with ``-v``, warnings otherwise."""
    global _formatter
    handler = logging.StreamHandler(sys.stderr)
    _formatter = RedactingFormatter("%(levelname)s %(name)s: %(message)s")
    handler.setFormatter(_formatter)
    level = logging.DEBUG if verbose else logging.WARNING
    for name in ("gcdial", "httpx"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(level)
        logger.propagate = False


def add_secrets(secrets: Iterable[str]) -> None:
    """Register values (the client secret, tokens) that must never be logged."""
    if _formatter is not None:
        _formatter.add_secrets(secrets)
