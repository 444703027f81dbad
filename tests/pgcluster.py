"""A throwaway PostgreSQL cluster for tests and development, from the machine's server binaries.

``PgCluster().start()`` finds ``initdb``/``pg_ctl``/``postgres`` (``GCDIAL_PG_BINDIR``, then the
newest ``/usr/lib/postgresql/*/bin``, then ``pg_ctl`` on PATH), creates a cluster in a new temp
directory and starts it on a free loopback port with a private socket directory. The server
refuses to run as root, so under root (CI) the cluster is owned and run by the ``postgres`` user,
created as a system user when the machine has none.

Never left running:
- ``stop()`` shuts the server down and removes the directory (the pytest fixture always calls it);
- a watchdog process holds the read end of a pipe whose write end only this process has: when
  this process dies in any way (kill -9 included) the pipe closes and the watchdog stops the
  server and removes the directory;
- a cluster directory whose owning process is gone (the watchdog killed too) is reaped by the
  next ``start()``.

Run ``python tests/pgcluster.py`` for a cluster to develop against: it prints the URL and runs
until Ctrl-C.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gcdial.emulator import EmulatorServer

DIR_PREFIX = "gcdial-pg-"
SUPERUSER = "gcdial"
START_TIMEOUT_S = 60
PORT_ATTEMPTS = 5
SERVER_USER = "postgres"
FALLBACK_USER = "gcdial-pg"

INSTALL_HINT = (
    "`make test` installs Debian's `postgresql` package when no server binaries are found; "
    "by hand: apt-get update && apt-get install -y postgresql (or set GCDIAL_PG_BINDIR to the "
    "directory holding initdb, pg_ctl and postgres)"
)

# Runs detached, as its own session: a Ctrl-C to the test run's process group must not end it.
# argv: base directory. It waits for EOF on stdin, then stops the postmaster named in
# data/postmaster.pid (SIGQUIT = immediate shutdown; SIGKILL if it lingers) and removes the dir.
_WATCHDOG = r"""
import os, shutil, signal, sys, time
sys.stdin.buffer.read()
base = sys.argv[1]
try:
    with open(os.path.join(base, "data", "postmaster.pid")) as f:
        pid = int(f.readline())
except (OSError, ValueError):
    pid = 0
if pid > 0:
    try:
        os.kill(pid, signal.SIGQUIT)
        for _ in range(100):
            time.sleep(0.1)
            os.kill(pid, 0)
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
shutil.rmtree(base, ignore_errors=True)
"""


class PgClusterError(RuntimeError):
    """The throwaway cluster could not be set up; the message says why and what to do."""


@dataclass(frozen=True)
class ServerUser:
    """Who runs the server: ``None`` uid means this process's own user."""

    name: str
    uid: int | None
    gid: int | None


def find_bindir() -> Path | None:
    """The directory holding initdb, pg_ctl and postgres, or None when the machine has none."""
    if env := os.environ.get("GCDIAL_PG_BINDIR"):
        # Set by hand, it is the only place to look: a wrong value must show, not fall back.
        return Path(env) if has_server_tools(Path(env)) else None
    candidates = sorted(
        (Path(p) for p in glob.glob("/usr/lib/postgresql/*/bin")),
        key=lambda p: _version_key(p.parent.name),
        reverse=True,
    )
    if on_path := shutil.which("pg_ctl"):
        candidates.append(Path(on_path).resolve().parent)
    for bindir in candidates:
        if has_server_tools(bindir):
            return bindir
    return None


def has_server_tools(bindir: Path) -> bool:
    """True when the directory holds initdb, pg_ctl and postgres."""
    return all((bindir / tool).is_file() for tool in ("initdb", "pg_ctl", "postgres"))


def _version_key(name: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", name)) or (0,)


def server_user() -> ServerUser:
    """The unprivileged user for the server: ourselves, or under root ``postgres`` (created if
    missing, as a system user)."""
    if os.geteuid() != 0:
        return ServerUser(pwd.getpwuid(os.geteuid()).pw_name, None, None)
    for name in (SERVER_USER, FALLBACK_USER):
        with contextlib.suppress(KeyError):
            entry = pwd.getpwnam(name)
            return ServerUser(name, entry.pw_uid, entry.pw_gid)
    created = subprocess.run(
        ["useradd", "--system", "--user-group", "--no-create-home", FALLBACK_USER],
        capture_output=True,
        text=True,
        check=False,
    )
    if created.returncode != 0:
        raise PgClusterError(
            f"PostgreSQL refuses to run as root and this machine has no {SERVER_USER!r} user; "
            f"creating {FALLBACK_USER!r} failed: {created.stderr.strip()}"
        )
    entry = pwd.getpwnam(FALLBACK_USER)
    return ServerUser(FALLBACK_USER, entry.pw_uid, entry.pw_gid)


def free_port() -> int:
    """A loopback port free right now (the start retries if another process takes it first)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def reap_stale(tmp_root: Path | None = None) -> list[Path]:
    """Stop and remove cluster directories whose owning process is gone; returns those reaped."""
    root = tmp_root or Path(tempfile.gettempdir())
    reaped = []
    for base in root.glob(f"{DIR_PREFIX}*"):
        try:
            owner = int((base / "owner.pid").read_text())
        except (OSError, ValueError):
            # A directory still being set up has no owner file for a few milliseconds.
            if time.time() - base.stat().st_mtime < 60:
                continue
            owner = 0
        if owner and _pid_alive(owner):
            continue
        try:
            postmaster = int((base / "data" / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            postmaster = 0
        if postmaster and _pid_alive(postmaster):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(postmaster, signal.SIGQUIT)
            deadline = time.monotonic() + 10
            while _pid_alive(postmaster) and time.monotonic() < deadline:
                time.sleep(0.1)
        shutil.rmtree(base, ignore_errors=True)
        reaped.append(base)
    return reaped


class PgCluster:
    """One throwaway cluster: ``start()``, ``url(dbname)``, ``restart()``, ``stop()``."""

    def __init__(
        self, *, bindir: Path | None = None, tmp_root: Path | None = None, durable: bool = False
    ) -> None:
        self._bindir = bindir
        self._tmp_root = tmp_root
        # Durable: fsync and synchronous commit on, as a production server (the benchmarks that
        # set PostgreSQL against SQLite with fsync per commit); a test cluster leaves them off.
        self._durable = durable
        self._user: ServerUser | None = None
        self.base: Path | None = None
        self.port = 0
        self._watchdog: subprocess.Popen[bytes] | None = None
        self._watchdog_pipe: int | None = None

    @property
    def datadir(self) -> Path:
        assert self.base is not None, "cluster not started"
        return self.base / "data"

    @property
    def sockdir(self) -> Path:
        assert self.base is not None, "cluster not started"
        return self.base / "sock"

    @property
    def logfile(self) -> Path:
        assert self.base is not None, "cluster not started"
        return self.base / "server.log"

    @property
    def _user_name(self) -> str:
        return self._user.name if self._user else "?"

    def url(self, dbname: str = "postgres") -> str:
        """A libpq URL for the database over loopback TCP (trust auth: no password)."""
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{dbname}"

    def start(self) -> PgCluster:
        """Create the cluster and start it; raises PgClusterError with the cause and a fix."""
        bindir = self._bindir or find_bindir()
        if bindir is None or not has_server_tools(bindir):
            where = os.environ.get("GCDIAL_PG_BINDIR") or bindir or "this machine"
            raise PgClusterError(f"no PostgreSQL server binaries in {where}. {INSTALL_HINT}")
        self._bindir = bindir
        reap_stale(self._tmp_root)
        self._user = server_user()
        self.base = Path(tempfile.mkdtemp(prefix=DIR_PREFIX, dir=self._tmp_root))
        (self.base / "owner.pid").write_text(str(os.getpid()))
        self.sockdir.mkdir()
        if self._user.uid is not None:
            for path in (self.base, self.sockdir):
                os.chown(path, self._user.uid, self._user.gid or -1)
        self._start_watchdog()
        try:
            self._initdb()
            self._start_server()
        except BaseException:
            self.stop()
            raise
        return self

    def _start_watchdog(self) -> None:
        read_end, write_end = os.pipe()
        try:
            self._watchdog = subprocess.Popen(
                [sys.executable, "-c", _WATCHDOG, str(self.base)],
                stdin=read_end,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
        finally:
            os.close(read_end)
        self._watchdog_pipe = write_end

    def _run(self, args: list[str], *, timeout: float) -> subprocess.CompletedProcess[str]:
        assert self._user is not None
        assert self.base is not None
        kwargs: dict[str, object] = {}
        if self._user.uid is not None:
            kwargs = {"user": self._user.uid, "group": self._user.gid, "extra_groups": []}
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LC_ALL": "C",
            "HOME": str(self.base),
        }
        return subprocess.run(  # type: ignore[call-overload,no-any-return]
            args,
            capture_output=True,
            text=True,
            check=False,
            cwd=self.base,
            env=env,
            timeout=timeout,
            **kwargs,
        )

    def _initdb(self) -> None:
        assert self._bindir is not None
        done = self._run(
            [
                str(self._bindir / "initdb"),
                "-D",
                str(self.datadir),
                "-U",
                SUPERUSER,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ],
            timeout=120,
        )
        if done.returncode != 0:
            raise PgClusterError(
                f"initdb failed (exit {done.returncode}) as user {self._user_name}"
                f" in {self.datadir}:\n{done.stdout[-2000:]}{done.stderr[-2000:]}"
            )

    def _start_server(self) -> None:
        failures = []
        for _ in range(PORT_ATTEMPTS):
            self.port = free_port()
            problem = self._pg_ctl_start()
            if problem is None:
                return
            failures.append(problem)
            if "already in use" not in problem and "could not bind" not in problem:
                break
        raise PgClusterError(
            f"PostgreSQL did not start (binaries {self._bindir}, user {self._user_name},"
            f" port {self.port}):\n" + "\n---\n".join(failures)
        )

    def _pg_ctl_start(self) -> str | None:
        """Start the server on ``self.port``; None when up, else the reason with the log tail."""
        assert self._bindir is not None
        settings = [
            f"-p {self.port}",
            "-c listen_addresses=127.0.0.1",
            f"-c unix_socket_directories={self.sockdir}",
            "-c max_connections=300",
            "-c shared_buffers=32MB",
        ]
        if not self._durable:
            # A throwaway cluster: durability is not wanted, speed is.
            settings += ["-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"]
        options = " ".join(settings)
        log_size = self.logfile.stat().st_size if self.logfile.exists() else 0
        try:
            done = self._run(
                [
                    str(self._bindir / "pg_ctl"),
                    "start",
                    "-D",
                    str(self.datadir),
                    "-l",
                    str(self.logfile),
                    "-w",
                    "-t",
                    str(START_TIMEOUT_S),
                    "-o",
                    options,
                ],
                timeout=START_TIMEOUT_S + 10,
            )
        except subprocess.TimeoutExpired:
            limit = START_TIMEOUT_S + 10
            return f"pg_ctl start did not return in {limit}s\n{self._log_tail(log_size)}"
        if done.returncode == 0:
            return None
        self._pg_ctl("stop", "-m", "immediate")
        reason = f"pg_ctl start: exit {done.returncode}: {done.stderr.strip()}"
        return f"{reason}\n{self._log_tail(log_size)}"

    def _log_tail(self, since: int) -> str:
        try:
            with self.logfile.open("rb") as f:
                f.seek(since)
                text = f.read().decode(errors="replace")
        except OSError:
            return "(no server log)"
        return "server log:\n" + "\n".join(text.splitlines()[-20:])

    def _pg_ctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        assert self._bindir is not None
        return self._run(
            [str(self._bindir / "pg_ctl"), *args, "-D", str(self.datadir), "-w", "-t", "30"],
            timeout=40,
        )

    def is_running(self) -> bool:
        """True while the postmaster of this cluster is alive."""
        try:
            pid = int((self.datadir / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError, AssertionError):
            return False
        return _pid_alive(pid)

    def stop_server(self, mode: str = "fast") -> None:
        """Stop the server but keep the cluster (``start_server()`` brings it back, same port)."""
        if self.is_running():
            done = self._pg_ctl("stop", "-m", mode)
            if done.returncode != 0 and self.is_running():
                self._pg_ctl("stop", "-m", "immediate")

    def start_server(self) -> None:
        """Start the stopped server again on the same port."""
        problem = self._pg_ctl_start()
        if problem is not None:
            raise PgClusterError(f"PostgreSQL did not restart on port {self.port}:\n{problem}")

    def restart(self, mode: str = "fast") -> None:
        """Stop and start the server (every client connection is cut)."""
        self.stop_server(mode)
        self.start_server()

    def stop(self) -> None:
        """Stop the server and remove its directory; safe to call twice."""
        if self.base is None:
            return
        with contextlib.suppress(Exception):
            self.stop_server("fast")
        if self.is_running():
            with contextlib.suppress(Exception):
                self.stop_server("immediate")
        shutil.rmtree(self.base, ignore_errors=True)
        self.base = None
        if self._watchdog_pipe is not None:
            os.close(self._watchdog_pipe)
            self._watchdog_pipe = None
        if self._watchdog is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._watchdog.wait(timeout=15)
            self._watchdog = None

    def __enter__(self) -> PgCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def skip_allowed() -> bool:
    """A developer may set GCDIAL_PG_ALLOW_SKIP=1 to skip these tests; never honoured on CI."""
    on_ci = os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")
    return not on_ci and os.environ.get("GCDIAL_PG_ALLOW_SKIP", "") == "1"


def main() -> None:
    """Run a cluster until Ctrl-C, for development."""
    with PgCluster() as cluster:
        print(f"GCDIAL_DATABASE_URL={cluster.url()}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            signal.pause()


if __name__ == "__main__":
    main()


def replica_env(
    emulator: EmulatorServer, pg_url: str, tmp_path: Path, **extra: str
) -> dict[str, str]:
    """The environment of a ``gcdial serve`` replica on ``pg_url`` against ``emulator``: nothing
    of this machine's gcdial or Genesys settings, no profile, no colour, any hour to call."""
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(("GCDIAL_", "GENESYS"))},
        "GCDIAL_DATABASE_URL": pg_url,
        "GCDIAL_BASE_URL": emulator.base_url,
        "GENESYSCLOUD_OAUTHCLIENT_ID": emulator.client_id,
        "GENESYSCLOUD_OAUTHCLIENT_SECRET": emulator.client_secret,
        "GCDIAL_CONFIG_FILE": str(tmp_path / "none.toml"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "NO_COLOR": "1",
        # The tests dial at whatever hour the clock shows (see tests/conftest.py).
        "GCDIAL_SERVE_CALLING_WINDOW": "00:00-24:00",
        **extra,
    }
