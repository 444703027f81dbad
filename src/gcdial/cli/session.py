"""One command run: its global options, output, settings, client and sandbox, and its error guard.

Every command body runs inside :func:`session`, which turns any exception into the message and
exit code of :mod:`gcdial.cli.errors` and closes what the run opened (client, sandbox emulator).
Heavy modules (httpx, pydantic, the emulator) are imported here lazily, on first use.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gcdial.cli import logs
from gcdial.cli.errors import report
from gcdial.cli.output import Output, reader_gone, reader_went_away

if TYPE_CHECKING:
    import typer

    from gcdial.client import AsyncClient, Client
    from gcdial.config import Settings
    from gcdial.emulator import EmulatorServer

SANDBOX_SPEED_ENV = "GCDIAL_SANDBOX_SPEED"
# The sandbox's clock runs 5x by default: a whole answered call in about 3 s, not 16.
DEFAULT_SANDBOX_SPEED = 5.0


@dataclass(frozen=True)
class GlobalOptions:
    """The root options of ``gcdial`` (before the verb)."""

    profile: str | None = None
    region: str | None = None
    base_url: str | None = None
    client_id: str | None = None
    client_secret_file: Path | None = None
    sandbox: bool = False
    json: bool = False
    verbose: bool = False


def global_options(ctx: typer.Context) -> GlobalOptions:
    """The root options stored on the click context by the root callback."""
    root = ctx.find_root()
    return root.obj if isinstance(root.obj, GlobalOptions) else GlobalOptions()


class Session:
    """What one command run has opened; everything is created on first use and closed at the end."""

    def __init__(
        self,
        options: GlobalOptions,
        stack: contextlib.ExitStack,
        *,
        sandbox_speed: float | None = None,
    ) -> None:
        self.options = options
        self.output = Output(json_mode=options.json)
        self._stack = stack
        self._sandbox_speed = sandbox_speed
        self._settings: Settings | None = None
        self._client: Client | None = None
        self.emulator: EmulatorServer | None = None

    def overrides(self) -> dict[str, Any]:
        """Settings given on the command line (or by the sandbox), which beat every other source."""
        opts = self.options
        given: dict[str, Any] = {}
        if opts.region:
            given["region"] = opts.region
        if opts.base_url:
            given["base_url"] = opts.base_url
        if opts.client_id:
            given["client_id"] = opts.client_id
        if opts.client_secret_file is not None:
            given["client_secret_file"] = str(opts.client_secret_file)
        if opts.sandbox:
            emu = self.sandbox()
            given.update(
                base_url=emu.base_url, client_id=emu.client_id, client_secret=emu.client_secret
            )
            given.pop("region", None)
        return given

    def settings(self) -> Settings:
        """The settings for this run: flags, then environment, ``.env``, profile file, defaults."""
        if self._settings is None:
            from gcdial.config import load_settings

            self._settings = load_settings(profile=self.options.profile, overrides=self.overrides())
            logs.add_secrets(secret_forms(self._settings))
        return self._settings

    def client(self) -> Client:
        """A :class:`gcdial.Client` for these settings, closed when the command ends."""
        if self._client is None:
            from gcdial.client import Client

            self._client = self._stack.enter_context(Client(self.settings()))
        return self._client

    def async_client(self) -> AsyncClient:
        """A new :class:`gcdial.AsyncClient` for these settings; use it as ``async with``."""
        from gcdial.client import AsyncClient

        return AsyncClient(self.settings())

    def core_clock(self) -> tuple[Callable[[], float], Callable[[float], Awaitable[None]]]:
        """The clock and sleep the dialing core times its waits with: the sandbox's simulated
        clock (its settle time passes as fast as its calls ring), else real time."""
        from gcdial.http import async_sleep

        if self.emulator is None:
            return time.monotonic, async_sleep
        sim = self.emulator.state.clock

        async def sleep(seconds: float) -> None:
            await async_sleep(seconds / sim.speed)

        return sim.now, sleep

    def sandbox(self) -> EmulatorServer:
        """Start the built-in emulator for this run (once) and return it."""
        if self.emulator is None:
            from gcdial.emulator import EmulatorConfig, EmulatorServer

            speed = self._sandbox_speed or sandbox_speed()
            config = EmulatorConfig(speed=speed, admin=True)
            self.emulator = self._stack.enter_context(EmulatorServer(config))
            logs.add_secrets([self.emulator.client_secret])  # before any settings exist
            self.output.say(
                f"sandbox: built-in emulator at {self.emulator.base_url}; its clock runs "
                f"{speed:g}x real time, and every time shown (and --timeout, --hangup-after) is "
                "sandbox time",
                style="dim",
            )
        return self.emulator


def secret_forms(settings: Settings) -> list[str]:
    """The secret values of ``settings`` as they could appear in text (raw, and as Basic auth)."""
    import base64

    forms: list[str] = []
    if settings.client_secret is not None:
        secret = settings.client_secret.get_secret_value()
        forms.append(secret)
        if settings.client_id:
            pair = f"{settings.client_id}:{secret}".encode()
            forms.append(base64.b64encode(pair).decode("ascii"))
    if settings.access_token is not None:
        forms.append(settings.access_token.get_secret_value())
    return forms


def sandbox_speed(default: float = DEFAULT_SANDBOX_SPEED) -> float:
    """Simulated seconds per real second for ``--sandbox`` (``GCDIAL_SANDBOX_SPEED``)."""
    import os

    raw = os.environ.get(SANDBOX_SPEED_ENV, "").strip()
    if not raw:
        return default
    try:
        speed = float(raw)
    except ValueError:
        speed = -1.0
    if not 0 < speed <= 1000:
        from gcdial.errors import ConfigError

        raise ConfigError(
            f"{SANDBOX_SPEED_ENV}={raw!r} is not a speed.",
            setting=SANDBOX_SPEED_ENV,
            source="environment",
            hint="Give a number of simulated seconds per real second, between 0 and 1000, e.g. 10.",
        )
    return speed


@contextlib.contextmanager
def session(
    ctx: typer.Context,
    *,
    json: bool = False,
    sandbox: bool = False,
    verbose: bool = False,
    sandbox_speed: float | None = None,
) -> Iterator[Session]:
    """Run a command body: set up output and logging, guard errors, close what was opened.

    Options given after the verb (``json``, ``sandbox``, ``verbose``) add to the global ones.
    """
    base = global_options(ctx)
    with session_for(
        base, json=json, sandbox=sandbox, verbose=verbose, sandbox_speed=sandbox_speed
    ) as run:
        yield run


@contextlib.contextmanager
def session_for(
    base: GlobalOptions,
    *,
    json: bool = False,
    sandbox: bool = False,
    verbose: bool = False,
    sandbox_speed: float | None = None,
) -> Iterator[Session]:
    """:func:`session`, given the root options themselves rather than typer's context."""
    options = replace(
        base,
        json=base.json or json,
        sandbox=base.sandbox or sandbox,
        verbose=base.verbose or verbose,
    )
    logs.setup(verbose=options.verbose)
    stack = contextlib.ExitStack()
    run = Session(options, stack, sandbox_speed=sandbox_speed)
    try:
        with stack:
            yield run
    except _click_endings():
        raise
    except (Exception, KeyboardInterrupt) as exc:
        if reader_went_away(exc):
            reader_gone()
        try:
            code = report(exc, run.output, verbose=options.verbose)
        except BrokenPipeError:
            reader_gone()
        raise exit_with(int(code)) from None


def exit_with(code: int) -> BaseException:
    """The exception that ends a command with ``code``: typer's Exit when typer runs the command,
    else SystemExit (:mod:`gcdial.cli.fastpath`, which runs a plain call without typer)."""
    typer = sys.modules.get("typer")
    return SystemExit(code) if typer is None else typer.Exit(code)


def _click_endings() -> tuple[type[BaseException], ...]:
    """typer's Exit, and click's exit, abort and usage errors, for those loaded.

    Neither is imported for this, for start-up time: recent typer versions bundle their own copy
    of click, an exception of click's can only exist once something has imported click, and a
    plain call runs without typer (SystemExit, a BaseException, passes the guard by itself).
    """
    typer = sys.modules.get("typer")
    endings: tuple[type[BaseException], ...] = () if typer is None else (typer.Exit,)
    click = sys.modules.get("click")
    if click is None:
        return endings
    return (*endings, click.exceptions.Exit, click.ClickException, click.Abort)


def refuse_sandbox(ctx: typer.Context, sandbox: bool, command: str, why: str, hint: str) -> None:
    """Refuse ``command`` under ``--sandbox``, where it cannot work, before the emulator starts."""
    if not (sandbox or global_options(ctx).sandbox):
        return
    from gcdial.errors import InputError

    raise InputError(f"`gcdial {command}` cannot work with --sandbox: {why}.", hint=hint)
