"""One meaning of "ready": ``gcdial agent show --json`` (the real CLI) and ``GET /v1/agents``
(the real service) give every sandbox agent the same verdict and the same reason, and a policy
set in the environment changes both the same way."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from .conftest import Running

GCDIAL = Path(sys.executable).parent / "gcdial"
AGENTS = {
    "alice@example.com": (True, None),
    "bob@example.com": (True, None),
    "carol@example.com": (False, "presence"),  # BUSY
    "dave@example.com": (False, "no_station"),
    "erin@example.com": (False, "inactive"),
}


def _cli_show(running: Running, agent: str, tmp_path: Path) -> dict[str, Any]:
    emulator = running.emulator
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "GENESYSCLOUD_OAUTHCLIENT_ID": emulator.client_id,
        "GENESYSCLOUD_OAUTHCLIENT_SECRET": emulator.client_secret,
        "GCDIAL_BASE_URL": emulator.base_url,
    }
    done = subprocess.run(
        [str(GCDIAL), "agent", "show", agent, "--json"],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode in (0, 7), done.stderr
    assert "Traceback" not in done.stderr
    shown: dict[str, Any] = json.loads(done.stdout)
    assert (done.returncode == 0) is shown["ready"]
    return shown


def test_every_sandbox_agent_has_one_verdict_and_reason(running: Running, tmp_path: Path) -> None:
    served = running.http.get(
        "/v1/agents",
        params=[("agent", a) for a in AGENTS],
        headers=running.headers(running.admin_key),
    )
    assert served.status_code == 200, served.text
    by_agent = {a["agent"]: a for a in served.json()["agents"]}
    for agent, (ready, reason) in AGENTS.items():
        shown = _cli_show(running, agent, tmp_path)
        api = by_agent[agent]
        assert (shown["ready"], shown["reason"]) == (ready, reason), (agent, shown)
        assert (api["ready"], api["reason"]) == (ready, reason), (agent, api)
        assert shown["problem"] == api["problem"], agent


def test_a_campaign_card_lists_agents_by_the_same_verdict(running: Running) -> None:
    ops = running.make_key("ops", scopes=("campaigns",), rate_per_minute=100_000)
    created = running.http.post(
        "/v1/campaigns",
        files={"file": ("c.csv", b"phone\n+14155550100\n", "text/csv")},
        data={"agents": "alice@example.com,carol@example.com,dave@example.com"},
        headers=running.headers(ops),
    )
    assert created.status_code == 201, created.text
    detail = running.http.get(
        f"/v1/campaigns/{created.json()['id']}/detail", headers=running.headers(ops)
    )
    assert detail.status_code == 200, detail.text
    states = {a["agent"]: (a["state"], a.get("reason")) for a in detail.json()["detail"]["agents"]}
    assert states == {
        "alice@example.com": ("idle", None),
        "carol@example.com": ("not ready", "presence"),
        "dave@example.com": ("not ready", "no_station"),
    }
