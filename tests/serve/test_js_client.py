"""The JavaScript client (clients/js): its types are those of the served OpenAPI document, and its
Node example runs against a real ``gcdial serve`` and the emulator, as a CRM's backend would.

The Node tests need Node and the client's npm packages: ``make test`` (and ``make js-deps``)
installs them; run alone, they fail saying so rather than skip.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gcdial.emulator import EmulatorServer
from gcdial.serve.openapi_doc import document, dumps

from .conftest import start_service

ROOT = Path(__file__).resolve().parents[2]
JS = ROOT / "clients" / "js"
GCDIAL = str(Path(sys.executable).parent / "gcdial")
ALICE = "alice@example.com"


def _node() -> str:
    node = shutil.which("node")
    if node is None or not (JS / "node_modules" / ".installed").is_file():
        pytest.fail("Node or the client's packages are missing: run `make js-deps` first")
    return node


def test_the_committed_document_is_the_one_served(emulator: EmulatorServer, tmp_path: Path) -> None:
    """clients/js/openapi.json (what schema.d.ts is generated from) is what /openapi.json serves;
    after an API change, `make js-client` regenerates both."""
    committed = json.loads((JS / "openapi.json").read_text(encoding="utf-8"))
    server, store = start_service(emulator, tmp_path / "serve.sqlite3")
    try:
        served = httpx.get(f"{server.base_url}/openapi.json", timeout=30).json()
    finally:
        server.stop()
        store.close()
    drift = sorted(set(served["paths"]) ^ set(committed["paths"]))
    assert served == committed, (
        f"clients/js/openapi.json drifted from /openapi.json (paths differing: {drift}): "
        "run `make js-client` and commit clients/js"
    )
    assert (JS / "openapi.json").read_text(encoding="utf-8") == dumps(document())


@pytest.mark.timeout(120)
def test_schema_d_ts_is_generated_from_the_committed_document_and_the_code_typechecks(
    tmp_path: Path,
) -> None:
    """openapi-typescript on the committed document gives the committed schema.d.ts, and tsc
    checks the client and the examples against it (a renamed field fails here)."""
    node = _node()
    bin_dir = JS / "node_modules" / ".bin"
    out = tmp_path / "schema.d.ts"
    subprocess.run(
        [node, bin_dir / "openapi-typescript", "openapi.json", "--output", str(out)],
        cwd=JS, check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    assert out.read_text(encoding="utf-8") == (JS / "schema.d.ts").read_text(encoding="utf-8"), (
        "clients/js/schema.d.ts is not what openapi-typescript makes of openapi.json: "
        "run `make js-client`"
    )
    checked = subprocess.run(
        [node, bin_dir / "tsc", "--project", "tsconfig.json"],
        cwd=JS, capture_output=True, text=True, timeout=90, check=False,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stdout + checked.stderr


def _env(tmp_path: Path, emulator: EmulatorServer) -> dict[str, str]:
    return {
        **os.environ,
        "NO_COLOR": "1",
        "GCDIAL_SERVE_STORE": str(tmp_path / "serve.sqlite3"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "GCDIAL_BASE_URL": emulator.base_url,
        "GENESYSCLOUD_OAUTHCLIENT_ID": emulator.client_id,
        "GENESYSCLOUD_OAUTHCLIENT_SECRET": emulator.client_secret,
    }


def _key(env: dict[str, str], *args: str) -> str:
    made = subprocess.run(
        [GCDIAL, "serve", "keys", "create", *args],
        env=env, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    return made.stdout.strip()


@contextlib.contextmanager
def _process(args: list[str], env: dict[str, str], ready: str) -> Iterator[tuple[Any, str]]:
    """A background process, once its stdout printed a line holding ``ready``; ended after."""
    process = subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=JS
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    try:
        assert ready in line, line + (process.stderr.read() if process.stderr else "")
        yield process, line
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT if args[0] == GCDIAL else signal.SIGTERM)
        try:
            process.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@pytest.mark.timeout(180)
def test_the_node_example_dials_once_resumes_its_stream_and_verifies_webhooks(
    emulator: EmulatorServer, tmp_path: Path
) -> None:
    """The CRM's backend in Node: its first POST times out while Genesys is slow, its retries
    with the same key get 409 + Retry-After then the call (one create-call in the emulator's
    ledger); its event stream is cut after two events and resumed with Last-Event-ID (every event
    once, in order); the receiver accepts the signed call.ended and refuses a forged one."""
    node = _node()
    env = _env(tmp_path, emulator)
    crm = _key(env, "--name", "crm", "--agents", ALICE)
    admin = _key(env, "--name", "ops", "--scopes", "admin")
    emulator.add_fault(route="create_call", mode="latency", seconds=3, count=1)
    serve = [GCDIAL, "serve", "--port", "0", "--allow-insecure-webhooks"]
    with _process(serve, env, "serving at") as (_, line):
        api = line.split()[4]
        port = _free_port()
        hook = httpx.post(
            f"{api}/v1/webhooks",
            json={"url": f"http://127.0.0.1:{port}/hook", "events": ["call.ended"]},
            headers={"Authorization": f"Bearer {admin}"},
            timeout=30,
        )
        assert hook.status_code == 201, hook.text
        receiver_env = {**env, "GCDIAL_WEBHOOK_SECRET": hook.json()["secret"], "PORT": str(port)}
        receiver_args = [node, "examples/webhook-receiver.js"]
        with _process(receiver_args, receiver_env, "listening") as (receiver, _):
            ran = subprocess.run(
                [node, "examples/click-to-dial.js", "--agent", ALICE, "--to", "(415) 555-0100",
                 "--ticket", "4711", "--timeout-ms", "1000", "--drop-after", "2"],
                cwd=JS, env={**env, "GCDIAL_URL": api, "GCDIAL_API_KEY": crm},
                capture_output=True, text=True, timeout=120, check=False,
            )  # fmt: skip
            assert ran.returncode == 0, ran.stdout + ran.stderr
            forged = httpx.post(
                f"http://127.0.0.1:{port}/hook",
                content=b'{"type": "call.ended"}',
                headers={
                    "webhook-id": "evt_1",
                    "webhook-timestamp": str(int(time.time())),
                    "webhook-signature": "v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
                },
                timeout=10,
            )
            assert forged.status_code == 400
            delivered = _wait_for_webhook(receiver)
    out = _lines(ran.stdout)
    placed = next(line for line in out if "placed" in line)
    call_id = placed["placed"]
    # The retries: the timed-out first try, then 409 idempotency_key_in_progress + Retry-After.
    retries = [line["retry"] for line in out if "retry" in line]
    assert retries[0] == "TimeoutError", out
    assert "409 idempotency_key_in_progress" in retries, out
    assert all(line["waitMs"] == 1000 for line in out if line.get("retry", "").startswith("409"))
    assert placed["replayed"] is True
    assert placed["tries"] == len(retries) + 1
    assert [c["phoneNumber"] for c in emulator.calls_created()] == ["+14155550100"]
    # The stream: cut after two events, resumed after the second; each event once, in order.
    ids = [int(line["id"]) for line in out if "event" in line]
    assert {"dropped": True, "resumeAfter": str(ids[1])} in out, out
    assert ids == list(range(ids[0], ids[0] + len(ids))), ids
    events = [line["event"] for line in out if "event" in line]
    assert events[:2] == ["call.placing", "call.placed"]
    assert events[-1] == "call.ended"
    ended = next(line for line in out if "ended" in line)
    assert ended == {
        "ended": call_id,
        "outcome": "answered",
        "events": len(ids),
        "unique": len(ids),
    }
    assert out[-1] == {"history": 1, "pages": 1, "includesThisCall": True}
    # The receiver: the genuine call.ended once, with the ticket; the forgery refused.
    assert delivered["webhook"] == "call.ended"
    assert (delivered["call"], delivered["ticket"], delivered["outcome"]) == (
        call_id,
        "4711",
        "answered",
    )


def _wait_for_webhook(receiver: Any) -> dict[str, Any]:
    """The receiver's verified delivery, once it also refused the forged one (it prints one JSON
    line per delivery, in the order they came)."""
    deadline = time.monotonic() + 30
    rejected = 0
    delivered: dict[str, Any] | None = None
    while time.monotonic() < deadline and (delivered is None or not rejected):
        line = json.loads(receiver.stdout.readline() or "{}")
        if "webhook" in line:
            assert delivered is None, f"delivered twice: {line}"
            delivered = line
        rejected += "rejected" in line
    assert rejected == 1, "the forged delivery was not refused"
    assert delivered is not None, "no verified delivery reached the receiver"
    return delivered
