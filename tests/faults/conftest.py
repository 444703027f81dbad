"""Every fault a fault test injects must be served: a fault that never fires tests nothing.

``EmulatorServer.add_fault`` is wrapped for the duration of each test here. When the test ends,
a fault given a ``count`` must be spent (the emulator drops it after its last use), and a fault
without one must have met at least one request of its route after it was injected (with
probability 1, every such request fires it). A test whose trouble missed the call fails.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from gcdial.emulator import EmulatorServer


def _matches(route: str, key: str) -> bool:
    """Whether a request-count key (``"GET /api/v2/..."``) belongs to a fault route name."""
    method, _, path = key.partition(" ")
    if route == "any":
        return path.startswith(("/api/", "/oauth/"))
    if route == "token":
        return path == "/oauth/token"
    if route == "create_call":
        return method == "POST" and path.startswith("/api/v2/conversations/calls")
    if route in ("get_call", "patch_call"):
        wanted = "GET" if route == "get_call" else "PATCH"
        return method == wanted and path.startswith("/api/v2/conversations/calls/{")
    if route == "users":
        return path.startswith("/api/v2/users")
    return route == "notifications" and path.startswith("/api/v2/notifications")


def _requests(server: EmulatorServer, route: str) -> int:
    by_route: dict[str, int] = server.request_counts()["byRoute"]
    return sum(n for key, n in by_route.items() if _matches(route, key))


def _active_ids(server: EmulatorServer) -> set[str]:
    answer = httpx.get(f"{server.base_url}/_emulator/faults", timeout=10)
    return {str(fault["id"]) for fault in answer.json()["faults"]}


@dataclass
class _Injected:
    server: EmulatorServer
    fault_id: str
    spec: dict[str, Any]
    requests_before: int


@pytest.fixture(autouse=True)
def every_fault_fires(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[_Injected]]:
    """Record each injected fault; after the test, check that each one was served."""
    injected: list[_Injected] = []
    original = EmulatorServer.add_fault

    def add_fault(self: EmulatorServer, **fault: Any) -> str:
        before = _requests(self, str(fault.get("route", "any")))
        fault_id = original(self, **fault)
        injected.append(_Injected(self, fault_id, fault, before))
        return fault_id

    monkeypatch.setattr(EmulatorServer, "add_fault", add_fault)
    yield injected
    for fault in injected:
        spec = fault.spec
        if float(spec.get("probability", 1.0)) < 1.0:
            continue  # a random fault may rightly miss; the soak counts those
        if spec.get("count") is not None:
            assert fault.fault_id not in _active_ids(fault.server), f"not all used: {spec}"
        else:
            route = str(spec.get("route", "any"))
            served = _requests(fault.server, route) - fault.requests_before
            assert served >= 1, f"no request met this fault: {spec}"
