"""The runner and the journal stay split: no class of their modules grows back into a god
object, and the journal is composed of its parts rather than inheriting them."""

import ast
from pathlib import Path

import pytest

import gcdial.campaign

MAX_LINES = 400
MAX_METHODS = 25
RUN_MODULES = ("runner", "run_state", "dispatch", "placer", "resolver")
JOURNAL_MODULES = ("journal", "journalcore", "journalcontacts", "journalattempts", "journalhome")


def oversized(source: str) -> list[str]:
    """The classes of ``source`` over :data:`MAX_LINES` lines or :data:`MAX_METHODS` methods
    (the defs directly in the class body), each with its size."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.ClassDef):
            continue
        assert node.end_lineno is not None
        lines = node.end_lineno - node.lineno + 1
        methods = sum(isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef) for n in node.body)
        if lines > MAX_LINES or methods > MAX_METHODS:
            found.append(f"{node.name}: {lines} lines, {methods} methods")
    return found


@pytest.mark.parametrize("module", RUN_MODULES + JOURNAL_MODULES)
def test_no_class_of_a_run_is_over_the_limit(module: str) -> None:
    path = Path(gcdial.campaign.__file__).parent / f"{module}.py"
    assert oversized(path.read_text()) == []


def test_the_limit_catches_too_many_methods_and_too_many_lines() -> None:
    many = "class Many:\n" + "".join(f"    def m{i}(self): pass\n" for i in range(26))
    long = "class Long:\n    def m(self):\n" + "        x = 1\n" * 399
    fits = "class Fits:\n" + "".join(f"    def m{i}(self): pass\n" for i in range(25))
    assert oversized(many) == ["Many: 27 lines, 26 methods"]
    assert oversized(long) == ["Long: 401 lines, 1 methods"]
    assert oversized(fits) == []


def test_the_journal_owns_its_parts_rather_than_inheriting_them() -> None:
    from gcdial.campaign.journal import Attempts, Contacts, Events, Journal, Pending

    assert Journal.__bases__ == (object,)
    journal_methods = {name for name in vars(Journal) if not name.startswith("__")}
    for part in (Contacts, Pending, Attempts, Events):
        shared = journal_methods & {name for name in vars(part) if not name.startswith("_")}
        assert shared == set(), f"{part.__name__} and Journal both answer {sorted(shared)}"
