"""The SQLite store's inline key read (each request's, on the event loop's thread): it sees every
committed change at once, another process's revocation included, and never waits for a writer."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from gcdial.serve.keys import new_api_key
from gcdial.serve.sqlite_store import SqliteStore
from gcdial.serve.store import hash_api_key

from .conftest import Running


def test_a_revocation_by_another_process_is_seen_at_once(tmp_path: Path) -> None:
    path = tmp_path / "serve.sqlite3"
    service, cli = SqliteStore(path), SqliteStore(path)  # the CLI's own connection
    try:
        made = new_api_key("crm", now=time.time())
        assert service.find_api_key_inline(hash_api_key(made.key)) is None  # not yet
        cli.add_api_key(made.record)
        found = service.find_api_key_inline(hash_api_key(made.key))
        assert found is not None
        assert found.id == made.record.id
        assert cli.revoke_api_key("crm", now=time.time())
        assert service.find_api_key_inline(hash_api_key(made.key)) is None
    finally:
        service.close()
        cli.close()


def test_the_inline_read_does_not_wait_for_a_writer(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "serve.sqlite3")
    made = new_api_key("crm", now=time.time())
    store.add_api_key(made.record)
    try:
        with store._transaction() as db:  # a write under way (the store's lock held)
            db.execute("UPDATE api_keys SET name = 'renamed' WHERE id = ?", (made.record.id,))
            # A reader that had to wait would fail at once (its busy timeout is 0).
            found = store.find_api_key_inline(hash_api_key(made.key))
            assert found is not None
            assert found.name == "crm"  # the last committed state
        after = store.find_api_key_inline(hash_api_key(made.key))
        assert after is not None
        assert after.name == "renamed"
    finally:
        store.close()


def test_a_revoked_key_is_refused_on_its_next_request(running: Running) -> None:
    key = running.make_key("soon-gone")
    calls = httpx.get(running.base_url + "/v1/calls", headers=running.headers(key))
    assert calls.status_code == 200, calls.text
    other = SqliteStore(running.store.path)  # as `gcdial serve keys revoke` would
    try:
        assert other.revoke_api_key("soon-gone", now=time.time())
    finally:
        other.close()
    refused = httpx.get(running.base_url + "/v1/calls", headers=running.headers(key))
    assert refused.status_code == 401
    assert refused.json()["error"]["type"] == "unauthorized"
