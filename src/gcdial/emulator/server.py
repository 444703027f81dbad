"""``EmulatorServer``: the emulator under uvicorn in a background thread, for tests and demos."""

import contextlib
from typing import Any, Self

import httpx
import uvicorn
from starlette.applications import Starlette

from gcdial._uvicorn_thread import ThreadedServer, UvicornThread, bind
from gcdial.emulator.app import create_app
from gcdial.emulator.config import EmulatorConfig
from gcdial.emulator.fixtures import ClientSpec
from gcdial.emulator.state import EmulatorState

START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 10.0
ADMIN_TIMEOUT_S = 10.0


class EmulatorError(RuntimeError):
    """The emulator could not start or an admin call failed."""


class EmulatorServer(ThreadedServer):
    """Runs the emulator on ``host``:``port`` (default 127.0.0.1, a free port) until stopped.

    Use as a context manager. ``app`` serves a prebuilt ``create_app`` result instead of
    building one from ``config``. The admin helpers talk to ``/_emulator/*`` over real HTTP, so
    ``config.admin`` must be on for them.
    """

    def __init__(
        self,
        config: EmulatorConfig | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        app: Starlette | None = None,
    ) -> None:
        self.app: Starlette = app if app is not None else create_app(config)
        self.config: EmulatorConfig = self.app.state.emulator.config
        self._host = host
        self._port = port
        self._runner: UvicornThread | None = None
        self._http: httpx.Client | None = None
        self.base_url = ""

    @property
    def state(self) -> EmulatorState:
        """The emulator's in-memory state (read it only while no request is running)."""
        state: EmulatorState = self.app.state.emulator
        return state

    @property
    def client_id(self) -> str:
        """The fixture's first client-credentials client id."""
        return self._first_client().id

    @property
    def client_secret(self) -> str:
        """That client's secret."""
        secret = self._first_client().secret
        assert secret is not None
        return secret

    def _first_client(self) -> ClientSpec:
        return next(c for c in self.state.fixture.clients if c.grant == "client_credentials")

    def start(self) -> Self:
        """Bind, start serving in a background thread and wait until it accepts requests."""
        try:
            sock, self.base_url = bind(self._host, self._port, listen=False)
        except OSError as exc:
            raise EmulatorError(
                f"cannot listen on {self._host}:{self._port}: {exc.strerror}"
            ) from None
        config = uvicorn.Config(
            self.app,
            http="h11",
            ws="websockets-sansio",
            lifespan="on",
            log_config=None,
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=2,
            date_header=False,
        )
        port = sock.getsockname()[1]
        self._runner = UvicornThread(config, name=f"gcdial-emulator-{port}")
        if not self._runner.start(sock, timeout_s=START_TIMEOUT_S):
            failure = self._runner.failure
            self.stop()
            raise EmulatorError(f"the emulator did not start: {failure!r}")
        self._http = httpx.Client(base_url=self.base_url, timeout=ADMIN_TIMEOUT_S)
        return self

    def stop(self) -> None:
        """Stop serving: end pending waits, close sockets and connections, join the thread."""
        if self._http is not None:
            self._http.close()
            self._http = None
        if self._runner is None:
            return
        loop = self._runner.loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self.state.stopping.set)
        self._runner.stop(STOP_TIMEOUT_S)
        self._runner = None

    def _admin(self, method: str, path: str, *, json: Any = None) -> Any:
        if self._http is None:
            raise EmulatorError("the emulator is not running")
        response = self._http.request(method, "/_emulator/" + path, json=json)
        if response.status_code >= 400:
            raise EmulatorError(f"admin {method} {path}: {response.status_code} {response.text}")
        return response.json() if response.content else None

    def calls_created(self) -> list[dict[str, Any]]:
        """Every call created since the last reset (``GET /_emulator/calls``)."""
        calls: list[dict[str, Any]] = self._admin("GET", "calls")["calls"]
        return calls

    def wrapups(self) -> dict[str, Any]:
        """The wrap-up ledger ``{"wrapups", "byCode", "total", "pending"}``
        (``GET /_emulator/wrapups``)."""
        ledger: dict[str, Any] = self._admin("GET", "wrapups")
        return ledger

    def overlaps(self) -> dict[str, Any]:
        """Create-calls for an agent with a live call ``{"overlaps", "byAgent", "total"}``
        (``GET /_emulator/overlaps``)."""
        ledger: dict[str, Any] = self._admin("GET", "overlaps")
        return ledger

    def request_counts(self) -> dict[str, Any]:
        """``{"total", "byRoute", "internalErrors"}`` (``GET /_emulator/requests``)."""
        counts: dict[str, Any] = self._admin("GET", "requests")
        return counts

    def rate_windows(self) -> dict[str, Any]:
        """The rate limiter's windows ``{"windows", "refused"}``, oldest first
        (``GET /_emulator/ratelimit``)."""
        ledger: dict[str, Any] = self._admin("GET", "ratelimit")
        return ledger

    def add_fault(self, **fault: Any) -> str:
        """Put a fault in force (see ``FaultSpec``); returns its id."""
        fault_id: str = self._admin("POST", "faults", json=fault)["id"]
        return fault_id

    def fault_ledger(self) -> list[dict[str, Any]]:
        """Every time a fault acted since the last reset (``GET /_emulator/ledger``)."""
        fired: list[dict[str, Any]] = self._admin("GET", "ledger")["fired"]
        return fired

    def fired(self, fault_id: str) -> int:
        """How many times the fault ``fault_id`` acted since the last reset."""
        counts: dict[str, int] = self._admin("GET", "ledger")["byFault"]
        return counts.get(fault_id, 0)

    def remove_fault(self, fault_id: str) -> None:
        """Remove one fault."""
        self._admin("DELETE", f"faults/{fault_id}")

    def clear_faults(self) -> None:
        """Remove every fault."""
        self._admin("DELETE", "faults")

    def reset(self) -> None:
        """Forget calls, tokens, channels, faults, counters and rate windows."""
        self._admin("POST", "reset")

    def set_speed(self, speed: float) -> None:
        """Change the simulated clock's acceleration."""
        self._admin("POST", "clock", json={"speed": speed})

    def set_analytics(
        self,
        *,
        ingestion_delay: float | None = None,
        include_attributes: bool | None = None,
        filler_conversations: int | None = None,
    ) -> dict[str, Any]:
        """Change the conversation-details knobs given; returns all of them."""
        wanted = {
            "ingestionDelay": ingestion_delay,
            "includeAttributes": include_attributes,
            "fillerConversations": filler_conversations,
        }
        body = {k: v for k, v in wanted.items() if v is not None}
        settings: dict[str, Any] = self._admin("POST", "analytics", json=body)
        return settings

    def expire_tokens(self) -> None:
        """Make every issued token expired."""
        self._admin("POST", "tokens/expire")

    def revoke_tokens(self) -> None:
        """Revoke every issued token."""
        self._admin("POST", "tokens/revoke")

    def close_websockets(self, warn: bool = True) -> int:
        """Close every notification socket, with ``socket_closing`` first when ``warn``."""
        closed: int = self._admin("POST", "websockets/close", json={"warn": warn})["closed"]
        return closed
