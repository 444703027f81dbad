"""The refusal streak: how many calls in a row failed, and which contacts to put back."""

import pytest

from gcdial.campaign.decide import AttemptResult, Change, ResultKind
from gcdial.campaign.placer import RefusalStreak
from gcdial.errors import CallsRefusedError, ServerError

REFUSED = Change("not_sent", "refused", "no", trouble=True, in_streak=True)
UNKNOWN = Change("unknown", "unknown", "lost", trouble=True)
PLACED = Change("outcome", "answered", "ok", placed=True)
FATAL = Change("not_sent", "not_sent", "bad credentials", trouble=True, fatal=True)
RESULT = AttemptResult(ResultKind.REFUSED, "the server said no")


@pytest.mark.parametrize(
    ("changes", "stops_at", "contacts"),
    [
        ([REFUSED, REFUSED, REFUSED], 2, [0, 1, 2]),
        ([REFUSED, UNKNOWN, REFUSED], 2, [0, 2]),
        ([REFUSED, REFUSED, PLACED, REFUSED, REFUSED], None, [3, 4]),
        ([REFUSED, PLACED, REFUSED, REFUSED, REFUSED], 4, [2, 3, 4]),
        ([REFUSED, FATAL, REFUSED], None, [0, 2]),
        ([FATAL, FATAL, FATAL, FATAL], None, []),
    ],
    ids=["three-refused", "unknown-counts", "placed-resets", "after-a-placed", "fatal", "fatals"],
)
def test_the_streak_stops_the_run_at_its_limit(
    changes: list[Change], stops_at: int | None, contacts: list[int]
) -> None:
    streak = RefusalStreak(3)
    errors = [streak.record(change, contact, RESULT) for contact, change in enumerate(changes)]
    stopped = [i for i, error in enumerate(errors) if error is not None]
    assert stopped == ([] if stops_at is None else [stops_at])
    assert streak.contacts == contacts


def test_the_error_names_the_count_and_the_last_refusal() -> None:
    streak = RefusalStreak(2)
    last = ServerError("busy", status=503, code="service.unavailable")
    assert streak.record(REFUSED, 1, RESULT) is None
    error = streak.record(REFUSED, 2, AttemptResult(ResultKind.REFUSED, "busy", error=last))
    assert isinstance(error, CallsRefusedError)
    assert error.count == 2
    assert error.code == "service.unavailable"
