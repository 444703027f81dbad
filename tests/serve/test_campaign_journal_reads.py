"""The service reads campaigns' journals in PostgreSQL over kept connections (the supervisor page
polls them): one connection serves read after read, each lent to one thread at a time, a dropped
one is replaced, a closed journal cannot touch the connection it gave back, and the service's
stop closes them."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import psycopg
import pytest

from gcdial.campaign.contact import Contact
from gcdial.campaign.journal import Journal, JournalError
from gcdial.campaign.journaldb import JournalDatabase
from gcdial.serve.campaign_journals import CampaignJournals

CONTACTS = 5


def _backends(url: str) -> list[int]:
    """The server processes connected to the database of ``url`` (but the one asking)."""
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as admin:
        rows = admin.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        ).fetchall()
    return sorted(int(row[0]) for row in rows)


def _drop_backends(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s "
            "AND pid <> pg_backend_pid()",
            (name,),
        )


@pytest.fixture
def journals(pg_url: str) -> Iterator[CampaignJournals]:
    db = JournalDatabase.postgres(pg_url)
    db.ensure_schema()
    with Journal.create_in(db, "c1", name="reads") as journal:
        journal.contacts.add(Contact(line=i + 2, phone_e164=f"+1555000{i:04d}") for i in range(5))
        journal.contacts.finish_loading(rows=CONTACTS, valid=CONTACTS, refused=0)
    kept = CampaignJournals(db)
    yield kept
    kept.close()


def _pending(journals: CampaignJournals) -> int:
    journal = journals.read("c1")
    assert journal is not None
    with journal:
        return journal.contacts.count_by("status")["pending"]


def test_reads_reuse_one_connection_and_stop_closes_it(
    journals: CampaignJournals, pg_url: str
) -> None:
    seen = set()
    for _ in range(10):
        assert _pending(journals) == CONTACTS
        seen.add(tuple(_backends(pg_url)))
    assert len(seen) == 1, seen  # the same backend after every read
    (kept,) = seen
    assert len(kept) == 1, kept  # one connection kept idle (none: a connection per read)
    assert journals.read("nope") is None
    assert tuple(_backends(pg_url)) == kept
    journals.close()
    assert _backends(pg_url) == []


def test_journals_open_at_once_have_their_own_connections(
    journals: CampaignJournals, pg_url: str
) -> None:
    first, second = journals.read("c1"), journals.read("c1")
    assert first is not None
    assert second is not None
    assert len(_backends(pg_url)) == 2
    first.close()
    first.close()  # a second close gives nothing back twice
    third = journals.read("c1")
    assert third is not None
    assert len(_backends(pg_url)) == 2, "the one given back is lent again"
    fourth = journals.read("c1")
    assert fourth is not None
    assert len(_backends(pg_url)) == 3, "never lent to two journals at once"
    for journal in (second, third, fourth):
        journal.close()


def test_a_closed_journal_cannot_use_the_connection_it_gave_back(
    journals: CampaignJournals,
) -> None:
    journal = journals.read("c1")
    assert journal is not None
    journal.close()
    with pytest.raises(JournalError, match="given back to its pool"):
        journal.contacts.count_by("status")
    assert _pending(journals) == CONTACTS  # the next reader has it, unharmed


def test_a_kept_connection_the_server_dropped_is_replaced(
    journals: CampaignJournals, pg_url: str
) -> None:
    assert _pending(journals) == CONTACTS
    before = _backends(pg_url)
    _drop_backends(pg_url)
    assert _pending(journals) == CONTACTS
    after = _backends(pg_url)
    assert len(after) == 1
    assert after != before


def test_threads_reading_at_once_each_get_a_connection_of_their_own(
    journals: CampaignJournals, pg_url: str
) -> None:
    failures: list[BaseException] = []
    counts: list[int] = []

    def poll() -> None:
        try:
            for _ in range(15):
                counts.append(_pending(journals))
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=poll) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert counts == [CONTACTS] * 90
    assert 1 <= len(_backends(pg_url)) <= 4  # at most KEEP kept once they are done
