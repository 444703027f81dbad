"""``gcdial login``: get a user token through the browser (PKCE) and store it owner-only."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from gcdial.cli.options import JsonOpt, SandboxOpt, VerboseOpt
from gcdial.cli.session import refuse_sandbox, session

if TYPE_CHECKING:
    from gcdial.config import Settings
    from gcdial.tokenstore import StoredToken

SANDBOX_LOGIN_CLIENT_ID = "sandbox-pkce"
SANDBOX_LOGIN_WHY = (
    "the sandbox's emulator lives only while this one command runs, so its login page could not "
    "be reached from a browser afterwards and a token from it would be useless to the next "
    "command; and --sandbox needs no login, every command in it is already authorized"
)
SANDBOX_LOGIN_HINT = (
    "To try the browser login, keep an emulator running with `gcdial emulator serve`, then run "
    f"`gcdial --base-url URL login --login-client-id {SANDBOX_LOGIN_CLIENT_ID}`."
)


def _login_client_id(settings: Settings, given: str | None) -> str:
    from gcdial.errors import ConfigError

    if given:
        return given
    if settings.login_client_id:
        return settings.login_client_id
    raise ConfigError(
        "No OAuth client is set for `gcdial login`.",
        setting="login_client_id",
        hint=(
            "Create an OAuth client of grant type 'Code Authorization' with PKCE in Genesys "
            "Cloud (Admin > Integrations > OAuth), add the redirect URI "
            "http://127.0.0.1:PORT/callback, then set GCDIAL_LOGIN_CLIENT_ID (and "
            "GCDIAL_LOGIN_PORT to PORT), or pass --login-client-id."
        ),
    )


def _open_browser(url: str) -> bool:
    """Open a graphical browser when there can be one; else False, and the URL gets printed."""
    import os
    import sys
    import webbrowser

    # On Linux without a display, webbrowser would start a text browser (lynx, w3m) in this
    # terminal, where the login page cannot work: print the URL instead.
    headless = sys.platform.startswith("linux") and not (
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    )
    if headless:
        return False
    return webbrowser.open(url)


def _who(settings: Settings, token: StoredToken) -> str | None:
    """The logged-in user's name or email, or None when the API does not say."""
    import httpx

    from gcdial.auth import BearerTokenAuth
    from gcdial.errors import GcdialError
    from gcdial.http import ApiTransport

    auth = BearerTokenAuth(token.access_token, source="gcdial login")
    timeout = httpx.Timeout(settings.timeout_s, connect=settings.connect_timeout_s)
    try:
        with httpx.Client(verify=settings.verify_tls, timeout=timeout) as http:
            me = ApiTransport(http, base_url=token.api_base_url, auth=auth).get_json(
                "/api/v2/users/me"
            )
    except GcdialError:
        return None
    if isinstance(me, dict):
        return str(me.get("email") or me.get("name") or "") or None
    return None


def login(
    ctx: typer.Context,
    login_client_id: Annotated[
        str | None,
        typer.Option(
            "--login-client-id",
            help="Public OAuth client (PKCE) to log in with; default: setting login_client_id.",
            show_default=False,
        ),
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(
            "--port",
            help="Loopback port of the redirect URI; default: setting login_port (0: any).",
            show_default=False,
            min=0,
            max=65535,
        ),
    ] = None,
    no_browser: Annotated[
        bool,
        typer.Option(
            "--no-browser", help="Do not open a browser; print the URL.", show_default=False
        ),
    ] = False,
    timeout: Annotated[
        float,
        typer.Option("--timeout", help="Seconds to wait for the login to finish.", min=1),
    ] = 300.0,
    json: JsonOpt = False,
    sandbox: SandboxOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Log in as yourself (browser, PKCE) to dial from your own phone; the token is kept owner-only.

    Prints the login URL when no browser can be opened. Calls then go through
    POST /api/v2/conversations/calls and ring your station first.
    """
    from gcdial import tokenstore
    from gcdial.errors import ConfigError
    from gcdial.login import pkce_login

    with session(ctx, json=json, sandbox=sandbox, verbose=verbose) as run:
        refuse_sandbox(ctx, sandbox, "login", SANDBOX_LOGIN_WHY, SANDBOX_LOGIN_HINT)
        settings = run.settings()
        client_id = _login_client_id(settings, login_client_id)
        path = tokenstore.path_for(settings)
        if path is None:
            raise ConfigError(
                "There is no config directory to keep the login token in.",
                hint="Set XDG_CONFIG_HOME or HOME.",
            )

        def show_url(url: str) -> None:
            run.output.say("Open this URL in a browser to log in:")
            run.output.say(url)

        run.output.say(f"logging in at {settings.endpoints().login_base_url} ...", style="dim")
        token = pkce_login(
            settings,
            client_id=client_id,
            open_browser=(lambda _url: False) if no_browser else _open_browser,
            port=port,
            timeout_s=timeout,
            show_url=show_url,
        )
        tokenstore.save_token(token, path)
        who = _who(settings, token)
        run.output.ok(
            f"logged in{' as ' + who if who else ''}; token saved to {path} (readable by you only)"
        )
        run.output.result(
            {
                "loggedIn": True,
                "user": who,
                "tokenFile": str(path),
                "expiresAt": token.expires_at.isoformat() if token.expires_at else None,
                "apiBaseUrl": token.api_base_url,
            }
        )
