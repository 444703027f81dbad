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
it through :meth:`CampaignJournals.read`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from gcdial.campaign.journal import Journal
from gcdial.campaign.journal_source import JournalSource
from gcdial.campaign.journaldb import Fence, JournalDatabase

__all__ = ["CampaignJournals", "Fencing"]

Fencing = tuple[str, str, int]
"""A run's hold on its campaign: the lease name, the owner (the replica) and the epoch."""


class CampaignJournals:
    """Every campaign's journal of one service, in ``db`` (its schema made on first use)."""

    def __init__(self, db: JournalDatabase) -> None:
        self.db = db
        self._ready = False

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
        """The journal, read-only; None when the campaign never ran. Close it after use."""
        if not self.exists(campaign_id):
            return None
        return Journal.open_in(self.db, campaign_id, read_only=True)

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
        """Nothing is kept open between uses (each journal has its own connection)."""


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
