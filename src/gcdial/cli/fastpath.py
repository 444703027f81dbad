"""``gcdial call`` without typer, for the command lines people and scripts type most.

Loading typer and building the command's ~30 options is about a tenth of one call's CPU, for a
command line whose reading is plain. :func:`plain_call` reads the plain forms of ``gcdial call``
(root options before the verb; after it TO and the call's own options, as ``--name value``,
``--name=value`` or ``-a value``) exactly as typer reads them, and returns None for anything else:
help, a missing or repeated value, an unknown or abbreviated option, joined short options, a value
that starts with ``-``, a number typer would have to convert (a sign, an exponent), ``--``,
``--client-secret-file`` or ``--version``. typer then reads the command line as always, so every
message, default and exit code of an unusual command line stays typer's. What the call does is
:func:`gcdial.cli.placing.place` either way.
"""

import os
import re
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from gcdial._shared import DEFAULT_RESOLVE_TIMEOUT_S, DEFAULT_WRAPUP_TIMEOUT_S
from gcdial.cli.local_gate import CALLING_WINDOW_ENV, DEFAULT_CALLING_WINDOW

__all__ = ["plain_call"]

# Root options (before the verb) read here, and the call's own; every other one goes to typer.
_ROOT_VALUED = {"--profile": "profile", "--region": "region", "--base-url": "base_url",
                "--client-id": "client_id"}  # fmt: skip
_ROOT_FLAGS = {"--sandbox": "sandbox", "--json": "json", "--verbose": "verbose", "-v": "verbose"}
_VALUED = {
    "--agent": "agent", "-a": "agent", "--from": "from_number", "--from-name": "from_name",
    "--queue": "queue", "--attr": "attr", "--label": "label", "--uui": "uui",
    "--country": "country", "--timeout": "timeout", "--wrapup-timeout": "wrapup_timeout",
    "--hangup-after": "hangup_after", "--resolve-timeout": "resolve_timeout",
    "--window": "window", "--timezone": "timezone", "--dnc": "dnc",
}  # fmt: skip
_FLAGS = {
    "--no-check": "no_check", "--dry-run": "dry_run", "--wait": "wait", "--any-hour": "any_hour",
    "--json": "json", "--sandbox": "sandbox", "--verbose": "verbose", "-v": "verbose",
}  # fmt: skip
_REPEATABLE = frozenset({"attr"})
_SECONDS = frozenset({"timeout", "wrapup_timeout", "hangup_after", "resolve_timeout"})
# A plain decimal number (``30``, ``2.5``, ``.5``): what float() and typer's own conversion read
# alike. Anything else goes to typer.
_PLAIN_DECIMAL = re.compile(r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)\Z")


def _option(token: str, known: dict[str, str]) -> tuple[str, str | None] | None:
    """``(name, value given with =)`` for a known option, ``(name, None)`` when its value (if
    any) is the next word; None when ``token`` is no option read here."""
    if token in known:
        return known[token], None
    flag, sep, value = token.partition("=")
    if sep and flag.startswith("--") and flag in known:
        return known[flag], value
    return None


def _read(
    args: Sequence[str],
    start: int,
    valued: dict[str, str],
    flags: dict[str, str],
    into: dict[str, Any],
) -> int | None:
    """Read options from ``args[start]`` on, into ``into``, until a word that is no option.

    The index of that word (``len(args)`` at the end); None when typer must read the line."""
    index = start
    while index < len(args):
        token = args[index]
        if not token.startswith("-"):
            return index
        found = _option(token, valued)
        if found is not None:
            name, value = found
            if value is None:
                index += 1
                if index >= len(args):
                    return None
                value = args[index]
            if not value or value.startswith("-"):
                return None
            if name in _REPEATABLE:
                into.setdefault(name, []).append(value)
            elif name in into:
                return None
            else:
                into[name] = value
        elif token in flags:
            if flags[token] in into:
                return None
            into[flags[token]] = True
        else:
            return None
        index += 1
    return index


def plain_call(args: Sequence[str]) -> Callable[[], NoReturn] | None:
    """The run of ``gcdial ARGS`` when ARGS is a plain ``gcdial call``; None for typer to read."""
    root: dict[str, Any] = {}
    verb = _read(args, 0, _ROOT_VALUED, _ROOT_FLAGS, root)
    if verb is None or verb >= len(args) or args[verb] != "call":
        return None
    given: dict[str, Any] = {}
    index = verb + 1
    while index < len(args):
        found = _read(args, index, _VALUED, _FLAGS, given)
        if found is None:
            return None
        if found < len(args):  # TO, once
            if "to" in given:
                return None
            given["to"] = args[found]
            found += 1
        index = found
    if "to" not in given or "agent" not in given:
        return None
    for name in _SECONDS & given.keys():
        if not _PLAIN_DECIMAL.match(given[name]):
            return None
        given[name] = float(given[name])
    given.setdefault("wrapup_timeout", DEFAULT_WRAPUP_TIMEOUT_S)
    given.setdefault("resolve_timeout", DEFAULT_RESOLVE_TIMEOUT_S)
    # typer's reading of --window: the option, else the variable when it is set and not empty.
    given.setdefault("window", os.environ.get(CALLING_WINDOW_ENV) or DEFAULT_CALLING_WINDOW)
    return lambda: _run(root, given)


def _run(root: dict[str, Any], given: dict[str, Any]) -> NoReturn:
    """Place the call; end as typer ends a command (Ctrl-C: 130; end of input: "Aborted!", 1)."""
    try:
        from gcdial.cli.placing import place
        from gcdial.cli.session import GlobalOptions

        place(GlobalOptions(**root), **given)
    except KeyboardInterrupt:
        raise SystemExit(130) from None
    except Exception as exc:  # typer's Exit, should something have loaded typer meanwhile
        typer = sys.modules.get("typer")
        if typer is not None and isinstance(exc, typer.Exit):
            raise SystemExit(exc.exit_code) from None
        raise
    except EOFError:
        sys.stderr.write("\nAborted!\n")
        raise SystemExit(1) from None
    raise SystemExit(0)
