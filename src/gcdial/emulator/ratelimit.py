"""Per-token request limits in fixed windows of real time, with Genesys' headers."""

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from gcdial._shared import (
    RATELIMIT_ALLOWED_HEADER,
    RATELIMIT_COUNT_HEADER,
    RATELIMIT_RESET_HEADER,
    RETRY_AFTER_HEADER,
)

DEFAULT_BUCKET = "default"


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

    def hit(self, key: str, route_name: str | None) -> RateDecision:
        """Count one request by ``key`` to ``route_name`` and decide whether it may proceed."""
        bucket = route_name if route_name in self._buckets else DEFAULT_BUCKET
        limit = self._buckets.get(bucket, self._per_window)
        now = self._clock()
        start, count = self._windows.get((key, bucket), (now, 0))
        if now - start >= self._window_s:
            start, count = now, 0
        reset_s = max(1, math.ceil(start + self._window_s - now))
        if count >= limit:
            self._windows[(key, bucket)] = (start, count)
            return RateDecision(False, count, limit, reset_s)
        self._windows[(key, bucket)] = (start, count + 1)
        return RateDecision(True, count + 1, limit, reset_s)

    def reset(self) -> None:
        """Forget every window."""
        self._windows.clear()
