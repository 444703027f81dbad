"""``GCDIAL_DATABASE_URL`` as a user meets it on the command line: keys land in PostgreSQL, and a
wrong or unreachable URL is a clear error, with no traceback and no password."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import psycopg

GCDIAL = Path(sys.executable).parent / "gcdial"


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("GCDIAL_")}
    return subprocess.run(
        [str(GCDIAL), *args],
        env={**base, "NO_COLOR": "1", **env},
        capture_output=True,
        text=True,
        timeout=40,
        check=False,
    )


def test_keys_are_stored_in_postgres_as_hashes(pg_url: str, tmp_path: Path) -> None:
    env = {"GCDIAL_DATABASE_URL": pg_url, "GCDIAL_SERVE_STORE": str(tmp_path / "unused.db")}
    made = _run(env, "serve", "keys", "create", "--name", "crm", "--json")
    assert made.returncode == 0, made.stderr
    key = json.loads(made.stdout)["key"]
    listed = _run(env, "serve", "keys", "list", "--json")
    assert [row["name"] for row in json.loads(listed.stdout)] == ["crm"]
    with psycopg.connect(pg_url) as conn:
        stored = conn.execute("SELECT key_hash FROM api_keys").fetchall()
        assert len(stored) == 1
        assert key not in str(stored)
    assert not (tmp_path / "unused.db").exists()


def test_a_url_that_is_not_postgresql_is_refused_clearly() -> None:
    done = _run({"GCDIAL_DATABASE_URL": "mysql://root:hunter2@db/x"}, "serve", "keys", "list")
    assert done.returncode == 2
    assert "GCDIAL_DATABASE_URL must be a PostgreSQL URL, not scheme 'mysql'" in done.stderr
    assert "Traceback" not in done.stderr
    assert "hunter2" not in done.stderr + done.stdout


def test_store_flag_and_database_url_together_are_refused(pg_url: str, tmp_path: Path) -> None:
    env = {"GCDIAL_DATABASE_URL": pg_url}
    done = _run(env, "serve", "keys", "list", "--store", str(tmp_path / "x.db"))
    assert done.returncode == 2
    assert "--store names a SQLite file but GCDIAL_DATABASE_URL is set" in done.stderr


def test_an_unreachable_database_is_a_clear_error_without_the_password() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"postgresql://gcdial:hunter2@127.0.0.1:{port}/gcdial"
    done = _run({"GCDIAL_DATABASE_URL": url}, "serve", "--sandbox", "--port", "0")
    assert done.returncode == 2, done.stderr
    assert f"cannot reach PostgreSQL at 127.0.0.1:{port}/gcdial" in done.stderr
    assert "Traceback" not in done.stderr
    assert "hunter2" not in done.stderr + done.stdout
