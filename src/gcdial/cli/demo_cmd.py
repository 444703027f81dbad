"""``gcdial demo`` (``make demo``): a whole call in the built-in sandbox, shown live.

Starts the emulator in-process, checks the demo agent Alice, places a call on her behalf to a
number that answers, and follows it to its outcome. Needs no credentials, no network beyond
loopback and no terminal (it runs as well in CI); it takes a few seconds.
"""

from __future__ import annotations

from typing import Annotated

import typer

from gcdial.cli.options import JsonOpt, VerboseOpt
from gcdial.cli.session import DEFAULT_SANDBOX_SPEED, session

DEMO_AGENT = "alice@example.com"
# The sandbox's telephone network decides by the last two digits: 00-49 answer and talk 10+NN s.
DEMO_NUMBER = "+14155550100"
DEMO_SPEED = DEFAULT_SANDBOX_SPEED
DEMO_TIMEOUT_S = 50.0


def demo(
    ctx: typer.Context,
    to: Annotated[
        str,
        typer.Option(
            "--to",
            help="Number to dial in the sandbox; its last two digits pick the outcome "
            "(00-49 answered, 50-59 no answer, 60-69 busy, 70-79 invalid, 80-89 carrier failure, "
            "90-94 agent no answer, 95-99 agent rejects).",
        ),
    ] = DEMO_NUMBER,
    speed: Annotated[
        float,
        typer.Option("--speed", help="Simulated seconds per real second.", min=0.1, max=1000),
    ] = DEMO_SPEED,
    json: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Place a call on behalf of the demo agent Alice in the built-in sandbox and follow it live.

    Exits with the call's outcome code (0: answered).
    """
    from gcdial.calls import CallParams
    from gcdial.cli.live import DialRequest, dial_and_report
    from gcdial.cli.render import conversation_table
    from gcdial.dialing import DEFAULT_RESOLVE_TIMEOUT_S

    with session(ctx, json=json, sandbox=True, verbose=verbose, sandbox_speed=speed) as run:
        out = run.output
        out.say(
            f"gcdial demo: a call in the built-in sandbox (clock running {speed:g}x)", style="bold"
        )
        emulator = run.sandbox()
        out.say(
            "The sandbox is a local Genesys Cloud emulator: gcdial talks to it over HTTP and "
            "WebSocket exactly as it would to a real region.",
            style="dim",
        )
        out.say(f"Ringing agent {DEMO_AGENT} first, then connecting her to {to}.")
        request = DialRequest(
            agent=DEMO_AGENT,
            params=CallParams(to=to),
            check_agent=True,
            follow=True,
            timeout_s=DEMO_TIMEOUT_S,
            hangup_after=None,
            resolve_timeout_s=DEFAULT_RESOLVE_TIMEOUT_S,
        )
        code = dial_and_report(run, request)
        if not out.json_mode:
            calls = emulator.calls_created()
            if calls:
                conversation = run.client().calls.get(str(calls[-1]["id"]))
                out.show(conversation_table(conversation))
            out.say(
                "Next: try another outcome with `gcdial demo --to +14155550165` (busy), or dial "
                "yourself with `gcdial --sandbox call +14155550100 --agent alice@example.com "
                "--wait`. With real credentials, run `gcdial doctor` first.",
                style="dim",
            )
        raise typer.Exit(int(code))
