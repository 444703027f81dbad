"""Webhook targets (SSRF): only public https addresses, at registration and at every delivery;
the connection goes to the address that was checked; dead letters never tell which ports answer.

The service here runs with the default (strict) settings; the receivers listen on 127.0.0.1,
which is exactly what must be refused.
"""

from __future__ import annotations

import asyncio
import ssl
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from gcdial.serve.config import ServeConfig
from gcdial.serve.server import ServeServer
from gcdial.serve.store import WebhookEndpoint
from gcdial.serve.webhook_targets import (
    GENERIC_REFUSAL,
    GuardedTransport,
    TargetRefused,
    WebhookGuard,
)

from .conftest import Running
from .test_events_webhooks import Receiver, _wait

ALICE = "alice@example.com"
PUBLIC = "93.184.216.34"  # a public address (example.com's, long ago); never connected to here


@pytest.fixture
def serve_config() -> ServeConfig:
    """The defaults: https to public addresses only."""
    return ServeConfig(webhook_schedule=(0.1,), sse_poll_s=0.2, webhook_poll_s=0.1)


@pytest.fixture
def hook_receiver() -> Iterator[tuple[Receiver, str]]:
    state = Receiver()
    with ServeServer(state.app()) as server:
        yield state, server.base_url + "/hook"


INTERNAL_TARGETS = [
    "https://127.0.0.1/hook",
    "https://169.254.169.254/latest/meta-data/",
    "https://[::1]/hook",
    "https://localhost/hook",
    "https://2130706433/hook",  # 127.0.0.1 as one decimal number
    "https://0177.0.0.1/hook",  # octal
    "https://0x7f.0.0.1/hook",  # hex
    "https://127.1/hook",  # short form
    "https://[::ffff:127.0.0.1]/hook",  # IPv4-mapped IPv6
    "https://[::ffff:a9fe:a9fe]/hook",  # 169.254.169.254, mapped and in hex
    "https://0.0.0.0/hook",
    "https://[::]/hook",
    "https://10.0.0.1/hook",
    "https://172.16.0.1/hook",
    "https://192.168.1.1/hook",
    "https://100.64.0.1/hook",  # CGNAT
    "https://[fd00::1]/hook",  # unique local
    "https://[fe80::1]/hook",  # link-local
    "https://224.0.0.1/hook",  # multicast
]


@pytest.mark.parametrize("url", INTERNAL_TARGETS)
def test_internal_targets_are_refused_at_registration(running: Running, url: str) -> None:
    answer = running.http.post(
        "/v1/webhooks", json={"url": url}, headers=running.headers(running.admin_key)
    )
    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    assert (error["type"], error["path"]) == ("webhook_url_refused", "$.url")
    assert error["message"].startswith("url: ")
    listed = running.http.get("/v1/webhooks", headers=running.headers(running.admin_key))
    assert listed.json() == []


def test_http_and_the_emulators_own_routes_are_refused(running: Running) -> None:
    for url in (
        f"{running.emulator.base_url}/_emulator/reset",
        f"http://{PUBLIC}/hook",
        f"https://user:pw@{PUBLIC}/hook",
        "ftp://example.com/hook",
    ):
        answer = running.http.post(
            "/v1/webhooks", json={"url": url}, headers=running.headers(running.admin_key)
        )
        assert answer.status_code == 422, (url, answer.text)
        assert answer.json()["error"]["path"] == "$.url"
    https_only = running.http.post(
        "/v1/webhooks",
        json={"url": f"http://{PUBLIC}/hook"},
        headers=running.headers(running.admin_key),
    )
    assert "https" in https_only.json()["error"]["message"]


def test_a_stored_internal_target_is_refused_at_delivery_with_one_generic_reason(
    running: Running, hook_receiver: tuple[Receiver, str]
) -> None:
    """Endpoints registered before the check (or by the CLI) are checked again per delivery:
    the emulator is not reset, the receiver gets nothing, and the open port (the receiver) and a
    closed one give the same dead-letter reason."""
    state, url = hook_receiver
    closed = "http://127.0.0.1:9/hook"  # discard port: nothing listens there
    reset = f"{running.emulator.base_url}/_emulator/reset"
    for name, target in (("open", url), ("closed", closed), ("reset", reset)):
        running.store.add_webhook(
            WebhookEndpoint(id=name, url=target, secret="whsec_" + "A" * 44, created_at=0)
        )
    call = running.dial({"agent": ALICE, "to": "+14155550100"}, "ssrf-1").json()
    running.wait_call(call["id"], lambda c: c["status"] != "placing")
    _wait(lambda: len({d.endpoint_id for d in running.store.dead_deliveries()}) == 3)
    reasons = {d.endpoint_id: d.last_error for d in running.store.dead_deliveries()}
    assert set(reasons.values()) == {f"refused: {GENERIC_REFUSAL}"}, reasons
    assert state.attempts == 0
    by_route = running.emulator.request_counts()["byRoute"]
    assert by_route.get("POST /oauth/token", 0) >= 1  # no reset wiped the counters


def _flipping(*answers: str) -> tuple[WebhookGuard, list[str]]:
    asked: list[str] = []

    async def resolve(host: str, port: int) -> list[str]:
        asked.append(host)
        return [answers[min(len(asked), len(answers)) - 1]]

    return WebhookGuard(resolve=resolve), asked


def test_a_dns_rebind_between_check_and_delivery_is_refused(
    hook_receiver: tuple[Receiver, str],
) -> None:
    """The name resolves to a public address when registered, then to loopback: the delivery
    resolves again, refuses, and connects nowhere."""
    state, url = hook_receiver
    port = httpx.URL(url).port
    guard, asked = _flipping(PUBLIC, "127.0.0.1")
    target = f"https://crm.example.test:{port}/hook"

    async def scenario() -> None:
        assert await guard.pin(target) == PUBLIC  # registration
        async with guard.client(2.0) as client:
            with pytest.raises(TargetRefused):
                await client.post(target, content=b"{}")

    asyncio.run(scenario())
    assert asked == ["crm.example.test", "crm.example.test"]
    assert state.attempts == 0


def test_the_connection_goes_to_the_checked_address_with_the_name_in_host(
    hook_receiver: tuple[Receiver, str],
) -> None:
    """A name that no DNS knows is reached through the address the guard resolved (allowed
    here: insecure mode), so the connect cannot resolve the name a second time."""
    state, url = hook_receiver
    port = httpx.URL(url).port

    async def resolve(host: str, port: int) -> list[str]:
        return ["127.0.0.1"]

    guard = WebhookGuard(allow_insecure=True, resolve=resolve)

    async def scenario() -> int:
        async with guard.client(5.0) as client:
            answer = await client.post(f"http://crm.example.test:{port}/hook", content=b"{}")
            return answer.status_code

    assert asyncio.run(scenario()) == 204
    assert state.got[0]["headers"]["host"] == f"crm.example.test:{port}"


def test_redirects_are_not_followed() -> None:
    hits: list[str] = []

    async def hook(request: Request) -> Response:
        hits.append(request.url.path)
        if request.url.path == "/hook":
            return RedirectResponse("/elsewhere", status_code=307)
        return Response(status_code=204)

    app = Starlette(routes=[Route("/{path:path}", hook, methods=["POST"])])
    guard = WebhookGuard(allow_insecure=True)
    with ServeServer(app) as server:

        async def scenario() -> int:
            async with guard.client(5.0) as client:
                answer = await client.post(server.base_url + "/hook", content=b"{}")
                return answer.status_code

        assert asyncio.run(scenario()) == 307
    assert hits == ["/hook"]


def test_a_public_https_target_passes_the_check() -> None:
    async def resolve(host: str, port: int) -> list[str]:
        return [PUBLIC, "2606:2800:220:1:248:1893:25c8:1946"]

    guard = WebhookGuard(resolve=resolve)
    assert asyncio.run(guard.pin("https://crm.example.com/hooks/gcdial")) == PUBLIC


def test_one_internal_address_among_public_ones_is_refused() -> None:
    async def resolve(host: str, port: int) -> list[str]:
        return [PUBLIC, "10.1.2.3"]

    with pytest.raises(TargetRefused, match="private"):
        asyncio.run(WebhookGuard(resolve=resolve).pin("https://crm.example.com/hook"))


def _self_signed(name: str, folder: Path) -> tuple[Path, Path]:
    """A certificate for ``name`` (its own issuer) and its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


def test_tls_goes_to_the_checked_address_with_the_name_as_sni_and_certificate(
    tmp_path: Path,
) -> None:
    """Over https the name is the TLS server name: the receiver sees it as SNI, and its
    certificate is checked against it (not against the address connected to)."""
    name = "crm.example.test"
    cert_file, key_file = _self_signed(name, tmp_path)
    seen: dict[str, str] = {}

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            seen["host"] = self.headers["Host"]
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_tls.load_cert_chain(cert_file, key_file)

    def note_sni(_sock: ssl.SSLObject, sni: str | None, _ctx: ssl.SSLContext) -> None:
        seen["sni"] = str(sni)

    server_tls.sni_callback = note_sni
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    httpd.socket = server_tls.wrap_socket(httpd.socket, server_side=True)
    port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()

    async def resolve(host: str, port: int) -> list[str]:
        return ["127.0.0.1"]

    guard = WebhookGuard(allow_insecure=True, resolve=resolve)  # loopback allowed for the test
    client_tls = ssl.create_default_context(cafile=str(cert_file))

    async def scenario() -> int:
        transport = GuardedTransport(guard, httpx.AsyncHTTPTransport(verify=client_tls))
        async with httpx.AsyncClient(transport=transport, timeout=5.0) as client:
            answer = await client.post(f"https://{name}:{port}/hook", content=b"{}")
            return answer.status_code

    try:
        assert asyncio.run(scenario()) == 204
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert seen == {"sni": name, "host": f"{name}:{port}"}
