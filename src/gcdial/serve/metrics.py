"""Prometheus metrics of one service instance, in its own registry (never the global one)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["Metrics"]


class Metrics:
    """Dials by result, verdicts, webhook deliveries, SSE streams, backlog, Genesys budget."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.dials = Counter(
            "gcdial_serve_dials", "Dials by result (status).", ["status"], registry=r
        )
        self.verdicts = Counter(
            "gcdial_serve_verdicts", "Calls over, by outcome.", ["outcome"], registry=r
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
        self.rate_limited = Gauge(
            "gcdial_serve_genesys_429", "429 answers from Genesys so far.", registry=r
        )
        self.budget_left = Gauge(
            "gcdial_serve_genesys_rate_budget_left",
            "Requests left in Genesys' rate window (-1 before the first answer).",
            registry=r,
        )
        self.api_rejected = Counter(
            "gcdial_serve_api_rate_limited", "Requests refused by a key's rate limit.", registry=r
        )
