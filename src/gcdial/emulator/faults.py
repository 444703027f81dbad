"""Fault injection: which requests fail, slow down, or lose their response, and how often."""

import random
import uuid
from dataclasses import dataclass
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from gcdial.emulator.errorbody import ApiError

FaultRoute = Literal[
    "token",
    "create_call",
    "get_call",
    "patch_call",
    "users",
    "notifications",
    "analytics",
    "routing",
    "any",
]
FaultMode = Literal[
    "status",
    "latency",
    "drop_after_create",
    "hang_after_create",
    "status_after_create",
    "drop_without_create",
    "hang_without_create",
    "status_without_create",
]

# Faults the create-call handler applies itself, once the body is read and valid. The ``after``
# ones create the call first (it proceeds); the ``without`` ones never create it.
ACTED_MODES = frozenset({"drop_after_create", "hang_after_create", "status_after_create"})
NOT_ACTED_MODES = frozenset({"drop_without_create", "hang_without_create", "status_without_create"})
CREATE_MODES = ACTED_MODES | NOT_ACTED_MODES
_STATUS_MODES = frozenset({"status", "status_after_create", "status_without_create"})
_HOLD_MODES = frozenset({"latency", "hang_after_create", "hang_without_create"})

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
    "routing",
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

    def error(self) -> ApiError:
        """The ErrorBody a status fault answers with."""
        assert self.status is not None
        headers = {} if self.retry_after is None else {"Retry-After": str(round(self.retry_after))}
        return ApiError(self.status, self.code, self.message, headers=headers)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.mode in _STATUS_MODES and self.status is None:
            raise ValueError(f"mode {self.mode!r} needs a 'status' between 400 and 599")
        if self.mode not in _STATUS_MODES and self.status is not None:
            raise ValueError(f"'status' does not apply to mode {self.mode!r}")
        if self.mode in CREATE_MODES and self.route != "create_call":
            raise ValueError(f"mode {self.mode!r} only applies to route 'create_call'")
        if self.mode in CREATE_MODES - {"status_without_create"} and self.retry_after is not None:
            raise ValueError(f"'retry_after' does not apply to mode {self.mode!r}")
        if self.mode == "status_after_create" and self.status is not None and self.status < 500:
            raise ValueError(
                "mode 'status_after_create' needs a 5xx 'status': Genesys answers 4xx only "
                "for requests it did not act on"
            )
        if self.seconds and self.mode not in _HOLD_MODES:
            raise ValueError(f"'seconds' does not apply to mode {self.mode!r}")
        return self


@dataclass
class ActiveFault:
    """A fault in force, with how many more times it may fire and how often it has."""

    id: str
    spec: FaultSpec
    remaining: int | None
    fired: int = 0

    def to_json(self) -> dict[str, object]:
        """The admin API's view of this fault."""
        return {
            "id": self.id,
            **self.spec.model_dump(exclude_none=True),
            "remaining": self.remaining,
            "fired": self.fired,
        }


class FaultBook:
    """The faults in force and the ledger of those that fired; draws are reproducible from
    ``seed``.

    A drawn fault spends one use at once (so concurrent requests cannot overdraw ``count``); a
    create-call fault whose request turns out invalid is given back with ``refund``.
    """

    def __init__(self, *, seed: int = 0) -> None:
        self._seed = seed
        self._rng = random.Random(seed)
        self._faults: dict[str, ActiveFault] = {}
        self._spent: dict[str, ActiveFault] = {}
        self.ledger: list[dict[str, object]] = []

    def add(self, spec: FaultSpec) -> str:
        """Put ``spec`` in force and return its id."""
        fault_id = str(uuid.uuid4())
        self._faults[fault_id] = ActiveFault(fault_id, spec, spec.count)
        return fault_id

    def remove(self, fault_id: str) -> bool:
        """Remove one fault; False when no such fault is in force."""
        return self._faults.pop(fault_id, None) is not None

    def clear(self) -> None:
        """Remove every fault and restart the random sequence (the ledger stays)."""
        self._faults.clear()
        self._spent.clear()
        self._rng = random.Random(self._seed)

    def reset(self) -> None:
        """Remove every fault and forget the ledger."""
        self.clear()
        self.ledger.clear()

    def active(self) -> list[ActiveFault]:
        """The faults in force, oldest first."""
        return list(self._faults.values())

    def draw(self, route_name: str | None) -> list[ActiveFault]:
        """The faults that fire for one request to ``route_name``, each spending one use.

        Every latency fault that is drawn applies; the first other fault ends the draw, so a
        fault that could not act on this request keeps its uses for the next one.
        """
        fired: list[ActiveFault] = []
        for fault in list(self._faults.values()):
            spec = fault.spec
            if spec.route != "any" and spec.route != route_name:
                continue
            if self._rng.random() >= spec.probability:
                continue
            fired.append(fault)
            if fault.remaining is not None:
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self._spent[fault.id] = self._faults.pop(fault.id)
            if spec.mode != "latency":
                break
        return fired

    def refund(self, fault: ActiveFault) -> None:
        """Give back the use a drawn fault could not act on."""
        if fault.remaining is None:
            return
        fault.remaining += 1
        if self._spent.pop(fault.id, None) is not None:
            self._faults[fault.id] = fault

    def record(self, fault: ActiveFault, **facts: object) -> None:
        """Write down that ``fault`` acted, with ``facts`` (method, path, time, conversation)."""
        fault.fired += 1
        self.ledger.append(
            {
                "faultId": fault.id,
                "route": fault.spec.route,
                "mode": fault.spec.mode,
                **({"status": fault.spec.status} if fault.spec.status is not None else {}),
                **{k: v for k, v in facts.items() if v is not None},
            }
        )
