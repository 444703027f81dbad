"""Webhook delivery: the worker that claims the outbox's due deliveries and POSTs each, signed,
to its endpoint (acknowledged, retried on the schedule, or dead), woken by new events.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import httpx

from gcdial.serve.call_views import iso, public_event
from gcdial.serve.service_core import ServiceCore, ServicePart
from gcdial.serve.signing import sign
from gcdial.serve.store import Delivery, WebhookEndpoint
from gcdial.serve.webhook_targets import GENERIC_REFUSAL, TargetRefused, WebhookGuard

__all__ = ["WebhookDelivery"]

logger = logging.getLogger("gcdial.serve")

# The webhook worker looks at the outbox once per burst of events, not once per event.
_WEBHOOK_COALESCE_S = 0.05


class WebhookDelivery(ServicePart):
    """Signed webhooks, from the outbox: ``open()`` at start, ``close()`` at the end."""

    def __init__(self, core: ServiceCore) -> None:
        super().__init__(core)
        self._webhook_http: httpx.AsyncClient | None = None
        self.webhook_guard = WebhookGuard(allow_insecure=core.config.allow_insecure_webhooks)

    def open(self) -> None:
        """The HTTP client that posts them (it refuses internal addresses)."""
        self._webhook_http = self.webhook_guard.client(self.config.webhook_timeout_s)

    async def close(self) -> None:
        """Close the HTTP client."""
        if self._webhook_http is not None:
            await self._webhook_http.aclose()

    async def deliver_webhooks(self) -> None:
        seen = self.hub.last_id
        while True:
            try:
                batch = await self.db(
                    self.store.claim_deliveries,
                    self.config.instance_id,
                    now=self.clock(),
                    lease_s=self.config.webhook_lease_s,
                )
                if batch:
                    await asyncio.gather(*(self._deliver(item) for item in batch))
                    continue
            except Exception as exc:
                logger.warning("webhook delivery pass failed: %s", type(exc).__name__)
            if await self.hub.wait_beyond(seen, self.config.webhook_poll_s):
                await asyncio.sleep(min(_WEBHOOK_COALESCE_S, self.config.webhook_poll_s))
            seen = self.hub.last_id

    async def _deliver(self, delivery: Delivery) -> None:
        assert self._webhook_http is not None
        endpoint = await self.db(self.store.get_webhook, delivery.endpoint_id)
        if endpoint is None:
            await self.db(self.store.ack_delivery, delivery.id, now=self.clock())
            return
        event = delivery.event
        data = public_event(json.loads(event.data))
        error = await self.post_signed(endpoint, f"evt_{event.id}", event.type, event.at, data)
        now = self.clock()
        if error is None:
            await self.db(self.store.ack_delivery, delivery.id, now=now)
            self.metrics.webhooks.labels("delivered").inc()
            return
        schedule = self.config.webhook_schedule
        attempt = delivery.attempts
        retry_at = now + schedule[attempt] if attempt < len(schedule) else None
        await self.db(
            self.store.fail_delivery, delivery.id, next_attempt_at=retry_at, error=error, now=now
        )
        self.metrics.webhooks.labels("retry" if retry_at is not None else "dead").inc()

    async def post_signed(
        self, endpoint: WebhookEndpoint, msg_id: str, type: str, at: float, data: dict[str, Any]
    ) -> str | None:
        """POST one signed message to an endpoint: None when it was accepted (2xx), else why
        not, in words safe to show (never which internal address answered)."""
        assert self._webhook_http is not None
        stamp = int(self.clock())
        payload = json.dumps(
            {"id": msg_id, "type": type, "timestamp": iso(at), "data": data}
        ).encode()
        headers = {
            "content-type": "application/json",
            "webhook-id": msg_id,
            "webhook-timestamp": str(stamp),
            "webhook-signature": sign(endpoint.secret, msg_id, stamp, payload),
            "user-agent": "gcdial-serve",
        }
        try:
            response = await self._webhook_http.post(endpoint.url, content=payload, headers=headers)
        except TargetRefused:
            # Checked again at each delivery (DNS may have changed): one reason for every kind of
            # refused address, so dead letters never tell which internal ports answer.
            return f"refused: {GENERIC_REFUSAL}"
        except httpx.TimeoutException:
            return "timed out"
        except httpx.HTTPError:
            return "connection failed"
        return None if 200 <= response.status_code < 300 else f"HTTP {response.status_code}"
