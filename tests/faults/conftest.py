"""Every fault a fault test injects must be served: a fault that never fires tests nothing.

``EmulatorServer.add_fault`` is wrapped for the duration of each test here. When the test ends,
the emulator's fault ledger must show each injected fault acting: all ``count`` times when it was
given a count, at least once otherwise. (Random faults, probability below 1, may rightly miss.)
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from gcdial.emulator import EmulatorServer


@dataclass
class _Injected:
    server: EmulatorServer
    fault_id: str
    spec: dict[str, Any]


@pytest.fixture(autouse=True)
def every_fault_fires(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[_Injected]]:
    """Record each injected fault; after the test, check that each one was served."""
    injected: list[_Injected] = []
    original = EmulatorServer.add_fault

    def add_fault(self: EmulatorServer, **fault: Any) -> str:
        fault_id = original(self, **fault)
        injected.append(_Injected(self, fault_id, fault))
        return fault_id

    monkeypatch.setattr(EmulatorServer, "add_fault", add_fault)
    yield injected
    for fault in injected:
        spec = fault.spec
        if float(spec.get("probability", 1.0)) < 1.0:
            continue
        fired = fault.server.fired(fault.fault_id)
        if spec.get("count") is not None:
            assert fired == spec["count"], f"fired {fired} of {spec['count']} times: {spec}"
        else:
            assert fired >= 1, f"never fired: {spec}"
