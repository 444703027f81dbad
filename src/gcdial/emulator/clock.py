"""``SimClock``: simulated time running ``speed`` times faster than real time."""

import asyncio
import contextlib
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta


class SimClock:
    """Maps real monotonic time to simulated seconds; the speed may change while sleepers wait."""

    def __init__(self, speed: float, *, real: Callable[[], float] = time.monotonic) -> None:
        self._real = real
        self._speed = speed
        self._real0 = real()
        self._sim0 = 0.0
        self._epoch = datetime.now(UTC)
        self._changed = asyncio.Event()

    @property
    def speed(self) -> float:
        """Simulated seconds per real second."""
        return self._speed

    def now(self) -> float:
        """Simulated seconds since the emulator started."""
        return self._sim0 + (self._real() - self._real0) * self._speed

    def set_speed(self, speed: float) -> None:
        """Change the acceleration from now on; sleepers recompute their real wait."""
        if speed <= 0:
            raise ValueError("speed must be positive")
        self._sim0 = self.now()
        self._real0 = self._real()
        self._speed = speed
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    def real_seconds(self, sim_seconds: float) -> float:
        """How many real seconds ``sim_seconds`` of simulated time take at the current speed."""
        return sim_seconds / self._speed

    def moment(self, at: float | None = None) -> datetime:
        """The UTC date and time of simulated time ``at`` (default: now)."""
        return self._epoch + timedelta(seconds=self.now() if at is None else at)

    def iso(self, at: float | None = None) -> str:
        """ISO 8601 UTC with milliseconds of simulated time ``at`` (default: now)."""
        return iso_utc(self.moment(at))

    async def sleep(self, sim_seconds: float) -> None:
        """Sleep ``sim_seconds`` of simulated time."""
        await self.sleep_until(self.now() + sim_seconds)

    async def sleep_until(self, deadline: float) -> None:
        """Sleep until simulated time ``deadline``, following speed changes on the way."""
        while (remaining := deadline - self.now()) > 0:
            changed = self._changed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), timeout=remaining / self._speed)


def iso_utc(moment: datetime) -> str:
    """``moment`` as Genesys writes times: ISO 8601 UTC with milliseconds and a ``Z``."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
