"""Fault injection: which requests fail, slow down, or lose their response, and how often."""

import random
import uuid
from dataclasses import dataclass
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

FaultRoute = Literal[
    "token", "create_call", "get_call", "patch_call", "users", "notifications", "analytics", "any"
]
FaultMode = Literal["status", "latency", "drop_after_create", "hang_after_create"]

# Route names the emulator gives its endpoints; faults and rate-limit buckets refer to them.
ROUTE_NAMES: tuple[str, ...] = (
    "token",
    "authorize",
    "create_call",
    "get_call",
    "patch_call",
    "users",
    "notifications",
    "analytics",
)


class FaultSpec(BaseModel):
    """One fault as the admin API and ``EmulatorConfig.faults`` accept it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    route: FaultRoute
    mode: FaultMode
    status: int | None = Field(default=None, ge=400, le=599)
    code: str | None = None
    message: str | None = None
    retry_after: float | None = Field(default=None, ge=0)
    seconds: float = Field(default=0.0, ge=0, le=3600)
    probability: float = Field(default=1.0, ge=0, le=1)
    count: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.mode == "status" and self.status is None:
            raise ValueError("mode 'status' needs a 'status' between 400 and 599")
        if self.mode != "status" and self.status is not None:
            raise ValueError(f"'status' only applies to mode 'status', not {self.mode!r}")
        if self.mode in ("drop_after_create", "hang_after_create") and self.route != "create_call":
            raise ValueError(f"mode {self.mode!r} only applies to route 'create_call'")
        return self


@dataclass
class ActiveFault:
    """A fault in force, with how many more times it may fire."""

    id: str
    spec: FaultSpec
    remaining: int | None

    def to_json(self) -> dict[str, object]:
        """The admin API's view of this fault."""
        return {
            "id": self.id,
            **self.spec.model_dump(exclude_none=True),
            "remaining": self.remaining,
        }


class FaultBook:
    """The faults in force; draws are reproducible from ``seed``."""

    def __init__(self, *, seed: int = 0) -> None:
        self._seed = seed
        self._rng = random.Random(seed)
        self._faults: dict[str, ActiveFault] = {}

    def add(self, spec: FaultSpec) -> str:
        """Put ``spec`` in force and return its id."""
        fault_id = str(uuid.uuid4())
        self._faults[fault_id] = ActiveFault(fault_id, spec, spec.count)
        return fault_id

    def remove(self, fault_id: str) -> bool:
        """Remove one fault; False when no such fault exists."""
        return self._faults.pop(fault_id, None) is not None

    def clear(self) -> None:
        """Remove every fault and restart the random sequence."""
        self._faults.clear()
        self._rng = random.Random(self._seed)

    def active(self) -> list[ActiveFault]:
        """The faults in force, oldest first."""
        return list(self._faults.values())

    def draw(self, route_name: str | None) -> list[FaultSpec]:
        """The faults that fire for one request to ``route_name``, each spending one use.

        Every latency fault that is drawn applies; the first other fault ends the draw, so a
        fault that could not act on this request keeps its uses for the next one.
        """
        fired: list[FaultSpec] = []
        for fault in list(self._faults.values()):
            spec = fault.spec
            if spec.route != "any" and spec.route != route_name:
                continue
            if self._rng.random() >= spec.probability:
                continue
            fired.append(spec)
            if fault.remaining is not None:
                fault.remaining -= 1
                if fault.remaining <= 0:
                    del self._faults[fault.id]
            if spec.mode != "latency":
                break
        return fired
