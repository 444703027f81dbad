"""``gcdial doctor``: check the setup layer by layer and say how to fix each problem found.

The layers are probed in the order data flows (settings, login host, token, API, permissions,
agent), each with its own small step so that the first broken one is named precisely. A later
check is skipped when an earlier one it needs has failed. Nothing here places a call.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.text import Text

from gcdial.cli.exitcodes import ExitCode
from gcdial.cli.logs import scrub
from gcdial.cli.options import JsonOpt, SandboxOpt, VerboseOpt
from gcdial.cli.output import FAIL_MARK, OK_MARK
from gcdial.cli.session import Session, session

if TYPE_CHECKING:
    from gcdial.auth import GcdialAuth
    from gcdial.config import Settings
    from gcdial.http import ApiTransport

_PROBE_EMAIL = "gcdial-doctor-probe@example.invalid"
_SKIP_MARK = "-"


@dataclass
class Check:
    """One line of the checklist: passed (True), failed (False) or skipped/informational (None)."""

    name: str
    passed: bool | None
    detail: str
    fix: str | None = None
    code: ExitCode = ExitCode.OK

    def as_json(self) -> dict[str, Any]:
        """The check as one entry of ``--json`` output."""
        status = {True: "ok", False: "fail", None: "skip"}[self.passed]
        return {"name": self.name, "status": status, "detail": self.detail, "fix": self.fix}


class Checklist:
    """The checks run so far, printed as they complete."""

    def __init__(self, run: Session) -> None:
        self.run = run
        self.checks: list[Check] = []

    def add(self, check: Check) -> Check:
        """Record ``check`` and print it (human mode)."""
        check.detail = scrub(check.detail)
        check.fix = scrub(check.fix) if check.fix else None
        self.checks.append(check)
        if not self.run.output.json_mode:
            mark, style = {
                True: (OK_MARK, "green"),
                False: (FAIL_MARK, "red"),
                None: (_SKIP_MARK, "dim"),
            }[check.passed]
            line = Text.assemble((f"{mark} ", style), (check.name, "bold"), f": {check.detail}")
            self.run.output.out.print(line)
            if check.fix:
                self.run.output.out.print(Text(f"    fix: {check.fix}", style="yellow"))
        return check

    def ok(self, name: str, detail: str) -> Check:
        """A passed check."""
        return self.add(Check(name, True, detail))

    def info(self, name: str, detail: str) -> Check:
        """A skipped or informational line."""
        return self.add(Check(name, None, detail))

    def fail(self, name: str, exc: BaseException) -> Check:
        """A failed check, described (and coded) the way any command would report ``exc``."""
        from gcdial.cli.errors import describe
        from gcdial.errors import GcdialError

        failure = describe(exc)
        if isinstance(exc, GcdialError):
            detail = " ".join(exc.message.split())
            fix = " ".join(exc.hint.split()) if exc.hint else None
            if failure.message.startswith(detail) and len(failure.message) > len(detail):
                rest = failure.message[len(detail) :].strip()
                fix = rest or fix
        else:
            detail, fix = failure.message, None
        return self.add(Check(name, False, detail, fix, failure.code))

    @property
    def failed(self) -> list[Check]:
        """The checks that failed."""
        return [c for c in self.checks if c.passed is False]


def _settings_check(run: Session, checks: Checklist) -> Settings | None:
    try:
        settings = run.settings()
        endpoints = settings.endpoints()
    except Exception as exc:
        checks.fail("settings", exc)
        return None
    where = settings.source_of("api_base_url")
    name = f"{endpoints.region} " if endpoints.region else ""
    checks.ok("region", f"{name}API {endpoints.api_base_url}, login {endpoints.login_base_url}")
    checks.info("region source", where)
    if settings.access_token is not None:
        checks.ok("credentials", f"access token set (from {settings.source_of('access_token')})")
    elif settings.client_id:
        secret = (
            f"secret from {settings.source_of('client_secret')}"
            if settings.client_secret is not None
            else "NO secret"
        )
        checks.ok(
            "credentials",
            f"client id {settings.client_id} (from {settings.source_of('client_id')}), {secret}",
        )
    if settings.profile:
        checks.info("profile", f"{settings.profile} (from {settings.source_of('profile')})")
    checks.info("call route", f"{settings.call_route} (from {settings.source_of('call_route')})")
    return settings


def _login_host_check(settings: Settings, checks: Checklist) -> bool:
    import httpx

    from gcdial.errors import ApiConnectionError

    endpoints = settings.endpoints()
    try:
        with httpx.Client(
            verify=settings.verify_tls, timeout=httpx.Timeout(settings.connect_timeout_s)
        ) as http:
            response = http.get(f"{endpoints.login_base_url}/oauth/token")
    except httpx.HTTPError as exc:
        checks.fail(
            "login host",
            ApiConnectionError(
                f"Cannot reach the login host {endpoints.login_base_url}: {type(exc).__name__}.",
                url=endpoints.login_base_url,
                hint="Check the network (proxy, firewall, VPN) and that the region is right.",
            ),
        )
        return False
    checks.ok("login host", f"{endpoints.login_base_url} answers (HTTP {response.status_code})")
    return True


def _auth_check(settings: Settings, checks: Checklist) -> GcdialAuth | None:
    from gcdial.auth import ClientCredentialsAuth, auth_from_settings

    try:
        auth = auth_from_settings(settings)
        if isinstance(auth, ClientCredentialsAuth):
            auth.token()
    except Exception as exc:
        checks.fail("token", exc)
        return None
    what = "got a token" if isinstance(auth, ClientCredentialsAuth) else "will use"
    checks.ok("token", f"{what}: {auth.describe()}")
    return auth


@contextlib.contextmanager
def _transport(settings: Settings, auth: GcdialAuth) -> Iterator[ApiTransport]:
    import httpx

    from gcdial.http import ApiTransport

    timeout = httpx.Timeout(settings.timeout_s, connect=settings.connect_timeout_s)
    with httpx.Client(verify=settings.verify_tls, timeout=timeout) as http:
        yield ApiTransport(http, base_url=settings.endpoints().api_base_url, auth=auth)


def _api_check(transport: ApiTransport, checks: Checklist) -> bool:
    from gcdial.errors import BadRequestError

    try:
        me = transport.get_json("/api/v2/users/me")
    except BadRequestError as exc:
        if exc.code == "not.a.user":
            checks.ok("API", "the API accepts the token (client credentials: not a user)")
            return True
        checks.fail("API", exc)
        return False
    except Exception as exc:
        checks.fail("API", exc)
        return False
    who = me.get("email") or me.get("name") if isinstance(me, dict) else None
    checks.ok("API", f"the API accepts the token (user token of {who or 'a user'})")
    return True


def _permission_check(transport: ApiTransport, checks: Checklist) -> None:
    from gcdial.agents import Agents
    from gcdial.errors import AgentNotReadyError

    try:
        Agents(transport).get(_PROBE_EMAIL)
    except AgentNotReadyError:
        checks.ok("permissions", "may search users (needed to dial for an agent by email)")
    except Exception as exc:
        checks.fail("permissions", exc)
    else:
        checks.ok("permissions", "may search users")
    checks.info(
        "call permission",
        "not probed (it would dial): the role needs conversation:call:add, or "
        "conversation:agentlessCall:add for calls on behalf of an agent",
    )


def _ladder_check(transport: ApiTransport, checks: Checklist) -> None:
    """Which resolution ladder these credentials get: can they run the details query?"""
    from datetime import UTC, datetime

    from gcdial.errors import ApiError
    from gcdial.resolve import DETAILS_PATH, probe_query

    now = transport.server_clock.now() or datetime.now(UTC)
    try:
        transport.request("POST", DETAILS_PATH, json=probe_query(now), idempotent=True)
    except ApiError as exc:
        if exc.status == 403:
            checks.info(
                "resolution ladder",
                "live evidence only: a lost create-call answer is resolved 'placed' from the "
                "agent's call frames, but never 'not placed' (it stays unknown). Give the role "
                "analytics:conversationDetail:view for the full ladder",
            )
            return
        checks.info("resolution ladder", f"the conversation details query failed: {exc}")
        return
    checks.ok(
        "resolution ladder",
        "full: live evidence and conversation details (may prove a lost call 'not placed')",
    )


def _wrapup_check(settings: Settings, transport: ApiTransport, checks: Checklist) -> None:
    """Whether calls carry the agent's wrap-up code: only those placed for a queue do."""
    from gcdial._shared import WRAPUP_CODES_PATH
    from gcdial.errors import ApiError

    if settings.queue_id is None:
        checks.info(
            "wrap-up",
            "no queue set: calls are not ACD calls and carry no wrap-up code (disposition). "
            "Set queue_id (GCDIAL_QUEUE_ID) or give --queue to get them",
        )
        return
    try:
        transport.request("GET", WRAPUP_CODES_PATH, params={"pageSize": "1"}, idempotent=True)
    except ApiError as exc:
        checks.info(
            "wrap-up", f"queue {settings.queue_id}; listing the wrap-up codes failed: {exc}"
        )
        return
    checks.ok("wrap-up", f"calls are placed for queue {settings.queue_id}: wrap-up codes come back")


def _agent_check(transport: ApiTransport, agent: str, checks: Checklist) -> None:
    from gcdial.agents import Agents

    try:
        readiness = Agents(transport).check(agent)
    except Exception as exc:
        checks.fail("agent", exc)
        return
    station = readiness.station.name or readiness.station.id or "set"
    checks.ok(
        "agent",
        f"{readiness.agent.label}: active, station {station}, "
        f"presence {readiness.presence or 'unknown'}",
    )
    for note in readiness.notes:
        checks.info("agent note", note)


def run_checks(run: Session, *, agent: str | None) -> Checklist:
    """Run every check that the ones before it allow; nothing is dialed."""
    checks = Checklist(run)
    settings = _settings_check(run, checks)
    if settings is None or not _login_host_check(settings, checks):
        return checks
    auth = _auth_check(settings, checks)
    if auth is None:
        return checks
    with _transport(settings, auth) as transport:
        if not _api_check(transport, checks):
            return checks
        _permission_check(transport, checks)
        _ladder_check(transport, checks)
        _wrapup_check(settings, transport, checks)
        if agent:
            _agent_check(transport, agent, checks)
        else:
            checks.info("agent", "not checked: give --agent ID_OR_EMAIL to check station/presence")
    return checks


def doctor(
    ctx: typer.Context,
    agent: Annotated[
        str | None,
        typer.Option(
            "--agent",
            "-a",
            help="Also check this agent's account, station and presence.",
            show_default=False,
        ),
    ] = None,
    json: JsonOpt = False,
    sandbox: SandboxOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Check settings, region, credentials, token, permissions and (with --agent) an agent.

    Prints a checklist with the fix for each failed check; exits non-zero when any check fails.
    """
    with session(ctx, json=json, sandbox=sandbox, verbose=verbose) as run:
        checks = run_checks(run, agent=agent)
        failed = checks.failed
        run.output.result(
            {"ok": not failed, "checks": [c.as_json() for c in checks.checks]},
        )
        if failed:
            if not run.output.json_mode:
                run.output.fail(f"{len(failed)} check(s) failed; fix the first one first.")
            raise typer.Exit(int(failed[0].code or ExitCode.INTERNAL))
        if not run.output.json_mode:
            run.output.ok("all checks passed")
