"""The throwaway PostgreSQL cluster: it starts as an unprivileged user, survives a taken port and a
stale directory, says clearly why it cannot start, fails (not skips) on CI, and is never left
running, even when the process that started it is killed with -9."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

import pgcluster
from pgcluster import PgCluster, PgClusterError, reap_stale, skip_allowed

TESTS_DIR = Path(__file__).resolve().parents[1]
REPO = TESTS_DIR.parent


def _uid_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    raise AssertionError(f"no Uid line for {pid}")


def _postmaster_pid(datadir: Path) -> int:
    return int((datadir / "postmaster.pid").read_text().split()[0])


def _wait_until(check: Callable[[], bool], timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return check()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie child of ours still answers kill(0); it is not running.
    status = Path(f"/proc/{pid}/status")
    return status.exists() and "State:\tZ" not in status.read_text()


def test_session_cluster_serves_sql_as_unprivileged_user(pg_cluster: PgCluster) -> None:
    with psycopg.connect(pg_cluster.url()) as conn:
        row = conn.execute("SELECT current_user, inet_server_addr()::text").fetchone()
    assert row is not None
    assert row[0] == pgcluster.SUPERUSER
    assert row[1].startswith("127.0.0.1")
    assert _uid_of(_postmaster_pid(pg_cluster.datadir)) != 0


def _durability(url: str) -> tuple[str, str, str]:
    with psycopg.connect(url) as conn:
        got = [conn.execute(f"SHOW {name}").fetchone() for name in
               ("fsync", "synchronous_commit", "full_page_writes")]  # fmt: skip
    assert all(row is not None for row in got)
    return (got[0][0], got[1][0], got[2][0])  # type: ignore[index]


def test_a_test_cluster_skips_fsync_and_a_durable_one_keeps_it(pg_cluster: PgCluster) -> None:
    # The benchmarks that set PostgreSQL against SQLite (which fsyncs each commit) start theirs
    # durable, as a production server runs.
    assert _durability(pg_cluster.url()) == ("off", "off", "off")
    with PgCluster(durable=True) as durable:
        assert _durability(durable.url()) == ("on", "on", "on")


def test_pg_url_is_a_fresh_database_per_test(pg_url: str) -> None:
    with psycopg.connect(pg_url) as conn:
        conn.execute("CREATE TABLE marker (x int)")
        tables = conn.execute(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
        ).fetchone()
    assert tables == (1,)


def test_pg_url_again_starts_empty(pg_url: str) -> None:
    with psycopg.connect(pg_url) as conn:
        tables = conn.execute(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
        ).fetchone()
    assert tables == (0,)


def test_restart_cuts_connections_and_serves_again_on_the_same_port(
    pg_cluster: PgCluster, pg_url: str
) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        pg_cluster.restart()
        with pytest.raises(psycopg.OperationalError):
            conn.execute("SELECT 1")
    with psycopg.connect(pg_url) as again:
        assert again.execute("SELECT 1").fetchone() == (1,)


@pytest.fixture
def tmp_root() -> Iterator[Path]:
    """A directory the unprivileged server user can traverse (pytest's tmp_path is not)."""
    root = Path(tempfile.mkdtemp(prefix="gcdial-pgtest-"))
    root.chmod(0o711)
    yield root
    shutil.rmtree(root, ignore_errors=True)


def test_a_taken_port_is_retried_on_another(
    tmp_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        ports = iter([busy])
        real_free_port = pgcluster.free_port
        monkeypatch.setattr(pgcluster, "free_port", lambda: next(ports, None) or real_free_port())
        with PgCluster(tmp_root=tmp_root) as cluster:
            assert cluster.port != busy
            with psycopg.connect(cluster.url()) as conn:
                assert conn.execute("SELECT 1").fetchone() == (1,)
            base = cluster.base
        assert base is not None
        assert not base.exists()


def test_missing_binaries_are_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(PgClusterError) as caught:
        PgCluster(bindir=tmp_path).start()
    message = str(caught.value)
    assert "no PostgreSQL server binaries" in message
    assert "apt-get install -y postgresql" in message


def test_a_stale_directory_of_a_dead_run_is_reaped(tmp_path: Path) -> None:
    stale = tmp_path / f"{pgcluster.DIR_PREFIX}old"
    (stale / "data").mkdir(parents=True)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (stale / "owner.pid").write_text(str(dead.pid))
    live = tmp_path / f"{pgcluster.DIR_PREFIX}live"
    live.mkdir()
    (live / "owner.pid").write_text(str(os.getpid()))
    assert reap_stale(tmp_path) == [stale]
    assert not stale.exists()
    assert live.exists()


_ORPHAN = """
import os, sys
sys.path.insert(0, sys.argv[1])
from pathlib import Path
from pgcluster import PgCluster
cluster = PgCluster(tmp_root=Path(sys.argv[2])).start()
pid = int((cluster.datadir / "postmaster.pid").read_text().split()[0])
print(pid, cluster._watchdog.pid, cluster.base, flush=True)
sys.stdin.read()
"""


def _orphaned_cluster(tmp_root: Path) -> tuple[subprocess.Popen[str], int, int, Path]:
    owner = subprocess.Popen(
        [sys.executable, "-c", _ORPHAN, str(TESTS_DIR), str(tmp_root)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert owner.stdout is not None
    postmaster, watchdog, base = owner.stdout.readline().split()
    return owner, int(postmaster), int(watchdog), Path(base)


def test_kill_9_of_the_owner_stops_the_server(tmp_root: Path) -> None:
    owner, postmaster, _watchdog, base = _orphaned_cluster(tmp_root)
    try:
        assert _alive(postmaster)
        owner.kill()
        owner.wait()
        assert _wait_until(lambda: not _alive(postmaster)), "server left running"
        assert _wait_until(lambda: not base.exists()), "cluster directory left behind"
    finally:
        owner.kill()
        if owner.stdin is not None:
            owner.stdin.close()
        if owner.stdout is not None:
            owner.stdout.close()


def test_kill_9_of_owner_and_watchdog_is_reaped_by_the_next_start(tmp_root: Path) -> None:
    owner, postmaster, watchdog, base = _orphaned_cluster(tmp_root)
    try:
        os.kill(watchdog, signal.SIGKILL)
        owner.kill()
        owner.wait()
        assert _alive(postmaster)
        assert reap_stale(tmp_root) == [base]
        assert not _alive(postmaster)
        assert not base.exists()
    finally:
        owner.kill()
        if owner.stdin is not None:
            owner.stdin.close()
        if owner.stdout is not None:
            owner.stdout.close()


def test_skip_is_never_allowed_on_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GCDIAL_PG_ALLOW_SKIP", "1")
    monkeypatch.setenv("CI", "true")
    assert not skip_allowed()
    monkeypatch.delenv("CI")
    assert skip_allowed()
    monkeypatch.delenv("GCDIAL_PG_ALLOW_SKIP")
    assert not skip_allowed()


def _run_pytest_without_server(env_overrides: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "GCDIAL_PG_ALLOW_SKIP")}
    env.update(env_overrides, GCDIAL_PG_BINDIR="/nonexistent/pg/bin")
    target = f"{Path(__file__).relative_to(REPO)}::test_pg_url_again_starts_empty"
    return subprocess.run(
        [sys.executable, "-m", "pytest", target, "-p", "no:cacheprovider", "-q", "-rs"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=50,
        check=False,
    )


def test_no_server_fails_on_ci_even_when_skip_is_asked() -> None:
    done = _run_pytest_without_server({"CI": "true", "GCDIAL_PG_ALLOW_SKIP": "1"})
    assert done.returncode == 1, done.stdout
    assert "1 error" in done.stdout
    assert "no PostgreSQL server binaries in /nonexistent/pg/bin" in done.stdout
