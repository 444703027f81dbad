"""``-v``: debug logging on stderr, with every secret redacted from what is written.

Redaction happens on the finished text of each record (message, arguments and traceback alike),
so a secret cannot slip out through a library's log line or an exception's repr.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable

from gcdial.scrub import PROCESS


class RedactingFormatter(logging.Formatter):
    """A formatter that scrubs this process's secrets and credential shapes from each record."""

    def format(self, record: logging.LogRecord) -> str:
        return scrub(super().format(record))


def scrub(text: str) -> str:
    """``text`` without this run's known secrets or anything shaped like a credential."""
    return PROCESS(text)


def add_secrets(secrets: Iterable[str]) -> None:
    """Register values (the client secret, tokens) that must never be printed or logged."""
    PROCESS.add(secrets)


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
