"""How long the campaign page's two reads take on a large campaign (a measurement, not a target).

``python -m bench.campaign_views [ROWS]``: the upload preview of a list of ROWS rows (one in 50
invalid), then the detail of a journal with ROWS contacts and ROWS / 5 attempts.
"""

from __future__ import annotations

import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from gcdial.campaign.csvinput import read_contacts
from gcdial.campaign.journal import Journal
from gcdial.serve.campaign_views import campaign_detail, preview_upload


def main(rows: int) -> None:
    """Print the two timings."""
    lines = ["phone,name"] + [
        f"+1415{5550000 + i:07d},n{i}" if i % 50 else f"bad{i},x" for i in range(rows)
    ]
    text = "\n".join(lines) + "\n"
    settings = {"agents": ["a@example.com"], "window": "00:00-23:59"}
    started = time.perf_counter()
    preview = preview_upload(text, settings, now=datetime.now(UTC))
    took = time.perf_counter() - started
    print(f"preview of {rows} rows: {took:.2f} s ({preview['rows']['refused']} refused)")
    with tempfile.TemporaryDirectory() as folder:
        csv = Path(folder) / "contacts.csv"
        csv.write_text(text)
        path = Path(folder) / "journal.db"
        journal = Journal.create(path, name="bench", csv_path=str(csv), csv_fingerprint="-")
        reader = read_contacts(csv)
        journal.contacts.add(reader)
        journal.contacts.finish_loading(rows=rows, valid=reader.report.valid, refused=0)
        for contact in list(journal.contacts.all())[: rows // 5]:
            journal.attempts.begin(contact.id, agent_id="u1", agent="a@example.com")
        journal.close()
        started = time.perf_counter()
        for _ in range(5):
            campaign_detail(lambda: Journal.open(path, read_only=True), settings,
                            now=datetime.now(UTC), run=None, budget=None,
                            monotonic_now=time.monotonic())  # fmt: skip
        took = (time.perf_counter() - started) / 5
        print(f"detail of {rows} contacts, {rows // 5} attempts: {took * 1000:.0f} ms")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)
