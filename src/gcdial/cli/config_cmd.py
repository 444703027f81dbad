"""``gcdial config init`` and ``gcdial logout``: set gcdial up for an org, and forget a login.

``config init`` writes a profile of the config file (region, OAuth client id) and keeps the
client secret apart, in a file only its owner can read, which the profile names. It asks what it
was not told when a person is at the terminal, never echoing the secret; a script gives
``--region``, ``--client-id`` and the secret on stdin (``--client-secret-stdin``).
"""

from __future__ import annotations

import json
import os
import re
import sys
import tomllib
from pathlib import Path
from typing import Annotated, Any

import typer

from gcdial.cli.options import JsonOpt, VerboseOpt
from gcdial.cli.session import global_options, session

app = typer.Typer(help="Set gcdial up: write a profile of the config file.", no_args_is_help=True)

_PROFILE_NAME = re.compile(r"^[A-Za-z0-9_-]+$")
_PRIVATE_FILE = 0o600
_PRIVATE_DIR = 0o700


def config_file_path() -> Path:
    """The config file gcdial reads: ``$GCDIAL_CONFIG_FILE``, else ``<config dir>/config.toml``."""
    from gcdial.config import ENV_CONFIG_FILE, default_config_dir

    named = os.environ.get(ENV_CONFIG_FILE, "").strip()
    if named:
        return Path(named).expanduser().absolute()
    return default_config_dir(os.environ) / "config.toml"


def _toml_value(value: object) -> str:
    """One TOML value: strings as basic strings (JSON's escapes are TOML's), numbers, booleans."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(str(value), ensure_ascii=False)


def render_config(data: dict[str, Any]) -> str:
    """The config file's text: ``default_profile`` then one ``[profiles.NAME]`` table each."""
    lines = ["# gcdial settings; see docs/configuration.md. Secrets live in separate files.", ""]
    if data.get("default_profile"):
        lines += [f"default_profile = {_toml_value(data['default_profile'])}", ""]
    for name, table in data.get("profiles", {}).items():
        lines.append(f"[profiles.{name}]")
        lines += [f"{key} = {_toml_value(value)}" for key, value in table.items()]
        lines.append("")
    return "\n".join(lines)


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path``, readable by its owner only from the first byte on."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=_PRIVATE_DIR)
    temporary = path.with_name(f".{path.name}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, _PRIVATE_FILE)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(temporary, _PRIVATE_FILE)
    os.replace(temporary, path)


def _ask(value: str | None, *, prompt: str, flag: str, hide: bool = False) -> str:
    """``value`` if given, else asked of the person at the terminal, else an error naming it."""
    from gcdial.errors import InputError

    if value is not None and value.strip():
        return value.strip()
    if not sys.stdin.isatty():
        raise InputError(
            f"{flag} is missing, and there is no terminal to ask for it.",
            hint=f"Give {flag} when running `gcdial config init` from a script.",
        )
    answer: str = typer.prompt(prompt, hide_input=hide, err=True)
    if not answer.strip():
        raise InputError(f"An empty answer is not a valid {prompt.lower()}.")
    return answer.strip()


def _read_secret_from_stdin() -> str:
    from gcdial.errors import InputError

    secret = sys.stdin.readline().strip()
    if not secret:
        raise InputError(
            "--client-secret-stdin was given but stdin held no secret.",
            hint="Pipe the secret in, e.g. `pass show genesys | gcdial config init "
            "--client-secret-stdin ...`.",
        )
    return secret


@app.command("init")
def init(
    ctx: typer.Context,
    profile: Annotated[
        str | None,
        typer.Option(
            "--profile", help="Profile to write (default: the global --profile, else 'default')."
        ),
    ] = None,
    region: Annotated[
        str | None,
        typer.Option(
            "--region",
            help="Genesys Cloud region: a name (eu_west_1) or the domain you log in at.",
            show_default=False,
        ),
    ] = None,
    client_id: Annotated[
        str | None,
        typer.Option(
            "--client-id", help="OAuth client id (client credentials).", show_default=False
        ),
    ] = None,
    client_secret_stdin: Annotated[
        bool,
        typer.Option(
            "--client-secret-stdin",
            help="Read the client secret from the first line of stdin (for scripts).",
            show_default=False,
        ),
    ] = False,
    force: Annotated[
        bool,
        typer.Option("--force", help="Replace the profile if it exists.", show_default=False),
    ] = False,
    json: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Write a profile (region, client id) to the config file; the secret goes to a 0600 file.

    Asks for what is not given when run at a terminal; the secret is never echoed, printed or
    taken as a flag.
    """
    from gcdial.cli.logs import add_secrets
    from gcdial.errors import ConfigError, InputError
    from gcdial.regions import resolve_region

    with session(ctx, json=json, verbose=verbose) as run:
        name = profile or global_options(ctx).profile or "default"
        if not _PROFILE_NAME.match(name):
            raise InputError(
                f"--profile: {name!r} is not a profile name.",
                hint="Use letters, digits, '-' and '_' only, e.g. --profile prod_eu.",
            )
        path = config_file_path()
        data: dict[str, Any] = {}
        if path.is_file():
            try:
                data = tomllib.loads(path.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
                raise ConfigError(
                    f"The config file {path} cannot be read: {exc}.",
                    source=str(path),
                    hint="Fix or move it, then run `gcdial config init` again.",
                ) from None
        profiles: dict[str, Any] = data.setdefault("profiles", {})
        if name in profiles and not force:
            raise InputError(
                f"Profile {name!r} already exists in {path}.",
                hint="Add --force to replace it, or choose another name with --profile.",
            )
        region = _ask(region, prompt="Region (e.g. eu_west_1 or mypurecloud.ie)", flag="--region")
        resolve_region(region, setting="region", source="the answer given")
        client_id = _ask(client_id, prompt="OAuth client id", flag="--client-id")
        if client_secret_stdin:
            secret = _read_secret_from_stdin()
        else:
            secret = _ask(
                None, prompt="OAuth client secret", flag="--client-secret-stdin", hide=True
            )
        add_secrets([secret])
        secret_path = path.parent / "secrets" / f"{name}.secret"
        _write_private(secret_path, secret + "\n")
        profiles[name] = {
            "region": region,
            "client_id": client_id,
            "client_secret_file": str(secret_path),
        }
        if len(profiles) > 1 and not data.get("default_profile") and "default" not in profiles:
            data["default_profile"] = name
        _write_private(path, render_config(data))
        run.output.ok(
            f"profile {name!r} written to {path}; the secret is in {secret_path} "
            "(readable by you only)"
        )
        if not run.output.json_mode:
            run.output.say("check it with: gcdial doctor", style="dim")
        run.output.result(
            {"profile": name, "configFile": str(path), "secretFile": str(secret_path)}
        )


def logout(
    ctx: typer.Context,
    json: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Forget the user token `gcdial login` stored for this profile (deletes its file)."""
    from gcdial import tokenstore

    with session(ctx, json=json, verbose=verbose) as run:
        path = tokenstore.path_for(run.settings())
        removed = path is not None and tokenstore.delete_token(path)
        if removed:
            run.output.ok(f"logged out: removed the stored token {path}")
        else:
            run.output.say("not logged in: there was no stored token to remove")
        run.output.result({"loggedOut": removed, "tokenFile": str(path) if path else None})
