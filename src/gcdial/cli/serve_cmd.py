"""``gcdial serve``: the click-to-dial HTTP API; ``gcdial serve keys`` manages its API keys."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from gcdial.cli.options import JsonOpt, SandboxOpt, VerboseOpt
from gcdial.cli.session import session

if TYPE_CHECKING:
    from gcdial.serve.store import Store

app = typer.Typer(
    help="Run the click-to-dial HTTP API (`gcdial serve`), manage its API keys (`keys`).",
    invoke_without_command=True,
)
keys_app = typer.Typer(help="Create, list and revoke the API's keys.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
dnc_app = typer.Typer(
    help="The service's do-not-call list: every single call and campaign of the service checks it.",
    no_args_is_help=True,
)
app.add_typer(dnc_app, name="dnc")

EXIT_BAD_INPUT = 2

StoreOpt = Annotated[
    Path | None,
    typer.Option(
        "--store",
        help="SQLite store file (default $GCDIAL_SERVE_STORE, else serve.sqlite3 by the config);"
        " set GCDIAL_DATABASE_URL=postgresql://... instead to share a PostgreSQL store between"
        " replicas.",
        show_default=False,
    ),
]


def _fail(message: str) -> typer.Exit:
    typer.echo(f"gcdial serve: {message}", err=True)
    return typer.Exit(EXIT_BAD_INPUT)


def _open_store(path: Path | None) -> Store:
    from gcdial.errors import ConfigError
    from gcdial.serve.store import StoreError
    from gcdial.serve.stores import open_store

    try:
        return open_store(path)
    except (StoreError, ConfigError) as exc:
        raise _fail(str(exc)) from None


def _parse_ttl(text: str) -> float:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    text = text.strip().lower()
    try:
        if text and text[-1] in units:
            return float(text[:-1]) * units[text[-1]]
        return float(text)
    except ValueError:
        raise _fail(f"--idempotency-ttl {text!r}: write it like 24h or 7d.") from None


@app.callback()
def serve(
    ctx: typer.Context,
    host: Annotated[
        str, typer.Option(help="Address to listen on; other than loopback needs --allow-remote.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port (0 picks a free one).")] = 8080,
    allow_remote: Annotated[
        bool,
        typer.Option("--allow-remote", help="Allow a non-loopback --host (put TLS in front!)."),
    ] = False,
    store: StoreOpt = None,
    cors_origin: Annotated[
        list[str] | None,
        typer.Option("--cors-origin", help="Allow this browser origin (CORS is off by default)."),
    ] = None,
    idempotency_ttl: Annotated[
        str, typer.Option(help="How long idempotency keys are kept: 24h to 7d.")
    ] = "24h",
    max_body: Annotated[int, typer.Option(help="Request body limit in bytes.")] = 65536,
    stale_claim: Annotated[
        float,
        typer.Option(
            help="PostgreSQL replicas: seconds after which a dial another replica left unfinished"
            " (it died) is declared outcome unknown. It is never re-sent.",
            min=1,
            metavar="SECONDS",
        ),
    ] = 300.0,
    campaign_lease: Annotated[
        float,
        typer.Option(
            help="A replica runs a campaign while it holds its lease, renewed every third of"
            " this; when the replica dies another takes the campaign over once it expired.",
            envvar="GCDIAL_SERVE_CAMPAIGN_LEASE_S",
            min=0.3,
            max=3600,
            metavar="SECONDS",
        ),
    ] = 30.0,
    resolve_later: Annotated[
        float,
        typer.Option(
            help="A call answered 'unknown' is still looked for in the background, until the"
            " analytics settle time (GCDIAL_ANALYTICS_SETTLE_S) plus this many seconds; then it"
            " is left for a person. 0 turns it off.",
            min=0,
            metavar="SECONDS",
        ),
    ] = 600.0,
    webhook_lease: Annotated[
        float,
        typer.Option(
            help="Seconds a webhook delivery stays leased to the replica sending it.",
            min=1,
            hidden=True,
        ),
    ] = 60.0,
    allow_insecure_webhooks: Annotated[
        bool,
        typer.Option(
            "--allow-insecure-webhooks",
            help="Allow http webhook URLs and internal addresses (loopback, private networks):"
            " for receivers on this machine only. --sandbox implies it.",
        ),
    ] = False,
    calling_window: Annotated[
        str | None,
        typer.Option(
            "--calling-window",
            envvar="GCDIAL_SERVE_CALLING_WINDOW",
            help="Hours in which single calls may ring a customer, in the customer's local time"
            " (the time zones of the number): HH:MM-HH:MM, 00:00-24:00 for any hour."
            " [default: 08:00-21:00; 00:00-24:00 with --sandbox]",
            show_default=False,
        ),
    ] = None,
    signin_client_id: Annotated[
        str | None,
        typer.Option(
            "--signin-client-id",
            envvar="GCDIAL_SIGNIN_CLIENT_ID",
            help="Agents sign in with Genesys Cloud through this OAuth client (authorization"
            " code + PKCE; its redirect URI: the public URL + /auth/genesys/callback). A client"
            " secret, if it has one: $GCDIAL_SIGNIN_CLIENT_SECRET.",
        ),
    ] = None,
    public_url: Annotated[
        str | None,
        typer.Option(
            "--public-url",
            help="The service's URL as browsers reach it (behind a TLS proxy: its https URL).",
        ),
    ] = None,
    widget_origin: Annotated[
        list[str] | None,
        typer.Option(
            "--widget-origin",
            help="A CRM page origin allowed to use /widget.js (e.g. https://crm.example.com);"
            " repeat for several.",
        ),
    ] = None,
    sandbox: SandboxOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Serve the click-to-dial API until interrupted (Ctrl-C)."""
    if ctx.invoked_subcommand is not None:
        return
    from gcdial.client import AsyncClient
    from gcdial.errors import ConfigError
    from gcdial.serve.app import create_app
    from gcdial.serve.config import DEFAULT_CALLING_WINDOW, ServeConfig, default_campaigns_dir
    from gcdial.serve.server import bind, event_loop_factory, is_loopback, uvicorn_config
    from gcdial.serve.stores import describe_store, is_shared

    if not 0 <= port <= 65535:
        raise _fail(f"--port {port} is out of range: use 0-65535.")
    if not is_loopback(host) and not allow_remote:
        raise _fail(
            f"--host {host} is not a loopback address. The API should sit behind a TLS reverse "
            "proxy; add --allow-remote if you really want to listen there."
        )
    try:
        config = ServeConfig(
            # The sandbox's customers may be called at any hour (a tryout at night).
            calling_window=calling_window or ("00:00-24:00" if sandbox else DEFAULT_CALLING_WINDOW),
            idempotency_ttl_s=_parse_ttl(idempotency_ttl),
            max_body_bytes=max_body,
            cors_origins=tuple(cors_origin or ()),
            stale_claim_s=stale_claim,
            campaign_lease_s=campaign_lease,
            resolve_later_s=resolve_later,
            webhook_lease_s=webhook_lease,
            allow_insecure_webhooks=allow_insecure_webhooks or sandbox,
            # Where an older gcdial kept the campaigns uploaded over HTTP: refused while in use.
            campaigns_dir=str(
                store.parent / "serve-campaigns" if store else default_campaigns_dir()
            ),
            signin_client_id=signin_client_id or None,
            signin_client_secret=os.environ.get("GCDIAL_SIGNIN_CLIENT_SECRET") or None,
            public_url=public_url,
            widget_origins=tuple(widget_origin or ()),
        )
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    opened = _open_store(store)
    with session(ctx, sandbox=sandbox, verbose=verbose) as run:
        settings = run.settings()
        try:
            application = create_app(
                opened, lambda: AsyncClient(settings), config, single_process=not is_shared(opened)
            )
        except ConfigError as exc:
            opened.close()
            raise _fail(str(exc)) from None
        try:
            sock, base_url = bind(host, port)
        except OSError as exc:
            raise _fail(
                f"cannot listen on {host}:{port}: {exc.strerror}; pick another --port."
            ) from None
        import asyncio

        import uvicorn

        if not is_loopback(host):
            typer.echo(f"WARNING: listening on {host}, reachable from other machines.", err=True)
        typer.echo(f"gcdial serve: serving at {base_url} (store {describe_store(opened)})")
        typer.echo(f"  OpenAPI: {base_url}/openapi.json; API keys: gcdial serve keys create")
        server = uvicorn.Server(uvicorn_config(application))
        try:
            with sock, asyncio.Runner(loop_factory=event_loop_factory()) as runner:
                runner.run(server.serve(sockets=[sock]))
        except KeyboardInterrupt:
            # uvicorn shut down gracefully, then passed the Ctrl-C on: the way to stop, no error.
            typer.echo("gcdial serve: stopped.", err=True)
            raise typer.Exit(130) from None
        finally:
            opened.close()


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Option("--name", help="A name for the key (e.g. crm).")],
    agents: Annotated[
        list[str] | None,
        typer.Option("--agents", help="Agents (email or id) the key may dial for; default all."),
    ] = None,
    scopes: Annotated[
        list[str] | None,
        typer.Option("--scopes", help="Comma-separated: dial,watch,campaigns,metrics,admin."),
    ] = None,
    rate: Annotated[str, typer.Option("--rate", help="Requests allowed, e.g. 60/min.")] = "60/min",
    rules: Annotated[
        str,
        typer.Option(
            "--rules",
            help="What a dial against a calling rule (window, do-not-call) does: enforce"
            " (refused) or warn (placed, the call carries the warnings: a service desk"
            " returning a customer's call).",
        ),
    ] = "enforce",
    watch_queue: Annotated[
        str | None,
        typer.Option(
            "--watch-queue",
            help="A Genesys queue (name or id) whose members the key's page shows by default.",
        ),
    ] = None,
    store: StoreOpt = None,
    json: JsonOpt = False,
) -> None:
    """Create an API key; it is printed once on stdout and stored only as a hash."""
    from gcdial.errors import InputError
    from gcdial.serve.keys import new_api_key, parse_rate, parse_scopes

    agent_list = [a.strip() for value in agents or () for a in value.split(",") if a.strip()]
    try:
        made = new_api_key(
            name,
            now=time.time(),
            scopes=parse_scopes(scopes or ()),
            agents=tuple(agent_list),
            rate_per_minute=parse_rate(rate),
            rules=rules,
            watch_queue=watch_queue,
        )
    except InputError as exc:
        raise _fail(str(exc)) from None
    opened = _open_store(store)
    try:
        opened.add_api_key(made.record)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    finally:
        opened.close()
    if json:
        import json as json_module

        typer.echo(json_module.dumps({"id": made.record.id, "name": name, "key": made.key}))
        return
    typer.echo(made.key)
    typer.echo(
        f"Created key {made.record.id} ({name}; scopes {','.join(made.record.scopes)}; "
        f"agents {','.join(made.record.agents) or 'all'}; {made.record.rate_per_minute}/min; "
        f"rules {made.record.rules}"
        + (f"; watches queue {watch_queue.strip()}" if watch_queue else "")
        + "). "
        "It is shown only this once: store it in your CRM's secret settings.",
        err=True,
    )


@keys_app.command("list")
def keys_list(store: StoreOpt = None, json: JsonOpt = False) -> None:
    """List the keys (never the keys themselves: names, prefixes, scopes, agents)."""
    opened = _open_store(store)
    try:
        records = opened.list_api_keys()
    finally:
        opened.close()
    rows: list[dict[str, Any]] = [
        {
            "id": r.id,
            "name": r.name,
            "prefix": r.prefix,
            "scopes": list(r.scopes),
            "agents": list(r.agents),
            "ratePerMinute": r.rate_per_minute,
            "rules": r.rules,
            "watchQueue": r.extra.get("watchQueue"),
            "created": _iso(r.created_at),
            "revoked": _iso(r.revoked_at) if r.revoked_at is not None else None,
        }
        for r in records
    ]
    if json:
        import json as json_module

        typer.echo(json_module.dumps(rows))
        return
    if not rows:
        typer.echo("No API keys yet: gcdial serve keys create --name crm")
    for row in rows:
        state = f"revoked {row['revoked']}" if row["revoked"] else "active"
        typer.echo(
            f"{row['id']}  {row['name']}  {row['prefix']}…  scopes={','.join(row['scopes'])}  "
            f"agents={','.join(row['agents']) or 'all'}  {row['ratePerMinute']}/min  "
            f"rules={row['rules']}  {state}"
            + (f"  watch-queue={row['watchQueue']}" if row["watchQueue"] else "")
        )


@keys_app.command("revoke")
def keys_revoke(
    key: Annotated[str, typer.Argument(help="The key's id or name.")],
    store: StoreOpt = None,
) -> None:
    """Revoke a key: requests with it are refused from now on."""
    opened = _open_store(store)
    try:
        done = opened.revoke_api_key(key, now=time.time())
    finally:
        opened.close()
    if not done:
        raise _fail(f"no active key with id or name {key!r}; see gcdial serve keys list.")
    typer.echo(f"Revoked {key}.")


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds")


def _who() -> str:
    import getpass

    try:
        return "cli:" + getpass.getuser()
    except (KeyError, OSError):  # no user name (a container without a passwd entry)
        return "cli:unknown"


def _audit(
    opened: Store,
    who: str,
    action: str,
    result: str,
    number: str | None,
    detail: str | None = None,
) -> None:
    """A change of the do-not-call list is an audit line, as over the API (``who`` for key)."""
    from gcdial.serve.store import AuditEntry

    opened.append_audit(
        AuditEntry(
            at=time.time(), api_key_id=who, action=action, result=result, number=number,
            detail=detail,
        )
    )  # fmt: skip


def _e164(number: str, country: str) -> str:
    from gcdial.errors import InvalidPhoneNumberError
    from gcdial.phone import to_e164

    try:
        return to_e164(number, default_country=country)
    except InvalidPhoneNumberError as exc:
        raise _fail(f"{exc.message} {exc.hint or ''}".strip()) from None


CountryOpt = Annotated[
    str, typer.Option("--country", help="The country of national numbers (ISO code).")
]


@dnc_app.command("add")
def dnc_add(
    number: Annotated[str, typer.Argument(help="The number, E.164 or national (--country).")],
    reason: Annotated[str | None, typer.Option("--reason", help="Why (kept with it).")] = None,
    country: CountryOpt = "US",
    store: StoreOpt = None,
) -> None:
    """Put a number on the do-not-call list."""
    from gcdial.serve.store import DncEntry

    e164 = _e164(number, country)
    who = _who()
    opened = _open_store(store)
    try:
        added = opened.add_dnc([DncEntry(e164, time.time(), who, reason or None)])
        _audit(opened, who, "dnc_add", "added" if added else "already_listed", e164)
    finally:
        opened.close()
    typer.echo(f"Added {e164}." if added else f"{e164} was on the list already.")


@dnc_app.command("remove")
def dnc_remove(
    number: Annotated[str, typer.Argument(help="The number, E.164 or national (--country).")],
    country: CountryOpt = "US",
    store: StoreOpt = None,
) -> None:
    """Take a number off the do-not-call list."""
    e164 = _e164(number, country)
    opened = _open_store(store)
    try:
        removed = opened.remove_dnc(e164)
        if removed:
            _audit(opened, _who(), "dnc_remove", "removed", e164)
    finally:
        opened.close()
    if not removed:
        raise _fail(f"{e164} is not on the do-not-call list; see gcdial serve dnc list.")
    typer.echo(f"Removed {e164}.")


@dnc_app.command("list")
def dnc_list(store: StoreOpt = None, json: JsonOpt = False) -> None:
    """List the do-not-call list, newest first."""
    opened = _open_store(store)
    entries = []
    try:
        before: tuple[float, str] | None = None
        while True:
            page = opened.list_dnc(limit=1000, before=before)
            entries.extend(page)
            if len(page) < 1000:
                break
            before = (page[-1].added_at, page[-1].number)
    finally:
        opened.close()
    rows = [
        {"number": e.number, "addedAt": _iso(e.added_at), "addedBy": e.added_by, "reason": e.reason}
        for e in entries
    ]
    if json:
        import json as json_module

        typer.echo(json_module.dumps(rows))
        return
    if not rows:
        typer.echo("The do-not-call list is empty: gcdial serve dnc add +14155550100")
    for row in rows:
        why = f"  {row['reason']}" if row["reason"] else ""
        typer.echo(f"{row['number']}  {row['addedAt']}  {row['addedBy']}{why}")


@dnc_app.command("import")
def dnc_import(
    file: Annotated[
        Path,
        typer.Argument(
            help="A CSV file with a header: a phone column (phone, number...), optionally reason."
        ),
    ],
    country: CountryOpt = "US",
    store: StoreOpt = None,
) -> None:
    """Add every number of a CSV file, all or none: a bad row refuses the whole file."""
    from gcdial.errors import InputFileError
    from gcdial.serve.dnc_csv import read_dnc_csv
    from gcdial.serve.store import DncEntry

    try:
        rows = read_dnc_csv(file, default_country=country)
    except InputFileError as exc:
        raise _fail(f"{exc.message}" + (f"\n{exc.hint}" if exc.hint else "")) from None
    now = time.time()
    who = _who()
    unique = {row.number: DncEntry(row.number, now, who, row.reason) for row in rows}
    opened = _open_store(store)
    try:
        added = opened.add_dnc(list(unique.values()))
        _audit(
            opened, who, "dnc_import", "imported", None, f"added {added} of {len(unique)} ({file})"
        )
    finally:
        opened.close()
    typer.echo(
        f"Imported {file}: {added} number(s) added, {len(unique) - added} already on the list."
    )
