"""What the bad-input properties share: hypothesis settings and the "clear error" checks."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from hypothesis import HealthCheck, settings

from gcdial.errors import GcdialError

# Deterministic (derandomize, no example database) and quick: the suite runs on every commit.
QUICK = settings(max_examples=150, deadline=None, derandomize=True, database=None)
NETWORK = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def chain(error: BaseException) -> Iterator[BaseException]:
    """The error and everything chained to it (``__cause__``, ``__context__``, ``.cause``)."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [error]
    while todo:
        current = todo.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        cause = getattr(current, "cause", None)
        todo += [current.__cause__, current.__context__]
        if isinstance(cause, BaseException):
            todo.append(cause)


def assert_clear(error: BaseException, *, secrets: Iterable[str] = ()) -> None:
    """A gcdial error with a one-paragraph message that never shows a secret."""
    assert isinstance(error, GcdialError), f"{type(error).__name__}: {error}"
    text = str(error)
    assert text.strip(), "an error without a message"
    assert "Traceback" not in text
    for linked in chain(error):
        shown = f"{linked!s} {linked!r}"
        for secret in secrets:
            assert secret not in shown, f"secret in error text: {shown}"
