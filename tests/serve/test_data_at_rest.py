"""Data at rest: the store, campaign journals, uploads and reports are 0600 (fixed with a warning
when found wider), and webhook signing secrets are encrypted in the store."""

from __future__ import annotations

import base64
import logging
import os
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from cryptography.fernet import Fernet

from gcdial.campaign.journal import Journal
from gcdial.errors import ConfigError
from gcdial.serve.pg_store import PostgresStore
from gcdial.serve.secretbox import SECRET_KEY_ENV, SecretBox, load_box
from gcdial.serve.sqlite_store import SqliteStore
from gcdial.serve.store import WebhookEndpoint

from .conftest import Running

GCDIAL = Path(sys.executable).parent / "gcdial"
SECRET = "whsec_" + "Q" * 43 + "="
SIDE = ("", "-wal", "-shm")


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(autouse=True)
def loose_umask() -> Iterator[None]:
    """The usual umask (files 0644 by default): what made the store readable by all."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


@pytest.fixture(autouse=True)
def no_key_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SECRET_KEY_ENV, raising=False)


def _endpoint(secret: str = SECRET) -> WebhookEndpoint:
    return WebhookEndpoint(id="wh_1", url="https://crm.example.com/h", secret=secret, created_at=0)


def test_a_new_store_and_its_side_files_are_0600(tmp_path: Path) -> None:
    path = tmp_path / "serve.sqlite3"
    store = SqliteStore(path)
    try:
        store.add_webhook(_endpoint())  # a write: the -wal and -shm exist now
        for suffix in SIDE:
            assert _mode(path.with_name(path.name + suffix)) == 0o600, suffix
        assert _mode(tmp_path / "serve.sqlite3.key") == 0o600
    finally:
        store.close()


def test_a_store_found_readable_by_others_is_fixed_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "serve.sqlite3"
    sqlite3.connect(path).execute("PRAGMA journal_mode=WAL").fetchall()  # as an older gcdial
    path.chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="gcdial.files"):
        store = SqliteStore(path)
    try:
        assert _mode(path) == 0o600
        assert any(str(path) in r.getMessage() and "0600" in r.getMessage() for r in caplog.records)
    finally:
        store.close()


def test_no_webhook_secret_is_in_the_raw_store(running: Running) -> None:
    created = running.http.post(
        "/v1/webhooks",
        json={"url": "http://127.0.0.1:9/hook"},
        headers=running.headers(running.admin_key),
    ).json()
    secret = created["secret"]
    assert secret.startswith("whsec_")
    path = running.store.path
    raw = b"".join(
        path.with_name(path.name + s).read_bytes()
        for s in SIDE
        if path.with_name(path.name + s).exists()
    )
    assert b"whsec_" not in raw
    assert secret.encode() not in raw
    (row,) = sqlite3.connect(path).execute("SELECT secret FROM webhooks").fetchall()
    assert row[0].startswith("fernet:")
    assert running.store.get_webhook(created["id"]).secret == secret  # type: ignore[union-attr]


def test_clear_secrets_of_an_older_sqlite_store_are_sealed_on_open(tmp_path: Path) -> None:
    path = tmp_path / "serve.sqlite3"
    SqliteStore(path).close()
    with sqlite3.connect(path) as db:  # what an older gcdial wrote
        db.execute(
            "INSERT INTO webhooks (id, url, secret, created_at, api_key_id, description, active)"
            " VALUES ('wh_1', 'https://crm.example.com/h', ?, 0, '', '', 1)",
            (SECRET,),
        )
    store = SqliteStore(path)
    try:
        (row,) = sqlite3.connect(path).execute("SELECT secret FROM webhooks").fetchall()
        assert row[0].startswith("fernet:")
        assert store.get_webhook("wh_1").secret == SECRET  # type: ignore[union-attr]
    finally:
        store.close()


def test_clear_secrets_of_an_older_postgres_store_are_sealed_on_open(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    PostgresStore(pg_url).close()
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO webhooks (id, url, secret, created_at, api_key_id, description, active)"
            " VALUES ('wh_1', 'https://crm.example.com/h', %s, 0, '', '', true)",
            (SECRET,),
        )
    store = PostgresStore(pg_url)
    try:
        with psycopg.connect(pg_url) as conn:
            (raw,) = conn.execute("SELECT secret FROM webhooks").fetchone() or ("",)
        assert raw.startswith("fernet:")
        assert "whsec_" not in raw
        assert store.get_webhook("wh_1").secret == SECRET  # type: ignore[union-attr]
        assert _mode(tmp_path / "config" / "gcdial" / "serve.key") == 0o600
    finally:
        store.close()


def test_the_key_comes_from_the_setting_and_another_key_cannot_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = Fernet.generate_key().decode()
    monkeypatch.setenv(SECRET_KEY_ENV, key)
    path = tmp_path / "serve.sqlite3"
    store = SqliteStore(path)
    store.add_webhook(_endpoint())
    store.close()
    assert not (tmp_path / "serve.sqlite3.key").exists()
    (row,) = sqlite3.connect(path).execute("SELECT secret FROM webhooks").fetchall()
    assert SecretBox(key).open(row[0]) == SECRET
    monkeypatch.setenv(SECRET_KEY_ENV, Fernet.generate_key().decode())
    other = SqliteStore(path)
    try:
        with pytest.raises(ConfigError, match="another key"):
            other.get_webhook("wh_1")
    finally:
        other.close()
    monkeypatch.setenv(SECRET_KEY_ENV, "not-a-key")
    with pytest.raises(ConfigError, match="not a Fernet key"):
        SqliteStore(path)


def test_the_box_makes_and_checks_keys_as_fernet_does(tmp_path: Path) -> None:
    """The box checks its key and makes new ones without loading cryptography (an idle service
    does not need it): the keys it makes are Fernet's, and it refuses what Fernet refuses."""
    made = load_box(tmp_path / "serve.key", environ={})
    sealed = made.seal(SECRET)
    key = (tmp_path / "serve.key").read_text().strip()
    assert Fernet(key).decrypt(sealed.removeprefix("fernet:")).decode() == SECRET
    for bad in ("not-a-key", base64.urlsafe_b64encode(b"x" * 31).decode(), "é" * 44, ""):
        with pytest.raises(ValueError):  # Fernet refuses it too
            Fernet(bad)
        with pytest.raises(ConfigError, match="not a Fernet key"):
            SecretBox(bad)


def test_a_key_file_readable_by_others_is_fixed(tmp_path: Path) -> None:
    SqliteStore(tmp_path / "serve.sqlite3").close()
    key_file = tmp_path / "serve.sqlite3.key"
    key_file.chmod(0o644)
    SqliteStore(tmp_path / "serve.sqlite3").close()
    assert _mode(key_file) == 0o600


def _journal(path: Path) -> Journal:
    csv = path.parent / "c.csv"
    csv.write_text("phone\n+14155550100\n")
    return Journal.create(path, name="c", csv_path=str(csv), csv_fingerprint="x")


def test_a_campaign_journal_and_its_side_files_are_0600(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    journal = _journal(path)
    try:
        journal.events.record("campaign.note", detail="x")
        for suffix in (*SIDE, ".lock"):
            assert _mode(path.with_name(path.name + suffix)) == 0o600, suffix
    finally:
        journal.close()


def test_a_journal_found_readable_by_others_is_fixed_on_open(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "c.db"
    _journal(path).close()
    path.chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="gcdial.files"):
        Journal.open(path, read_only=True).close()
    assert _mode(path) == 0o600
    assert any("0600" in r.getMessage() for r in caplog.records)


def test_a_cli_report_file_is_0600(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    _journal(path).close()
    out = tmp_path / "report.csv"
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "config"), "NO_COLOR": "1"}
    done = subprocess.run(
        [str(GCDIAL), "campaign", "report", str(path), "--output", str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert _mode(out) == 0o600


def test_an_uploaded_campaign_is_kept_in_the_0600_store_not_in_a_folder(running: Running) -> None:
    key = running.make_key("campaigns", scopes=("campaigns", "dial", "watch"))
    created = running.http.post(
        "/v1/campaigns",
        files={"file": ("list.csv", b"phone\n+14155550100\n", "text/csv")},
        data={"agents": "alice@example.com"},
        headers=running.headers(key),
    )
    assert created.status_code == 201, created.text
    assert running.store.campaign_csv(created.json()["id"]) == "phone\n+14155550100\n"
    assert not (Path(running.store.path).parent / "campaigns").exists()
    assert _mode(Path(running.store.path)) == 0o600


def test_a_bad_key_setting_is_a_clear_cli_error(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        SECRET_KEY_ENV: "not-a-fernet-key",
    }
    done = subprocess.run(
        [str(GCDIAL), "serve", "keys", "list", "--store", str(tmp_path / "s.sqlite3")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "not a Fernet key" in done.stderr
    assert "not-a-fernet-key" not in done.stderr  # a key is never echoed
    assert "Traceback" not in done.stderr
