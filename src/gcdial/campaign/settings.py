"""A campaign's settings: what the command line gave, stored in the journal for ``resume``.

Everything here is plain data (paths, numbers, strings) so that it round-trips through JSON;
:meth:`CampaignSettings.rules` turns it into the :class:`~gcdial.campaign.rules.Rules` objects
(reading the do-not-call file) when a run starts.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

from gcdial._shared import DEFAULT_WRAPUP_TIMEOUT_S
from gcdial.campaign.csvinput import InputFileError, decoded_lines
from gcdial.campaign.rules import CallingWindow, DoNotCallList, RetryPolicy, Rules, UnknownZone
from gcdial.campaign.wrapup_rules import WrapupRules, rules_summary
from gcdial.errors import InputError

__all__ = [
    "DEFAULT_BUSY_DELAY",
    "DEFAULT_NO_ANSWER_DELAY",
    "MAX_DURATION",
    "CampaignSettings",
    "default_journal_path",
    "format_duration",
    "parse_agents",
    "parse_duration",
    "parse_end_time",
    "read_agents_file",
]

DEFAULT_NO_ANSWER_DELAY: Final = timedelta(hours=1)
DEFAULT_BUSY_DELAY: Final = timedelta(minutes=10)
MAX_DURATION: Final = timedelta(days=366)
"""The longest delay any duration setting takes: longer is surely a typo (and past
``timedelta``'s range, an overflow)."""
_DURATION: Final = re.compile(r"(\d+(?:\.\d+)?)\s*(h|m|s|ms)?", re.IGNORECASE)
_UNITS: Final = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001, "": 1.0}


def parse_duration(text: str, *, option: str = "duration") -> timedelta:
    """Read ``90s``, ``30m``, ``1h``, ``1h30m`` or a bare number of seconds."""
    raw = text.strip().lower()
    hint = f"Write {option} like 30s, 10m, 1h or 1h30m."
    if not raw:
        raise InputError(f"{option} is empty.", hint=hint)
    total = 0.0
    pos = 0
    for match in _DURATION.finditer(raw):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNITS[(match.group(2) or "").lower()]
        pos = match.end()
        while pos < len(raw) and raw[pos] == " ":
            pos += 1
    if pos != len(raw):
        raise InputError(f"Cannot read {option} {text!r}.", hint=hint)
    if not total <= MAX_DURATION.total_seconds():
        raise InputError(
            f"{option} {text!r} is longer than the limit of {MAX_DURATION.days} days.",
            hint=hint,
        )
    return timedelta(seconds=total)


def format_duration(delay: timedelta) -> str:
    """A delay the way :func:`parse_duration` reads it (``1h``, ``10m``, ``45s``)."""
    seconds = delay.total_seconds()
    for unit, size in (("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def parse_end_time(text: str) -> datetime:
    """An ISO 8601 date-time with a zone (``2026-03-02T18:00-05:00``, ``...Z``)."""
    hint = "Write it like 2026-03-02T18:00:00-05:00 or 2026-03-02T23:00:00Z."
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InputError(f"Cannot read the end time {text!r}.", hint=hint) from None
    if moment.tzinfo is None:
        raise InputError(f"The end time {text!r} has no time zone or offset.", hint=hint)
    try:
        moment.astimezone(UTC)  # an edge of the calendar in a far zone overflows here, not later
    except OverflowError:
        raise InputError(f"The end time {text!r} is out of range.", hint=hint) from None
    return moment


def parse_agents(text: str) -> list[str]:
    """``a@x.com,b@y.com`` (commas or whitespace) as a list, without empties or repeats."""
    seen: dict[str, str] = {}
    for part in re.split(r"[,\s]+", text):
        if part and part.lower() not in seen:
            seen[part.lower()] = part
    return list(seen.values())


def read_agents_file(path: str | Path) -> list[str]:
    """One agent (email or user id) per line; ``#`` comments and blank lines are ignored."""
    file = str(path)
    try:
        raw = open(path, "rb")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise InputFileError(
            f"cannot be read ({exc.strerror})",
            file=file,
            hint="Give a file with one agent email or user id per line.",
        ) from None
    agents: list[str] = []
    with raw:
        for line in decoded_lines(raw, file):
            text = line.split("#", 1)[0].strip()
            if text:
                agents.extend(parse_agents(text))
    unique = parse_agents(" ".join(agents))
    if not unique:
        raise InputFileError(
            "lists no agent",
            file=file,
            hint="Put one agent email or user id per line (lines starting with # are comments).",
        )
    return unique


def default_journal_path(csv_path: str | Path) -> Path:
    """The default journal of a list: next to it, ``contacts.csv`` → ``contacts.db``."""
    path = Path(csv_path)
    return path.with_suffix(".db") if path.suffix.lower() != ".db" else path.with_suffix(".db.db")


@dataclass(frozen=True)
class CampaignSettings:
    """Everything a run needs besides credentials; stored as JSON in the journal."""

    csv_path: str
    agents: tuple[str, ...] = ()
    phone_column: str | None = None
    default_country: str = "US"
    strict: bool = False
    window: str = "08:00-21:00"
    fallback_timezone: str | None = None
    unknown_timezone: str = UnknownZone.SKIP.value
    dnc_path: str | None = None
    max_attempts: int = 3
    retry_no_answer_s: float = DEFAULT_NO_ANSWER_DELAY.total_seconds()
    retry_busy_s: float = DEFAULT_BUSY_DELAY.total_seconds()
    end: str | None = None
    concurrency: int | None = None
    caller_id: str | None = None
    caller_id_name: str | None = None
    max_refusals: int = 10
    queue_id: str | None = None
    """The queue the calls are placed for (``callFromQueueId``): only such ACD calls carry the
    agent's wrap-up code (the disposition)."""
    wrapup_rules: Mapping[str, Any] | None = None
    """The wrap-up rules in their JSON form (:class:`WrapupRules`); None: wrap-ups are recorded
    and the retry policy decides."""
    wrapup_timeout_s: float = DEFAULT_WRAPUP_TIMEOUT_S
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.concurrency is not None and self.concurrency < 1:
            raise InputError(
                f"--concurrency must be at least 1, not {self.concurrency}.",
                hint="Leave it out to allow one call per agent.",
            )
        if self.max_attempts < 1:
            raise InputError(
                f"--max-attempts must be at least 1, not {self.max_attempts}.",
                hint="Use --max-attempts 1 to dial every contact once.",
            )
        try:
            UnknownZone(self.unknown_timezone)
        except ValueError:
            raise InputError(
                f"--unknown-timezone must be 'skip' or 'any', not {self.unknown_timezone!r}."
            ) from None
        CallingWindow.parse(self.window)
        if self.end is not None:
            parse_end_time(self.end)
        if self.wrapup_rules is not None:
            WrapupRules.from_json(self.wrapup_rules)
        if not self.wrapup_timeout_s >= 0:
            raise InputError(
                f"--wrapup-timeout must be 0 or more, not {self.wrapup_timeout_s!r}.",
                hint="Write it like 5m; 0 does not wait for wrap-ups.",
            )

    def wrapups(self) -> WrapupRules | None:
        """The wrap-up rules in force, if any were given."""
        return WrapupRules.from_json(self.wrapup_rules) if self.wrapup_rules is not None else None

    @property
    def end_at(self) -> datetime | None:
        """The campaign end time, if any."""
        return parse_end_time(self.end) if self.end else None

    def rules(self) -> Rules:
        """The calling rules, with the do-not-call file read now (``--strict`` refuses junk)."""
        dnc = (
            DoNotCallList.load(
                self.dnc_path, default_country=self.default_country, strict=self.strict
            )
            if self.dnc_path
            else DoNotCallList()
        )
        retry = RetryPolicy(
            max_attempts=self.max_attempts,
            delays={
                "no_answer": timedelta(seconds=self.retry_no_answer_s),
                "busy": timedelta(seconds=self.retry_busy_s),
            },
        )
        return Rules(
            window=CallingWindow.parse(self.window),
            dnc=dnc,
            unknown_zone=UnknownZone(self.unknown_timezone),
            fallback_zone=self.fallback_timezone,
            end_at=self.end_at,
            retry=retry,
        )

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (what the journal stores)."""
        data = asdict(self)
        data["agents"] = list(self.agents)
        data["extra"] = dict(self.extra)
        data["wrapup_rules"] = dict(self.wrapup_rules) if self.wrapup_rules is not None else None
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CampaignSettings:
        """Settings as stored by :meth:`to_json`; unknown keys (a newer gcdial's) are kept aside."""
        known = set(cls.__dataclass_fields__)
        values = {k: v for k, v in data.items() if k in known}
        extra = {k: v for k, v in data.items() if k not in known}
        values["agents"] = tuple(values.get("agents") or ())
        values["extra"] = {**dict(values.get("extra") or {}), **extra}
        try:
            return cls(**values)
        except TypeError as exc:
            raise InputError(
                f"The journal's stored settings cannot be read ({exc}).",
                hint="Start the campaign with `gcdial campaign run` and explicit options instead.",
            ) from None

    def with_changes(self, **changes: Any) -> CampaignSettings:
        """A copy with some fields replaced (None values are ignored)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    def describe(self) -> Iterable[str]:
        """The rules in force, one short line each, for the start of a run."""
        yield f"calling window {self.window} in each contact's local time"
        if self.dnc_path:
            yield f"do-not-call list {self.dnc_path}"
        yield (
            f"up to {self.max_attempts} attempt(s); retry no answer after "
            f"{format_duration(timedelta(seconds=self.retry_no_answer_s))}, busy after "
            f"{format_duration(timedelta(seconds=self.retry_busy_s))}"
        )
        if self.end:
            yield f"ends at {self.end}"
        yield from self.describe_wrapups(None)

    def describe_wrapups(self, org_codes: Mapping[str, str] | None) -> Iterable[str]:
        """The queue and the wrap-up rules, and (given the org's codes) the codes left unmapped."""
        if self.queue_id is None:
            yield (
                "no queue set: calls are not ACD calls and carry no wrap-up code (disposition); "
                "give --queue QUEUE_ID to get them"
            )
        else:
            yield f"calls placed for queue {self.queue_id}; their wrap-up codes are recorded"
        rules = self.wrapups()
        if rules is None:
            if self.queue_id is not None:
                yield "no wrap-up rules: the retry policy decides, whatever the wrap-up code"
            return
        yield from rules_summary(rules, org_codes)
