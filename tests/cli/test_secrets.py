"""No secret in any output: the client secret, its Basic form, and any token the emulator issued.

Every run in this package is already checked for the client secret and ``Bearer <token>``; here
each verb also runs with ``-v`` (every request and response logged) and the output is searched
for anything shaped like an emulator token (43 URL-safe characters) as well.
"""

from __future__ import annotations

import re

import pytest

from gcdial.emulator import EmulatorServer

from .helpers import ALICE, ANSWERS, Cli, emulator_env, secret_forms

_TOKEN_SHAPED = re.compile(r"(?<![A-Za-z0-9_-])[A-Za-z0-9_-]{40,}(?![A-Za-z0-9_-])")


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["call", ANSWERS, "--agent", ALICE, "--dry-run"], 0),
        (["call", ANSWERS, "--agent", ALICE, "--wait", "--json"], 0),
        (["status", "{cid}"], 0),
        (["hangup", "{cid}"], 0),
        (["watch", "{cid}"], 0),
        (["agent", "show", ALICE], 0),
        (["agent", "find", ALICE], 0),
        (["doctor", "--agent", ALICE], 0),
        (["call", "12", "--agent", ALICE], 2),
    ],
)
def test_verbose_output_holds_no_secret(
    cli: Cli, emulator: EmulatorServer, args: list[str], code: int
) -> None:
    cid = ""
    if any("{cid}" in a for a in args):
        cid = cli("call", ANSWERS, "--agent", ALICE).out.strip()
    result = cli("-v", *[a.replace("{cid}", cid) for a in args])
    assert result.code == code, result.err
    if code == 0 and "--dry-run" not in args:
        assert "DEBUG" in result.err or "INFO" in result.err  # -v really logged the exchange
    for stream in (result.out, result.err):
        assert not _TOKEN_SHAPED.findall(stream), _TOKEN_SHAPED.findall(stream)
    assert emulator.client_secret not in result.err


@pytest.mark.parametrize("verbose", [[], ["-v"]])
def test_credentials_echoed_by_a_server_are_not_printed(
    run_gcdial: Cli, emulator: EmulatorServer, echo_server: str, verbose: list[str]
) -> None:
    env = {**emulator_env(emulator), "GCDIAL_BASE_URL": echo_server}
    # run_gcdial checks the secret and its Basic form appear in neither stream.
    result = run_gcdial(*verbose, "status", "c-1", env=env, secrets=secret_forms(emulator))
    assert result.code == 3, result.err
    assert "invalid_request" in result.err
    assert "Basic ***" in result.err
