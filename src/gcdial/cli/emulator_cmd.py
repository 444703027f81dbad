"""``gcdial emulator``: run the local Genesys Cloud emulator."""

from __future__ import annotations

import ipaddress
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from gcdial.emulator import EmulatorConfig

app = typer.Typer(help="Run the local Genesys Cloud emulator (the sandbox).", no_args_is_help=True)

EXIT_BAD_INPUT = 2
_LOOPBACK_NAMES = frozenset({"localhost"})


def _is_loopback(host: str) -> bool:
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _fail(message: str) -> typer.Exit:
    typer.echo(f"gcdial emulator: {message}", err=True)
    return typer.Exit(EXIT_BAD_INPUT)


@app.command()
def serve(
    host: Annotated[
        str, typer.Option(help="Address to listen on; other than loopback needs --allow-remote.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port (0 picks a free one).")] = 8765,
    allow_remote: Annotated[
        bool, typer.Option("--allow-remote", help="Allow a non-loopback --host (no TLS!).")
    ] = False,
    speed: Annotated[
        float, typer.Option(help="Simulated seconds per real second (e.g. 10 for 10x faster).")
    ] = 1.0,
    fixture: Annotated[
        Path | None, typer.Option(help="Fixture file (.json or .toml) with clients and agents.")
    ] = None,
    admin: Annotated[
        bool, typer.Option("--admin", help="Enable the /_emulator/* admin API.")
    ] = False,
    token_lifetime: Annotated[
        float, typer.Option(help="Access-token lifetime in simulated seconds.")
    ] = 86399,
    rate_limit: Annotated[int, typer.Option(help="Requests per minute per token.")] = 300,
) -> None:
    """Serve the emulator until interrupted (Ctrl-C)."""
    from pydantic import ValidationError

    from gcdial.emulator import EmulatorConfig, FixtureError, create_app

    if not 0 <= port <= 65535:
        raise _fail(f"--port {port} is out of range: use 0-65535.")
    if not _is_loopback(host) and not allow_remote:
        raise _fail(
            f"--host {host} is not a loopback address; the emulator has no TLS and public "
            "credentials. Add --allow-remote if you really want that."
        )
    try:
        config = EmulatorConfig(
            speed=speed,
            fixture=fixture,
            admin=admin,
            token_lifetime_s=token_lifetime,
            rate_limit_per_minute=rate_limit,
        )
    except ValidationError as exc:
        error = exc.errors()[0]
        flag = "--" + str(error["loc"][0]).replace("_per_minute", "").replace("_s", "")
        flag = flag.replace("_", "-")
        raise _fail(f"{flag}: {error['msg']}.") from None
    try:
        application = create_app(config)
    except FixtureError as exc:
        raise _fail(str(exc)) from None
    _run(application, config, host=host, port=port)


def _run(application: Starlette, config: EmulatorConfig, *, host: str, port: int) -> None:
    import uvicorn

    from gcdial.emulator.analytics import DETAIL_PERMISSIONS

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP: asyncio then sets TCP_NODELAY on each connection (no 40 ms delayed-ACK stalls).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        # Listen before the URL is printed: a client that connects as soon as it reads the URL
        # then waits in the backlog until uvicorn serves, instead of being refused.
        sock.listen(socket.SOMAXCONN)
    except OSError as exc:
        sock.close()
        raise _fail(
            f"cannot listen on {host}:{port}: {exc.strerror}; pick another --port."
        ) from None
    bound = sock.getsockname()[1]
    shown = f"[{host}]" if family == socket.AF_INET6 else host
    base_url = f"http://{shown}:{bound}"
    fixture = application.state.emulator.fixture
    client = next(c for c in fixture.clients if c.grant == "client_credentials")
    if not _is_loopback(host):
        typer.echo(
            f"WARNING: listening on {host}, reachable from other machines; the emulator has no "
            "TLS and its credentials are public.",
            err=True,
        )
    typer.echo(f"gcdial emulator: serving at {base_url} (speed {config.speed:g}x)")
    typer.echo(f"  OAuth client id: {client.id} (client credentials)")
    if config.fixture is None:
        # The built-in fixture's credentials are published in the docs: they protect nothing,
        # so the copy-paste block below can be complete.
        typer.echo("  These are the public sandbox credentials, not secrets. Point gcdial at it:")
        shown_secret = client.secret
    else:
        # A fixture of the user's own may hold a secret they care about: never print it.
        typer.echo("  Point gcdial at it (set the secret from your fixture file):")
        shown_secret = "..."  # noqa: S105 (a placeholder, not a secret)
    typer.echo(f"    export GCDIAL_BASE_URL={base_url}")
    typer.echo(f"    export GENESYSCLOUD_OAUTHCLIENT_ID={client.id}")
    typer.echo(f"    export GENESYSCLOUD_OAUTHCLIENT_SECRET={shown_secret}")
    limited = [c for c in fixture.clients if c.secret and not c.has_any(DETAIL_PERMISSIONS)]
    if config.fixture is None and limited:
        typer.echo(
            f"  Without the analytics permission: {limited[0].id} / {limited[0].secret} "
            "(public too)"
        )
    if config.admin:
        typer.echo(f"  Admin API: {base_url}/_emulator/ (calls, requests, faults, reset, clock)")
    typer.echo("  Press Ctrl-C to stop.", nl=True)
    server = uvicorn.Server(
        uvicorn.Config(
            application,
            http="h11",
            ws="websockets-sansio",
            lifespan="on",
            log_level="warning",
            timeout_graceful_shutdown=2,
            date_header=False,
        )
    )
    with sock:
        server.run(sockets=[sock])
