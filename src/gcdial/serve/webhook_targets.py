"""Where webhooks may go: https to public addresses only, checked at registration and at every
delivery, and connected to exactly the address that was checked.

A webhook URL comes from a client, so it is hostile until checked: left alone it lets an API key
make the service POST to its own loopback, the cloud metadata address or the office network
(server-side request forgery). The host is resolved (so every notation of an address, decimal
``2130706433``, octal, hex, short forms, IPv4-mapped IPv6, is judged by the address it really
is) and every address it resolves to must be public. The request then goes to that address with
the name kept in the Host header and the TLS SNI, so a DNS answer that changes between the check
and the connect (a rebind) cannot reach an internal address. Redirects are never followed.

``allow_insecure`` (``--sandbox`` or ``--allow-insecure-webhooks``) lifts both rules, for
receivers on the developer's own machine.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx

__all__ = [
    "GENERIC_REFUSAL",
    "GuardedTransport",
    "TargetRefused",
    "WebhookGuard",
    "address_problem",
    "system_resolve",
]

Resolver = Callable[[str, int], Awaitable[list[str]]]
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

GENERIC_REFUSAL = "the webhook URL is not a public https address"
"""The only reason a delivery gives for a refused target: it never tells which ports answer."""

_CGNAT = ipaddress.ip_network("100.64.0.0/10")


class TargetRefused(Exception):
    """A webhook URL the service will not call; ``message`` says why, fit for the client that
    registered it (never whether anything listens there)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def address_problem(ip: IPAddress) -> str | None:
    """Why a webhook may not go to ``ip`` (a kind of address), or None for a public one."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is not None:
            return address_problem(embedded)
        if ip.teredo is not None:
            return "a Teredo tunnel address"
    checks: list[tuple[bool, str]] = [
        (ip.is_unspecified, "the unspecified address"),
        (ip.is_loopback, "a loopback address"),
        # IPv4-compatible IPv6 (::a.b.c.d, deprecated) reaches the embedded IPv4 on some stacks.
        (ip.version == 6 and ip.packed[:12] == bytes(12), "an IPv4-compatible IPv6 address"),
        (ip.is_link_local, "a link-local address (this includes cloud metadata)"),
        (ip.is_multicast, "a multicast address"),
        (isinstance(ip, ipaddress.IPv4Address) and ip in _CGNAT, "a shared (CGNAT) address"),
        (ip.is_private, "a private address"),
        (ip.is_reserved, "a reserved address"),
        (not ip.is_global, "not a public address"),
    ]
    return next((why for bad, why in checks if bad), None)


async def system_resolve(host: str, port: int) -> list[str]:
    """The addresses ``host`` resolves to (literals in any notation included), IPv4 first."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    found = [str(info[4][0]).split("%", 1)[0] for info in infos]
    return sorted(dict.fromkeys(found), key=lambda a: ":" in a)


@dataclass(frozen=True)
class WebhookGuard:
    """The one decision on webhook targets; ``pin`` runs at registration and per delivery."""

    allow_insecure: bool = False
    resolve: Resolver = system_resolve

    def check_shape(self, url: str) -> httpx.URL:
        """The URL parsed, or ``TargetRefused`` for a scheme, credentials or host not allowed."""
        try:
            parsed = httpx.URL(url)
        except (httpx.InvalidURL, TypeError):
            raise TargetRefused("the URL cannot be parsed") from None
        allowed = ("https", "http") if self.allow_insecure else ("https",)
        if parsed.scheme not in allowed:
            raise TargetRefused(
                "webhook URLs must use https (http only with --sandbox or "
                "--allow-insecure-webhooks)"
            )
        if not parsed.host:
            raise TargetRefused("the URL has no host")
        if parsed.userinfo:
            raise TargetRefused("the URL must not carry a user name or password")
        return parsed

    async def pin(self, url: str | httpx.URL) -> str:
        """The address to connect to for ``url``: every address its host resolves to is checked;
        raises ``TargetRefused`` when one is not allowed or the host does not resolve."""
        parsed = self.check_shape(str(url))
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        try:
            addresses = await self.resolve(parsed.host, port)
        except (OSError, UnicodeError):
            raise TargetRefused(f"the host {parsed.host!r} does not resolve") from None
        if not addresses:
            raise TargetRefused(f"the host {parsed.host!r} does not resolve")
        if not self.allow_insecure:
            for address in addresses:
                try:
                    why = address_problem(ipaddress.ip_address(address))
                except ValueError:
                    why = "not an IP address"
                if why is not None:
                    raise TargetRefused(f"the host {parsed.host!r} is {why}; {GENERIC_REFUSAL}")
        return addresses[0]

    def client(self, timeout_s: float) -> httpx.AsyncClient:
        """The HTTP client for deliveries: pinned addresses, no redirects, no proxies from the
        environment (a proxy would connect to the name, not the checked address)."""
        return httpx.AsyncClient(
            transport=GuardedTransport(self),
            timeout=timeout_s,
            follow_redirects=False,
            trust_env=False,
        )


class GuardedTransport(httpx.AsyncBaseTransport):
    """Checks each request's target with the guard, then connects to the checked address,
    keeping the name in the Host header and as the TLS server name (SNI and certificate)."""

    def __init__(self, guard: WebhookGuard, inner: httpx.AsyncBaseTransport | None = None) -> None:
        self._guard = guard
        self._inner = inner or httpx.AsyncHTTPTransport(trust_env=False)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` to the pinned address (``TargetRefused`` when there is none)."""
        name = request.url.host
        address = await self._guard.pin(request.url)
        request.url = request.url.copy_with(host=address)
        if request.url.scheme == "https":
            request.extensions = {**request.extensions, "sni_hostname": name}
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        """Close the pooled connections."""
        await self._inner.aclose()
