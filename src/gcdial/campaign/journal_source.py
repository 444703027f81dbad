"""Where a run's journal lives, as the runner asks for it: exists, open (a resume) or create.

The CLI's journal is a file beside the list (:class:`FileJournal`); the service keeps each
campaign's journal in its store (``gcdial.serve.campaign_journals``), fenced by the campaign's
lease so that a replica that lost it cannot dial.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from gcdial.campaign.journal import Journal, JournalError

__all__ = ["FileJournal", "JournalSource"]


class JournalSource(Protocol):
    """One campaign's journal, wherever it is kept."""

    def exists(self) -> bool:
        """Is there a journal to resume?"""
        ...

    def open(self, *, expect_fingerprint: str, clock: Callable[[], datetime]) -> Journal:
        """The existing journal, for a run (locked or fenced as its place requires)."""
        ...

    def check_creatable(self) -> None:
        """Raise ``JournalError`` when a new journal could not be made there (checked before the
        list is validated, so the error names the real problem)."""
        ...

    def create(
        self,
        *,
        name: str,
        csv_path: str,
        csv_fingerprint: str,
        settings: Mapping[str, Any] | None,
        clock: Callable[[], datetime],
    ) -> Journal:
        """A new, empty journal for a run."""
        ...


class FileJournal:
    """The one-file journal at ``path`` (the CLI's)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def exists(self) -> bool:
        """Is there a journal file?"""
        return Journal.exists(self.path)

    def open(self, *, expect_fingerprint: str, clock: Callable[[], datetime]) -> Journal:
        """The journal file, locked for this run."""
        return Journal.open(self.path, expect_fingerprint=expect_fingerprint, clock=clock)

    def check_creatable(self) -> None:
        """Its folder must exist."""
        if not self.path.parent.is_dir():
            raise JournalError(
                f"Cannot create the journal {self.path}: the folder {self.path.parent} does "
                "not exist.",
                hint="Create the folder, or give another --journal path.",
            )

    def create(
        self,
        *,
        name: str,
        csv_path: str,
        csv_fingerprint: str,
        settings: Mapping[str, Any] | None,
        clock: Callable[[], datetime],
    ) -> Journal:
        """A new journal file."""
        return Journal.create(
            self.path,
            name=name,
            csv_path=csv_path,
            csv_fingerprint=csv_fingerprint,
            settings=settings,
            clock=clock,
        )
