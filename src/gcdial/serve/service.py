"""What the API does, apart from HTTP: claim, dial once, record, follow, publish, deliver.

``DialService`` wires the service's parts over their shared core
(:class:`gcdial.serve.service_core.ServiceCore`: the store, the Genesys client and its call
monitor, the event hub): ``dials`` places the API's dials, ``follower`` follows placed calls to
their end, ``recovery`` settles the dials a crash or a dead replica left, ``webhooks`` delivers
the outbox. It starts and stops them together.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from gcdial.client import AsyncClient
from gcdial.serve.config import ServeConfig
from gcdial.serve.dial_recovery import DialRecovery
from gcdial.serve.dials import Dials
from gcdial.serve.following import CallFollower
from gcdial.serve.metrics import Metrics
from gcdial.serve.service_core import ServiceCore
from gcdial.serve.store import Store
from gcdial.serve.webhook_delivery import WebhookDelivery

__all__ = ["DialService"]


class DialService:
    """The service behind the API, its parts wired; ``start()`` in the app's lifespan,
    ``stop()`` at its end."""

    def __init__(
        self,
        store: Store,
        client_factory: Callable[[], AsyncClient],
        config: ServeConfig,
        *,
        metrics: Metrics | None = None,
        clock: Callable[[], float] = time.time,
        single_process: bool = False,
    ) -> None:
        self.core = ServiceCore(
            store,
            client_factory,
            config,
            metrics=metrics,
            clock=clock,
            single_process=single_process,
        )
        self.follower = CallFollower(self.core)
        self.dials = Dials(self.core, self.follower)
        self.recovery = DialRecovery(self.core, self.follower)
        self.webhooks = WebhookDelivery(self.core)

    async def start(self) -> None:
        """Open the client and the monitor, resume following placed calls, start the workers."""
        core = self.core
        core.open()
        self.recovery.open()
        self.webhooks.open()
        await core.listen()
        core.spawn(core.presence.start())  # in the background: Genesys may be slow or down
        await self.recovery.recover(startup=True)
        await self.follower.resume()
        core.start_worker(core.poll_events(), "gcdial-serve-events")
        core.start_worker(self.webhooks.deliver_webhooks(), "gcdial-serve-webhooks")
        core.start_worker(self.recovery.recovery_loop(), "gcdial-serve-recovery")
        if not core.single_process:
            # Another replica may die mid-dial: be the witness its calls' ladder needs.
            core.start_worker(self.recovery.watch_in_flight(), "gcdial-serve-witness")

    async def stop(self) -> None:
        """Stop workers and followers (placed calls are followed again at the next start)."""
        await self.core.stop_tasks()
        self.recovery.close()
        await self.webhooks.close()
        await self.core.close()
