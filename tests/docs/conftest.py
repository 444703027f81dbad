"""A documentation example is run or it fails: a skip here is turned into a failure."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import pytest


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[Any]:
    """Report a skipped doc example as failed: an example marked nowhere must never go unrun."""
    outcome: Any = yield
    report: pytest.TestReport = outcome.get_result()
    if report.skipped and item.nodeid.split("::")[0].endswith("test_examples.py"):
        report.outcome = "failed"
        report.longrepr = f"{item.nodeid} was skipped: mark the block `no-run (reason)` instead"
