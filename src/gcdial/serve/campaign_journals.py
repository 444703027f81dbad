"""The journals of the campaigns uploaded over HTTP, as the service asks for them.

A campaign's journal is the one the CLI writes (:mod:`gcdial.campaign.journal`: the intent is
committed before each create-call, a resume reconciles calls left in flight). A run opens it
through :meth:`CampaignJournals.source`, fenced by the campaign's lease (name, owner, epoch); the
status, report, detail and review pages read it through :meth:`CampaignJournals.read`.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from gcdial.campaign.journal import Journal
from gcdial.campaign.journal_source import FileJournal, JournalSource

__all__ = ["CampaignJournals", "Fencing"]

Fencing = tuple[str, str, int]
"""A run's hold on its campaign: the lease name, the owner (the replica) and the epoch."""


class CampaignJournals:
    """Every campaign's journal of one service, under ``root`` (one file per campaign)."""

    def __init__(self, root: Path | None) -> None:
        self.root = root if root is not None else Path(tempfile.mkdtemp(prefix="gcdial-j-"))

    @classmethod
    def for_store(cls, store: Any) -> CampaignJournals:
        """The journals of the service on ``store``: beside a SQLite store's file, so that every
        service on that file shares them."""
        path = getattr(store, "path", None)
        if isinstance(path, Path):
            return cls(path.with_name(path.name + ".journals"))
        return cls(None)

    def _path(self, campaign_id: str) -> Path:
        return self.root / f"{campaign_id}.db"

    def exists(self, campaign_id: str) -> bool:
        """Has the campaign run (is there a journal)?"""
        return Journal.exists(self._path(campaign_id))

    def read(self, campaign_id: str) -> Journal | None:
        """The journal, read-only; None when the campaign never ran. Close it after use."""
        path = self._path(campaign_id)
        if not Journal.exists(path):
            return None
        return Journal.open(path, read_only=True)

    def write(self, campaign_id: str) -> Journal | None:
        """The journal for a change (a review's verdict); None when the campaign never ran."""
        path = self._path(campaign_id)
        if not Journal.exists(path):
            return None
        return Journal.open(path)

    def source(self, campaign_id: str, fence: Fencing) -> JournalSource:
        """Where a run of the campaign opens or creates its journal (held by ``fence``)."""
        del fence  # a file journal is held by its lock
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        return FileJournal(self._path(campaign_id))

    def close(self) -> None:
        """Nothing to release for files."""
