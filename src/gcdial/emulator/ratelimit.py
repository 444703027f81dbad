"""Per-token request limits in fixed windows of real time, with Genesys' headers."""

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gcdial._shared import (
    RATELIMIT_ALLOWED_HEADER,
    RATELIMIT_COUNT_HEADER,
    RATELIMIT_RESET_HEADER,
    RETRY_AFTER_HEADER,
)

DEFAULT_BUCKET = "default"
# Closed windows the ledger keeps (the oldest are forgotten first).
LEDGER_WINDOWS = 2000


@dataclass(frozen=True)
class RateDecision:
    """The verdict for one request and the numbers the headers report."""

    allowed: bool
    count: int
    limit: int
    reset_s: int

    def headers(self) -> dict[str, str]:
        """``inin-ratelimit-*`` headers, plus ``Retry-After`` when refused."""
        headers = {
            RATELIMIT_COUNT_HEADER: str(self.count),
            RATELIMIT_ALLOWED_HEADER: str(self.limit),
            RATELIMIT_RESET_HEADER: str(self.reset_s),
        }
        if not self.allowed:
            headers[RETRY_AFTER_HEADER] = str(self.reset_s)
        return headers


class RateLimiter:
    """Counts requests per (token, bucket) in fixed windows of ``window_s`` real seconds.

    A route named in ``buckets`` has its own window and limit; every other route shares the
    ``default`` bucket limited to ``per_window``.
    """

    def __init__(
        self,
        *,
        per_window: int,
        buckets: dict[str, int],
        window_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._per_window = per_window
        self._buckets = dict(buckets)
        self._window_s = window_s
        self._clock = clock
        self._windows: dict[tuple[str, str], tuple[float, int]] = {}
        # Requests refused in each open window, and the windows already closed: the ledger of
        # how fully each window was used (GET /_emulator/ratelimit).
        self._refused: dict[tuple[str, str], int] = {}
        self._closed: deque[dict[str, Any]] = deque(maxlen=LEDGER_WINDOWS)
        self._labels: dict[str, str] = {}

    def hit(self, key: str, route_name: str | None, *, label: str | None = None) -> RateDecision:
        """Count one request by ``key`` to ``route_name`` and decide whether it may proceed;
        ``label`` names the key in the ledger (never the token itself)."""
        bucket = route_name if route_name in self._buckets else DEFAULT_BUCKET
        limit = self._buckets.get(bucket, self._per_window)
        now = self._clock()
        if label is not None:
            self._labels[key] = label
        start, count = self._windows.get((key, bucket), (now, 0))
        if now - start >= self._window_s:
            if count:
                self._close(key, bucket, start, count, limit)
            start, count = now, 0
        reset_s = max(1, math.ceil(start + self._window_s - now))
        if count >= limit:
            self._windows[(key, bucket)] = (start, count)
            self._refused[(key, bucket)] = self._refused.get((key, bucket), 0) + 1
            return RateDecision(False, count, limit, reset_s)
        self._windows[(key, bucket)] = (start, count + 1)
        return RateDecision(True, count + 1, limit, reset_s)

    def _close(self, key: str, bucket: str, start: float, count: int, limit: int) -> None:
        refused = self._refused.pop((key, bucket), 0)
        self._closed.append(self._entry(key, bucket, start, count, limit, refused, closed=True))

    def _entry(
        self, key: str, bucket: str, start: float, count: int, limit: int, refused: int, *,
        closed: bool,
    ) -> dict[str, Any]:  # fmt: skip
        return {
            "key": self._labels.get(key, "anonymous"),
            "bucket": bucket,
            "start": start,
            "end": start + self._window_s,
            "allowed": count,
            "limit": limit,
            "refused": refused,
            "closed": closed,
        }

    def ledger(self) -> list[dict[str, Any]]:
        """Every window seen, oldest first: when it started and ended (this limiter's clock,
        real seconds), requests allowed and refused in it, and whether it has closed."""
        now = self._clock()
        entries = list(self._closed)
        for (key, bucket), (start, count) in self._windows.items():
            limit = self._buckets.get(bucket, self._per_window)
            refused = self._refused.get((key, bucket), 0)
            closed = now - start >= self._window_s
            entries.append(self._entry(key, bucket, start, count, limit, refused, closed=closed))
        return sorted(entries, key=lambda e: (e["start"], e["key"], e["bucket"]))

    def reset(self) -> None:
        """Forget every window."""
        self._windows.clear()
        self._refused.clear()
        self._closed.clear()
