"""What every request pays before its handler: no hop to a worker thread for a dependency that
only fetches a part of the app (FastAPI runs a plain ``def`` dependency or handler in one)."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fastapi.dependencies.models import Dependant

from gcdial.serve.app import create_app
from gcdial.serve.config import ServeConfig
from gcdial.serve.sqlite_store import SqliteStore

# Parsing an uploaded file is real work: it belongs off the event loop.
OFF_THE_LOOP = {"campaign_form"}


def _routes(routes: list[Any]) -> Iterator[Any]:
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from _routes(included.routes)
        elif getattr(route, "dependant", None) is not None:
            yield route


def _blocking(dependant: Dependant) -> Iterator[str]:
    call = dependant.call
    if call is not None:
        method = call if inspect.isfunction(call) else getattr(call, "__call__", call)  # noqa: B004
        if not (inspect.iscoroutinefunction(method) or inspect.isasyncgenfunction(method)):
            yield getattr(call, "__name__", type(call).__name__)
    for sub in dependant.dependencies:
        yield from _blocking(sub)


def test_no_route_runs_a_dependency_in_a_worker_thread(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "serve.sqlite3")
    try:
        app = create_app(store, lambda: None, ServeConfig(campaigns_dir=str(tmp_path)))  # type: ignore[arg-type,return-value]
        found = {
            f"{sorted(route.methods)[0]} {route.path}": sorted(set(_blocking(route.dependant)))
            for route in _routes(app.router.routes)
        }
        assert len(found) > 30  # every router was walked
        assert "POST /v1/calls" in found
        slow = {where: names for where, names in found.items() if set(names) - OFF_THE_LOOP}
        assert slow == {}
    finally:
        store.close()
