"""Prometheus metrics of one service instance, in its own registry (never the global one)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["Metrics"]


class Metrics:
    """What one instance counts; each metric named for what it counts, the Prometheus way.

    Counters end in ``_total``, a duration in ``_seconds``; a gauge is a level that goes up and
    down (streams open, deliveries waiting). Renamed in 0.x: ``gcdial_serve_verdicts_total``
    counted calls over by outcome (now ``gcdial_serve_calls_ended_total``; the review verdicts
    people record are ``gcdial_serve_review_verdicts_total``), ``gcdial_serve_genesys_429`` was a
    gauge of a count (now the counter ``gcdial_serve_genesys_rate_limited_responses_total``),
    ``gcdial_serve_genesys_rate_budget_left`` is ``gcdial_serve_genesys_rate_budget_remaining``
    and ``gcdial_serve_api_rate_limited_total`` is ``gcdial_serve_api_requests_rate_limited_total``.
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.dials = Counter(
            "gcdial_serve_dials", "Dials by result (status).", ["status"], registry=r
        )
        self.calls_ended = Counter(
            "gcdial_serve_calls_ended",
            "Calls followed to their end, by outcome (answered, busy, ...).",
            ["outcome"],
            registry=r,
        )
        self.review_verdicts = Counter(
            "gcdial_serve_review_verdicts",
            "Verdicts people recorded on calls or campaign attempts of unknown outcome.",
            ["subject", "verdict"],
            registry=r,
        )
        self.dial_seconds = Histogram(
            "gcdial_serve_dial_seconds", "Time to place a call (create-call answered).", registry=r
        )
        self.webhooks = Counter(
            "gcdial_serve_webhook_deliveries", "Webhook attempts by result.", ["result"], registry=r
        )
        self.sse_streams = Gauge("gcdial_serve_sse_streams", "Open SSE streams.", registry=r)
        self.webhook_backlog = Gauge(
            "gcdial_serve_webhook_backlog", "Webhook deliveries pending.", registry=r
        )
        self._rate_limited = Counter(
            "gcdial_serve_genesys_rate_limited_responses",
            "429 answers from Genesys Cloud.",
            registry=r,
        )
        self._rate_limited_seen = 0
        self.budget_remaining = Gauge(
            "gcdial_serve_genesys_rate_budget_remaining",
            "Requests left in Genesys' rate window (-1 before the first answer).",
            registry=r,
        )
        self.api_rejected = Counter(
            "gcdial_serve_api_requests_rate_limited",
            "Requests refused by a key's rate limit.",
            registry=r,
        )

    def observe_rate_limited(self, count: int) -> None:
        """Follow the client's running count of 429s (a counter only ever goes up)."""
        if count > self._rate_limited_seen:
            self._rate_limited.inc(count - self._rate_limited_seen)
            self._rate_limited_seen = count
