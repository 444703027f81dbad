"""The ``gcdial`` command as typer builds it: the root options, and one module per command group.

Command modules import the heavy parts of gcdial inside their functions, so that ``gcdial --help``
starts fast. :mod:`gcdial.cli.main` runs it (or, for a plain ``gcdial call``, runs the call
without typer: :mod:`gcdial.cli.fastpath`).
"""

import importlib
import re
import sys
from collections.abc import Callable, Sequence
from typing import Annotated, Any

import typer
from typer.core import TyperArgument, TyperOption

from gcdial.cli.options import (
    BaseUrlOpt,
    ClientIdOpt,
    ClientSecretFileOpt,
    JsonOpt,
    ProfileOpt,
    RegionOpt,
    SandboxOpt,
    VerboseOpt,
)
from gcdial.cli.session import GlobalOptions

app = typer.Typer(
    name="gcdial",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=True,
    rich_markup_mode=None,
)


def _show_version(value: bool) -> None:
    if value:
        from gcdial._version import __version__

        typer.echo(f"gcdial {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    profile: ProfileOpt = None,
    region: RegionOpt = None,
    base_url: BaseUrlOpt = None,
    client_id: ClientIdOpt = None,
    client_secret_file: ClientSecretFileOpt = None,
    sandbox: SandboxOpt = False,
    json: JsonOpt = False,
    verbose: VerboseOpt = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            help="Print gcdial's version and exit.",
            callback=_show_version,
            is_eager=True,
            show_default=False,
        ),
    ] = False,
) -> None:
    """Place outbound calls on behalf of Genesys Cloud agents, safely.

    Credentials come from GENESYSCLOUD_OAUTHCLIENT_ID / GENESYSCLOUD_OAUTHCLIENT_SECRET /
    GENESYSCLOUD_REGION, a .env file or a profile; try `gcdial demo` or `--sandbox` first,
    and `gcdial doctor` when something does not work.
    """
    ctx.obj = GlobalOptions(
        profile=profile,
        region=region,
        base_url=base_url,
        client_id=client_id,
        client_secret_file=client_secret_file,
        sandbox=sandbox,
        json=json,
        verbose=verbose,
    )


# Every command: its name, the module under gcdial.cli that defines it, and the function (or
# Typer sub-app, for a group). Listed in the order help shows them.
_COMMANDS: dict[str, tuple[str, str, bool]] = {
    "call": ("call_cmd", "call", False),
    "resolve": ("resolve_cmd", "resolve", False),
    "status": ("watch_cmd", "status", False),
    "hangup": ("watch_cmd", "hangup", False),
    "watch": ("watch_cmd", "watch", False),
    "agent": ("agent_cmd", "app", True),
    "doctor": ("doctor_cmd", "doctor", False),
    "login": ("login_cmd", "login", False),
    "logout": ("config_cmd", "logout", False),
    "config": ("config_cmd", "app", True),
    "demo": ("demo_cmd", "demo", False),
    "emulator": ("emulator_cmd", "app", True),
    "campaign": ("campaign_cmd", "app", True),
    "serve": ("serve_cmd", "app", True),
}

# Root options that take a value: the word after them is that value, not a command name.
_VALUED_ROOT_OPTIONS = frozenset(
    {"--profile", "--region", "--base-url", "--client-id", "--client-secret-file"}
)


def _command_named(args: Sequence[str]) -> str | None:
    """The command ``args`` (argv without the program) runs, if it names one of ours."""
    expect_value = False
    for arg in args:
        if expect_value:
            expect_value = False
        elif arg == "--":
            return None
        elif arg.startswith("-"):
            expect_value = arg in _VALUED_ROOT_OPTIONS
        else:
            return arg if arg in _COMMANDS else None
    return None


def _register(names: Sequence[str]) -> None:
    """Add the commands ``names`` to :data:`app`, importing only their modules."""
    for name in names:
        module_name, attribute, is_group = _COMMANDS[name]
        target = getattr(importlib.import_module(f"gcdial.cli.{module_name}"), attribute)
        if is_group:
            app.add_typer(target, name=name)
        else:
            app.command(name)(target)


# What an option's value is, as help shows it (``--from NUMBER``); unlisted ones use their name.
_METAVARS = {
    "--agent": "AGENT",
    "--from": "NUMBER",
    "--from-name": "NAME",
    "--label": "TEXT",
    "--uui": "TEXT",
    "--window": "HH:MM-HH:MM",
    "--to": "NUMBER",
    "--attr": "KEY=VALUE",
    "--country": "CC",
    "--default-country": "CC",
    "--timeout": "SECONDS",
    "--hangup-after": "SECONDS",
    "--end": "TIME",
    "--max-attempts": "N",
    "--concurrency": "N",
    "--rate-limit": "N",
    "--retry-busy": "DURATION",
    "--retry-no-answer": "DURATION",
    "--fixture": "FILE",
    "--speed": "FACTOR",
    "--base-url": "URL",
    "--client-id": "ID",
    "--login-client-id": "ID",
    "--client-secret-file": "FILE",
    "--agents-file": "FILE",
    "--dnc": "FILE",
    "--output": "FILE",
    "--journal": "FILE",
    "--profile": "NAME",
    "--queue": "QUEUE_ID",
    "--phone-column": "COLUMN",
    "--fallback-timezone": "ZONE",
}


class _Argument(TyperArgument):
    """An argument shown the classic way: ``TO`` in the usage line and in the list, no type."""

    def _usage_display_name(self) -> str:
        name = self.display_name_raw + ("..." if self.nargs != 1 else "")
        return name if self.required else f"[{name}]"

    def display_type_rich(self, ctx: Any) -> str | None:
        return None


def _name_values(command: Any) -> None:
    """Give every argument and valued option of ``command`` (and its subcommands) a metavar.

    typer would show ``{to}``, ``<str>`` and ``<list[str]>``; help shows ``TO`` and
    ``--from NUMBER`` instead.
    """
    for param in command.params:
        if isinstance(param, TyperArgument):
            param.__class__ = _Argument  # same fields; only how it is displayed differs
            param.metavar = param.metavar or (param.name or "value").upper()
        elif isinstance(param, TyperOption) and not param.is_flag and param.metavar is None:
            long_names = [o for o in param.opts if o.startswith("--")]
            key = long_names[0] if long_names else ""
            described = getattr(param, "type_descriptor", None)  # typer >= 0.26
            choices = described.choices if described is not None and described.is_choice else None
            if choices:
                param.metavar = "[" + "|".join(str(getattr(c, "value", c)) for c in choices) + "]"
            else:
                param.metavar = _METAVARS.get(key) or (param.name or "value").upper()
    # typer's groups are not click.Group subclasses, but keep their subcommands the same way.
    subcommands: dict[str, Any] = getattr(command, "commands", None) or {}
    for sub in subcommands.values():
        _name_values(sub)


# A plain decimal number (``30``, ``2.5``, ``.5``): what float() and typer's own conversion read
# alike. Anything else (a sign, an exponent, ``inf``, spaces, a typo) goes to typer's conversion.
_PLAIN_DECIMAL = re.compile(r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)\Z")
_NOT_SIMPLE = object()


class _SimpleValues:
    """How typer turns one parameter's command-line text into its value, for the plain cases.

    Recent typer versions build a pydantic ``TypeAdapter`` for every parameter of the command run
    (about 0.6 ms each, ~15 ms for ``gcdial call``, and the modules they need) to read what is a
    string, a list of strings or a plain decimal number in gcdial's commands. This reads those
    values directly and gives the same results; any other value (a missing one, a sign, an
    exponent, a non-number, another type) goes to typer's own conversion, built on demand, so that
    its results and messages are typer's. typer asks for ``coerce(value, param=..., ctx=...)``;
    anything else it asks is passed to its own conversion too.
    """

    def __init__(self, param: Any, kind: str, build: Callable[[Any], Any]) -> None:
        self._param = param
        self._kind = kind
        self._build = build
        self._typers: Any = None

    def _typer_own(self) -> Any:
        if self._typers is None:
            self._typers = self._build(self._param.type_descriptor)
        return self._typers

    def _read(self, value: Any) -> Any:
        multiple = self._param.multiple or self._param.nargs == -1
        if value is None:
            return () if multiple else None
        if self._kind == "str" and not multiple and type(value) is str:
            return value
        if self._kind == "float" and not multiple:
            if type(value) is float:
                return value
            if type(value) is str and _PLAIN_DECIMAL.match(value):
                return float(value)
        listed = self._kind == "list[str]" and multiple and type(value) in (list, tuple)
        if listed and all(type(item) is str for item in value):
            return list(value)
        return _NOT_SIMPLE

    def coerce(self, *args: Any, **kwargs: Any) -> Any:
        if len(args) == 1 and kwargs.keys() == {"param", "ctx"} and kwargs["param"] is self._param:
            value = self._read(args[0])
            if value is not _NOT_SIMPLE:
                return value
        return self._typer_own().coerce(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._typer_own(), name)


def _simple_kind(param: Any) -> str | None:
    """``str``, ``float`` or ``list[str]`` when ``param`` is a plain one of those, ``other`` for
    any other parameter of typer's (only its missing value is read here); None for none of typer's.
    """
    described = getattr(param, "type_descriptor", None)
    info = getattr(described, "parameter_info", None)
    if info is None:
        return None
    customised = ("parser", "min", "max", "click_type")
    plain = all(getattr(info, name, None) is None for name in customised)
    kinds: dict[Any, str] = {str: "str", float: "float", list[str]: "list[str]"}
    return kinds.get(getattr(described, "annotation", None), "other") if plain else "other"


def _read_values_simply(command: Any) -> None:
    """Give every plain parameter of ``command`` (and its subcommands) :class:`_SimpleValues`.

    Only where this typer converts values the way :class:`_SimpleValues` knows (a parameter whose
    conversion is built on first use, by ``typer._coercion.build_runtime_param``); with any other
    typer, its own conversion is left as it is.
    """
    coercion = sys.modules.get("typer._coercion")
    build = getattr(coercion, "build_runtime_param", None)
    if build is None:
        return

    def read_simply(param: Any) -> Any:
        kind = _simple_kind(param)
        if kind is not None and getattr(param, "_runtime_param", _NOT_SIMPLE) is None:
            param._runtime_param = _SimpleValues(param, kind, build)
        return param

    for param in command.params:
        read_simply(param)
    # --help is made by click on first use, for the context of the run.
    help_option = getattr(command, "get_help_option", None)
    if help_option is not None:
        command.get_help_option = lambda ctx: read_simply(help_option(ctx))
    subcommands: dict[str, Any] = getattr(command, "commands", None) or {}
    for sub in subcommands.values():
        _read_values_simply(sub)


def command(args: Sequence[str] | None = None) -> Any:
    """The ``gcdial`` command as click runs it, its help tidied by :func:`_name_values`.

    For start-up time, when ``args`` (default: this process's) name a command, only that command
    is imported and built: each command module, and typer building every parameter of every
    command, cost tens of milliseconds. Anything else (help, completion, a typo) gets them all.
    """
    if not app.registered_commands and not app.registered_groups:
        wanted = _command_named(sys.argv[1:] if args is None else args)
        _register([wanted] if wanted else list(_COMMANDS))
    built = typer.main.get_command(app)
    _name_values(built)
    _read_values_simply(built)
    return built
