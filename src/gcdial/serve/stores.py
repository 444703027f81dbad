"""Which store a ``gcdial serve`` process opens: PostgreSQL when ``GCDIAL_DATABASE_URL`` is set
(replicas share it), else the SQLite file (one process)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from gcdial.errors import ConfigError
from gcdial.serve.config import default_store_path
from gcdial.serve.sqlite_store import SqliteStore
from gcdial.serve.store import Store

__all__ = ["DATABASE_URL_ENV", "database_url", "describe_store", "is_shared", "open_store"]

DATABASE_URL_ENV = "GCDIAL_DATABASE_URL"
_SCHEMES = ("postgresql://", "postgres://")


def database_url(environ: Mapping[str, str] | None = None) -> str | None:
    """``$GCDIAL_DATABASE_URL`` when set (checked to be a PostgreSQL URL), else None."""
    env = os.environ if environ is None else environ
    url = env.get(DATABASE_URL_ENV, "").strip()
    if not url:
        return None
    if not url.startswith(_SCHEMES):
        # Show only the scheme: the rest may hold a password.
        scheme = url.split("://", 1)[0] if "://" in url else "(none)"
        raise ConfigError(
            f"{DATABASE_URL_ENV} must be a PostgreSQL URL, not scheme {scheme!r}",
            hint="Write it like postgresql://user@db.example.com:5432/gcdial, or unset it to "
            "use the SQLite store.",
        )
    return url


def open_store(path: Path | None = None, environ: Mapping[str, str] | None = None) -> Store:
    """The PostgreSQL store when ``GCDIAL_DATABASE_URL`` is set, else SQLite at ``path`` (or
    the default file). Raises ``ConfigError`` for a bad choice, ``StoreError`` when it won't
    open."""
    url = database_url(environ)
    if url is None:
        return SqliteStore(path or default_store_path(environ))
    if path is not None:
        raise ConfigError(
            f"--store names a SQLite file but {DATABASE_URL_ENV} is set",
            hint=f"Use one store: drop --store, or unset {DATABASE_URL_ENV}.",
        )
    try:
        # Deferred: psycopg is the optional `postgres` extra, needed only here.
        from gcdial.serve.pg_store import PostgresStore
    except ImportError:
        raise ConfigError(
            f"{DATABASE_URL_ENV} is set but the PostgreSQL driver is not installed",
            hint="pip install 'gcdial[postgres]'",
        ) from None
    return PostgresStore(url)


def is_shared(store: Store) -> bool:
    """True when other processes (replicas) may use the same store at the same time."""
    return not isinstance(store, SqliteStore)


def describe_store(store: Store) -> str:
    """Where the store lives, for a start-up line: never a password."""
    if isinstance(store, SqliteStore):
        return str(store.path)
    where = getattr(store, "where", None)
    return f"PostgreSQL {where}" if where else type(store).__name__
