"""A campaign's rules on wrap-up codes: what the agent's disposition does to the contact.

In the spirit of Genesys Outbound Campaigns' wrap-up code mappings: each code (by id or by name,
case-insensitive) maps to one action, and a default covers the unmapped ones:

- ``done``: the contact is finished;
- ``retry after 2h``: dialed again after the delay (within ``--max-attempts`` and the calling
  window);
- ``callback``: dialed again at the time the agent wrote in the notes, or ``callback at
  attribute X``: at the time in the contact's attribute X (a CSV column), the notes first with
  ``callback at notes or attribute X``; the time is read in the contact's time zone and moved into
  the calling window;
- ``dnc``: finished, and its number goes on the campaign's do-not-call list (never dialed again);
- ``wrong number``: finished, never retried;
- ``policy``: as if there were no wrap-up (the call's outcome and the retry policy decide): the
  default for codes no rule names, unless ``default`` says otherwise.

The rules come from a TOML file (``--wrapup-rules``) or, with the same keys, as JSON over HTTP::

    default = "policy"                     # codes not listed below
    callback_fallback = "retry after 1h"   # a callback whose time cannot be read

    [codes]
    "Sale" = "done"
    "Call back" = "callback at notes or attribute callback_at"
    "Do not call" = "dnc"

This module reads and checks the rules; what they do to one attempt is decided in
:mod:`gcdial.campaign.decide`.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any, Final
from zoneinfo import ZoneInfo

from gcdial.errors import InputError, WrapupRulesFileError

__all__ = [
    "WrapupAction",
    "WrapupRule",
    "WrapupRules",
    "callback_time",
    "load_wrapup_rules",
    "parse_rule",
]

_DURATION: Final = re.compile(r"^(\d+(?:\.\d+)?)\s*(h|m|s|d)$", re.IGNORECASE)
_UNITS: Final = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0}
_ATTRIBUTE: Final = re.compile(r"^[A-Za-z0-9_.\- ]{1,64}$")
_TOP_KEYS: Final = ("default", "callback_fallback", "codes")
ACTIONS_HINT: Final = (
    'Use "done", "policy", "retry after 2h", "callback", "callback at attribute NAME", '
    '"callback at notes or attribute NAME", "dnc" or "wrong number".'
)


class WrapupAction(StrEnum):
    """What a wrap-up code does to its contact."""

    POLICY = "policy"  # as if there were no wrap-up: the call's outcome and the retry policy
    DONE = "done"
    RETRY = "retry"
    CALLBACK = "callback"
    DNC = "dnc"
    WRONG_NUMBER = "wrong_number"


@dataclass(frozen=True, slots=True)
class WrapupRule:
    """One action: ``delay`` for a retry; for a callback, where its time is read (``notes``
    and/or the contact's ``attribute``)."""

    action: WrapupAction
    delay: timedelta | None = None
    notes: bool = False
    attribute: str | None = None

    def __str__(self) -> str:
        if self.action is WrapupAction.RETRY and self.delay is not None:
            return f"retry after {_format(self.delay)}"
        if self.action is WrapupAction.CALLBACK:
            places = (["notes"] if self.notes else []) + (
                [f"attribute {self.attribute}"] if self.attribute else []
            )
            return "callback at " + " or ".join(places)
        if self.action is WrapupAction.WRONG_NUMBER:
            return "wrong number"
        return self.action.value


def _format(delay: timedelta) -> str:
    seconds = delay.total_seconds()
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def parse_rule(text: object, *, where: str) -> WrapupRule:
    """Read one action (``"retry after 2h"``...); InputError naming ``where`` otherwise."""
    if not isinstance(text, str):
        raise InputError(f"{where}: the action must be text, not {text!r}.", hint=ACTIONS_HINT)
    words = " ".join(text.strip().lower().replace("_", " ").split())
    if words == "done":
        return WrapupRule(WrapupAction.DONE)
    if words == "policy":
        return WrapupRule(WrapupAction.POLICY)
    if words in ("dnc", "do not call"):
        return WrapupRule(WrapupAction.DNC)
    if words == "wrong number":
        return WrapupRule(WrapupAction.WRONG_NUMBER)
    if words.startswith("retry after "):
        match = _DURATION.match(words.removeprefix("retry after ").replace(" ", ""))
        if match is None or float(match.group(1)) <= 0:
            raise InputError(
                f"{where}: cannot read the delay in {text!r}.",
                hint='Write it like "retry after 30m", "retry after 2h" or "retry after 1d".',
            )
        return WrapupRule(
            WrapupAction.RETRY,
            delay=timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2).lower()]),
        )
    if words == "callback":
        return WrapupRule(WrapupAction.CALLBACK, notes=True)
    if words.startswith("callback at "):
        notes, attribute = False, None
        # The attribute's name keeps its case (CSV columns are case-sensitive).
        original = " ".join(text.strip().split())
        for part, raw in zip(
            words.removeprefix("callback at ").split(" or "),
            original[len("callback at ") :].split(" or "),
            strict=False,
        ):
            if part == "notes":
                notes = True
            elif part.startswith("attribute ") and _ATTRIBUTE.match(raw[len("attribute ") :]):
                attribute = raw[len("attribute ") :].strip()
            else:
                raise InputError(f"{where}: cannot read {text!r}.", hint=ACTIONS_HINT)
        return WrapupRule(WrapupAction.CALLBACK, notes=notes, attribute=attribute)
    raise InputError(f"{where}: {text!r} is not an action.", hint=ACTIONS_HINT)


@dataclass(frozen=True)
class WrapupRules:
    """Code (id or name, lower-cased) -> rule, the default for the others, and what a callback
    whose time cannot be read does instead."""

    codes: Mapping[str, WrapupRule] = field(default_factory=dict)
    default: WrapupRule = WrapupRule(WrapupAction.POLICY)
    callback_fallback: WrapupRule = WrapupRule(WrapupAction.RETRY, delay=timedelta(hours=1))

    def rule_for(self, code: str | None, name: str | None) -> tuple[WrapupRule, bool]:
        """The rule for a wrap-up (its code id first, then its name) and whether it was mapped."""
        for key in (code, name):
            if key and key.strip().lower() in self.codes:
                return self.codes[key.strip().lower()], True
        return self.default, False

    def unmapped(self, org_codes: Mapping[str, str]) -> list[str]:
        """The org's codes (id -> name) that no rule names: they get the default."""
        return sorted(
            name
            for code, name in org_codes.items()
            if code.lower() not in self.codes and name.strip().lower() not in self.codes
        )

    def to_json(self) -> dict[str, Any]:
        """The JSON form, as stored in the journal's settings and sent over HTTP."""
        return {
            "default": str(self.default),
            "callback_fallback": str(self.callback_fallback),
            "codes": {key: str(rule) for key, rule in self.codes.items()},
        }

    @classmethod
    def from_json(cls, data: object, *, where: str = "wrap-up rules") -> WrapupRules:
        """Rules from their JSON (or TOML) form; InputError naming the bad entry."""
        if not isinstance(data, Mapping):
            raise InputError(f"{where} must be an object with {', '.join(_TOP_KEYS)}.")
        for key in data:
            if key not in _TOP_KEYS:
                raise InputError(
                    f"{where}: unknown key {key!r}.",
                    hint=f"The keys are {', '.join(_TOP_KEYS)}.",
                )
        raw_codes = data.get("codes", {})
        if not isinstance(raw_codes, Mapping):
            raise InputError(f"{where}: codes must be a table of code or name -> action.")
        codes: dict[str, WrapupRule] = {}
        for key, value in raw_codes.items():
            name = str(key).strip().lower()
            if not name:
                raise InputError(f"{where}: codes has an empty code name.")
            codes[name] = parse_rule(value, where=f"{where}: codes.{key}")
        default = parse_rule(data.get("default", "policy"), where=f"{where}: default")
        fallback = parse_rule(
            data.get("callback_fallback", "retry after 1h"), where=f"{where}: callback_fallback"
        )
        if fallback.action is WrapupAction.CALLBACK:
            raise InputError(
                f"{where}: callback_fallback cannot itself be a callback.",
                hint='Use "retry after 1h" or "done".',
            )
        return cls(codes=codes, default=default, callback_fallback=fallback)


def load_wrapup_rules(path: str | Path) -> WrapupRules:
    """Read a rules file (TOML); WrapupRulesFileError with the file and line of the problem."""
    file = str(path)
    try:
        text = Path(path).read_bytes().decode("utf-8")
    except OSError as exc:
        raise WrapupRulesFileError(
            f"cannot be read ({exc.strerror})", file=file, hint="Check the path."
        ) from None
    except UnicodeDecodeError:
        raise WrapupRulesFileError("is not UTF-8 text", file=file) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = _toml_line(str(exc))
        raise WrapupRulesFileError(
            f"is not valid TOML ({str(exc).split(' (at line')[0]})",
            file=file,
            line=line,
            hint='Write one rule per line, like "Do not call" = "dnc" under [codes].',
        ) from None
    try:
        return WrapupRules.from_json(data, where="rules")
    except InputError as exc:
        raise WrapupRulesFileError(
            exc.message.removeprefix("rules: "),
            file=file,
            line=_line_of(text, exc.message),
            hint=exc.hint,
        ) from None


def _toml_line(message: str) -> int | None:
    match = re.search(r"at line (\d+)", message)
    return int(match.group(1)) if match else None


def _line_of(text: str, message: str) -> int | None:
    """The line a semantic error is about: the first line naming its key (tomllib keeps none)."""
    match = re.search(
        r"codes\.(.+?):|: (default|callback_fallback)[: ]|unknown key '([^']+)'", message
    )
    if match is None:
        return None
    key = next(g for g in match.groups() if g)
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.split("#", 1)[0]
        head = stripped.split("=", 1)[0].strip().strip("\"'")
        if head == key or stripped.strip() in (f"[{key}]",):
            return number
    return None


_ISO: Final = re.compile(
    r"\b(\d{4}-\d{2}-\d{2})[T ](\d{1,2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?\s*(Z|[+-]\d{2}:?\d{2})?",
    re.IGNORECASE,
)
_CLOCK: Final = re.compile(r"\b(\d{1,2})(?::(\d{2}))?\s*(am|pm|a\.m\.|p\.m\.)?(?![\d:])", re.I)


def callback_time(text: str | None, zone: str, now: datetime) -> datetime | None:
    """The callback time written in ``text``, read in ``zone``; None when there is none.

    ``2026-12-08 15:00`` (or ``T15:00``) is that date, in ``zone`` unless an offset or ``Z``
    follows; ``15:00``, ``3pm``, ``3:30 pm`` the next such time after ``now``. A bare number
    without minutes or am/pm is not a time.
    """
    if not text:
        return None
    tz = ZoneInfo(zone)
    iso = _ISO.search(text)
    if iso is not None:
        try:
            day = date.fromisoformat(iso.group(1))
            wall = time(int(iso.group(2)), int(iso.group(3)), int(iso.group(4) or 0))
        except ValueError:
            return None
        offset = iso.group(5)
        if offset:  # a written offset wins over the contact's zone
            text_offset = "+00:00" if offset.upper() == "Z" else offset
            stamp = f"{iso.group(1)}T{wall:%H:%M:%S}{text_offset}"
            try:
                return datetime.fromisoformat(stamp).astimezone(UTC)
            except ValueError:
                return None
        return datetime.combine(day, wall, tzinfo=tz).astimezone(UTC)
    for match in _CLOCK.finditer(text):
        hour, minutes, half = match.group(1), match.group(2), match.group(3)
        if minutes is None and half is None:
            continue
        h, m = int(hour), int(minutes or 0)
        if half:
            if not 1 <= h <= 12:
                continue
            h = h % 12 + (12 if half.lower().startswith("p") else 0)
        if h > 23 or m > 59:
            continue
        local_now = now.astimezone(tz)
        moment = datetime.combine(local_now.date(), time(h, m), tzinfo=tz)
        if moment <= local_now:
            moment = datetime.combine(local_now.date() + timedelta(days=1), time(h, m), tzinfo=tz)
        return moment.astimezone(UTC)
    return None


def rules_summary(rules: WrapupRules, org_codes: Mapping[str, str] | None) -> Iterable[str]:
    """The rules in force, and the org's codes they leave to the default, one line each."""
    for key, rule in sorted(rules.codes.items()):
        yield f"wrap-up {key!r}: {rule}"
    yield f"wrap-up codes not listed: {rules.default}"
    if org_codes is not None:
        yield f"wrap-up codes of the org: {', '.join(sorted(org_codes.values())) or 'none'}"
        unmapped = rules.unmapped(org_codes)
        if unmapped:
            yield f"unmapped wrap-up codes of the org (get the default): {', '.join(unmapped)}"
        else:
            yield "every wrap-up code of the org has a rule"
