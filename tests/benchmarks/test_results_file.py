"""``make bench ARGS=name`` rewrites only that benchmark's sections of RESULTS.md."""

from __future__ import annotations

from bench._harness import Section, merge_sections

OLD = """# gcdial benchmark results

Measured on a machine; each section says when.

## One

Re-run: `make bench ARGS=one` (measured 2026-11-01 10:00 UTC)

| a |
|---|
| 1 |

## Two

Re-run: `make bench ARGS=two` (measured 2026-11-01 10:00 UTC)

| b |
|---|
| 2 |
"""


def test_one_benchmark_replaces_its_section_and_keeps_the_others() -> None:
    fresh = Section(title="Two", command="make bench ARGS=two", headers=["b"], table=[["3"]])
    blocks = merge_sections(OLD, {"Two": fresh.markdown("2026-11-30 23:00 UTC")})
    text = "\n".join(blocks)
    assert text.startswith("## One")
    assert "| 1 |" in text  # the other section is kept as it was
    assert "| 3 |" in text
    assert "| 2 |" not in text
    assert "(measured 2026-11-30 23:00 UTC)" in text
    assert [b.split("\n", 1)[0] for b in blocks] == ["## One", "## Two"]


def test_a_new_section_is_appended_and_nothing_given_changes_nothing() -> None:
    assert "\n".join(merge_sections(OLD, {})) == OLD[OLD.index("## One") :]
    blocks = merge_sections(OLD, {"Three": "## Three\n\nnew\n"})
    assert [b.split("\n", 1)[0] for b in blocks] == ["## One", "## Two", "## Three"]
