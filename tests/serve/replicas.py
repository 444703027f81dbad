"""``gcdial serve`` replicas in this process, each on its own store of one PostgreSQL database,
all against one emulator, with one API key for them all."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

from gcdial.client import AsyncClient
from gcdial.emulator import EmulatorServer
from gcdial.serve.app import create_app
from gcdial.serve.config import ServeConfig
from gcdial.serve.keys import new_api_key
from gcdial.serve.pg_store import PostgresStore
from gcdial.serve.server import ServeServer


@contextlib.contextmanager
def running_replicas(
    emulator: EmulatorServer,
    pg_url: str,
    *,
    count: int,
    config: ServeConfig,
    rate_per_minute: int = 10_000,
) -> Iterator[tuple[list[str], str]]:
    """``count`` replicas started; yields their base URLs and a ``dial,watch`` key's secret."""
    stores = [PostgresStore(pg_url, retry_s=5.0) for _ in range(count)]
    made = new_api_key(
        "crm", now=time.time(), scopes=("dial", "watch"), rate_per_minute=rate_per_minute
    )
    stores[0].add_api_key(made.record)
    servers = []
    try:
        for store in stores:
            app = create_app(
                store,
                lambda: AsyncClient(
                    base_url=emulator.base_url,
                    client_id=emulator.client_id,
                    client_secret=emulator.client_secret,
                ),
                config,
                single_process=False,
            )
            servers.append(ServeServer(app).start())
        yield [s.base_url for s in servers], made.key
    finally:
        for server in servers:
            server.stop()
        for store in stores:
            store.close()
