"""Fixtures of the serve tests.

``store`` yields each store implementation in turn: ``STORE_FACTORIES`` maps a backend name to a
context-manager factory taking pytest's ``request`` and ``tmp_path``. The PostgreSQL backend adds
itself there, so every test in ``test_store.py`` runs against both.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import pytest

from gcdial.serve.pg_store import PostgresStore
from gcdial.serve.sqlite_store import SqliteStore
from gcdial.serve.store import Store

StoreFactory = Callable[[pytest.FixtureRequest, Path], AbstractContextManager[Store]]


@contextmanager
def _sqlite(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    store = SqliteStore(tmp_path / "serve.sqlite3")
    try:
        yield store
    finally:
        store.close()


@contextmanager
def _postgres(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    store = PostgresStore(request.getfixturevalue("pg_url"))
    try:
        yield store
    finally:
        store.close()


STORE_FACTORIES: dict[str, StoreFactory] = {"sqlite": _sqlite, "postgres": _postgres}


@pytest.fixture(params=sorted(STORE_FACTORIES))
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """Each store implementation, fresh and empty."""
    with STORE_FACTORIES[request.param](request, tmp_path) as opened:
        yield opened
