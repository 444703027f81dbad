"""The journals of the campaigns uploaded over HTTP, kept in the service's store.

A campaign's journal is the one the CLI writes (:mod:`gcdial.campaign.journal`: the intent is
committed before each create-call, a resume reconciles calls left in flight), as that campaign's
rows of the ``campaign_*`` tables in the service's own database: the SQLite store file, or
PostgreSQL (:class:`~gcdial.campaign.journaldb.JournalDatabase`). Any replica on the store reads
any campaign's journal, and takes a campaign over where its dead replica left it.

A run opens it through :meth:`CampaignJournals.source`, fenced by the campaign's lease (name,
owner, epoch): each attempt's intent checks, in its own transaction, that this replica still
holds the lease at that epoch, so a replica that was frozen while another took the campaign over
writes nothing and dials nothing (``JournalFencedError``). Status, report, detail and review read
it through :meth:`CampaignJournals.read`: on PostgreSQL over a connection kept for reads
(:class:`_ReadConnections`), since the supervisor page polls them and a new connection costs a
TCP handshake and a login each time; a SQLite store's file is opened for each read, which costs
little, and a cursor left unfinished can never hold a reused connection's snapshot back.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, Final, Self

from gcdial.campaign.journal import Journal, JournalError
from gcdial.campaign.journal_source import JournalSource
from gcdial.campaign.journaldb import Fence, JournalDatabase
from gcdial.campaign.sqldialect import Connection

__all__ = ["CampaignJournals", "Fencing"]

Fencing = tuple[str, str, int]
"""A run's hold on its campaign: the lease name, the owner (the replica) and the epoch."""


class CampaignJournals:
    """Every campaign's journal of one service, in ``db`` (its schema made on first use)."""

    def __init__(self, db: JournalDatabase) -> None:
        self.db = db
        self._ready = False
        self._reads = _ReadConnections(db) if db.dialect == "postgres" else None

    @classmethod
    def for_store(cls, store: Any) -> CampaignJournals:
        """The journals in the service's own database: the SQLite store's file, or its
        PostgreSQL database."""
        url = getattr(store, "dsn", None)
        if isinstance(url, str):
            return cls(JournalDatabase.postgres(url))
        return cls(JournalDatabase.sqlite(store.path))

    def _schema(self) -> JournalDatabase:
        if not self._ready:
            self.db.ensure_schema()
            self._ready = True
        return self.db

    def exists(self, campaign_id: str) -> bool:
        """Has the campaign run (is there a journal)?"""
        return Journal.exists_in(self._schema(), campaign_id)

    def read(self, campaign_id: str) -> Journal | None:
        """The journal, read-only; None when the campaign never ran. Close it after use (it
        may be over a kept connection, lent to this thread until then)."""
        reads = self._reads
        if reads is None:
            if not self.exists(campaign_id):
                return None
            return Journal.open_in(self.db, campaign_id, read_only=True)
        db = self._schema()
        conn, kept = reads.take()
        try:
            return Journal.read_in(db, campaign_id, conn=conn, give_back=reads.give_back)
        except JournalError:
            if not kept:
                raise
        # The kept connection failed (the server dropped it meanwhile: a restart, an idle
        # timeout): once more, on a new one.
        conn, _ = reads.take(new=True)
        return Journal.read_in(db, campaign_id, conn=conn, give_back=reads.give_back)

    def write(self, campaign_id: str) -> Journal | None:
        """The journal for a change (a review's verdict, made while no replica runs the
        campaign: the caller holds its lease); None when the campaign never ran."""
        if not self.exists(campaign_id):
            return None
        return Journal.open_in(self.db, campaign_id)

    def source(self, campaign_id: str, fence: Fencing) -> JournalSource:
        """Where a run of the campaign opens or creates its journal, held by ``fence``."""
        self._schema()
        return _Fenced(self.db, campaign_id, Fence(*fence))

    def close(self) -> None:
        """Close the connections kept for reads (when the service stops); a journal still
        reading gives its connection back closed."""
        if self._reads is not None:
            self._reads.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _ReadConnections:
    """Connections kept for reading campaigns' journals, each lent to one thread at a time (the
    journal it reads through owns it until closed), at most :data:`KEEP` kept idle."""

    KEEP: Final = 4

    def __init__(self, db: JournalDatabase) -> None:
        self._db = db
        self._lock = threading.Lock()
        self._idle: list[Connection] = []
        self._closed = False

    def take(self, *, new: bool = False) -> tuple[Connection, bool]:
        """A connection and whether it was kept (not new), for this thread alone."""
        while not new:
            with self._lock:
                if not self._idle:
                    break
                conn = self._idle.pop()
            if conn.reusable():
                return conn, True
            conn.close()
        try:
            return self._db.connect(), False
        except Exception as exc:
            raise self._db.failed(exc) from None

    def give_back(self, conn: Connection) -> None:
        """Keep ``conn`` for the next read, or close it (a transaction left open, broken, the
        service stopping, enough kept)."""
        with self._lock:
            if not self._closed and len(self._idle) < self.KEEP and conn.reusable():
                self._idle.append(conn)
                return
        conn.close()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            with contextlib.suppress(Exception):
                conn.close()


class _Fenced:
    """A campaign's journal in the store, for a run that holds its lease at ``fence``."""

    def __init__(self, db: JournalDatabase, campaign_id: str, fence: Fence) -> None:
        self.db, self.campaign_id, self.fence = db, campaign_id, fence

    def exists(self) -> bool:
        return Journal.exists_in(self.db, self.campaign_id)

    def open(self, *, expect_fingerprint: str, clock: Callable[[], datetime]) -> Journal:
        return Journal.open_in(
            self.db,
            self.campaign_id,
            fence=self.fence,
            expect_fingerprint=expect_fingerprint,
            clock=clock,
        )

    def check_creatable(self) -> None:
        """The database's schema was made (``ensure_schema``): nothing to check."""

    def create(
        self,
        *,
        name: str,
        csv_path: str,
        csv_fingerprint: str,
        settings: Mapping[str, Any] | None,
        clock: Callable[[], datetime],
    ) -> Journal:
        return Journal.create_in(
            self.db,
            self.campaign_id,
            name=name,
            csv_path=csv_path,
            csv_fingerprint=csv_fingerprint,
            settings=settings,
            fence=self.fence,
            clock=clock,
        )
