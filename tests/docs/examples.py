"""Find the code examples of README.md and docs/*.md, and say how each one runs.

The convention (also in docs/design.md, "Writing docs"): every fenced block names its language.

- ``python``: run as a script in a fresh interpreter, exit status 0.
- ``console``: every ``$ command`` line runs in bash (a trailing ``\\`` continues it); the exit
  status must be 0, or N when the line ends with a comment saying ``exit N``. Lines after a command
  are its expected output, checked loosely: each must appear in what the command printed, ignoring
  whitespace and line wrapping, with ids, clock times and decimals matching any value and ``...``
  standing for anything.
- ``sh``/``bash``: the whole block runs as one bash script, exit status 0.
- ``javascript``: run by ``node`` as an ES module from the examples' folder (the clone's top
  folder: ``./clients/js/index.js`` imports the JS client), exit status 0.
- ``text``, ``json``, ``toml``, ``csv``, ``jsonl``, ``ini``: shown, not run. With ``file=NAME``
  in the info string the block is written to NAME in the directory where the later examples of
  the same document run (``~/`` is the examples' home directory).
- ``no-run (reason)`` after a runnable language: shown, not run; the reason is required.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RUNNABLE = frozenset({"python", "console", "sh", "bash", "javascript"})
SHOWN = frozenset({"text", "json", "jsonl", "toml", "csv", "ini"})
_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>```+|~~~+)(?P<info>.*)$")
_EXIT = re.compile(r"\s#[^\n]*\bexit (?P<code>\d+)\b")
_NO_RUN = re.compile(r"\bno-run\b(?P<reason>.*)")
_FILE = re.compile(r"\bfile=(?P<name>\S+)")


@dataclass(frozen=True)
class Block:
    """One fenced block: where it is, its info string, its text."""

    doc: str
    line: int
    info: str
    body: str

    @property
    def lang(self) -> str:
        """The language: the info string's first word."""
        return self.info.split()[0] if self.info.split() else ""

    @property
    def no_run(self) -> bool:
        """Marked as not runnable here."""
        return _NO_RUN.search(self.info) is not None

    @property
    def no_run_reason(self) -> str:
        """The reason given after ``no-run``, without brackets."""
        match = _NO_RUN.search(self.info)
        return match.group("reason").strip(" ():-") if match else ""

    @property
    def file_name(self) -> str | None:
        """The file this data block is written to (``file=NAME``), if any."""
        match = _FILE.search(self.info)
        return match.group("name") if match else None

    @property
    def runs(self) -> bool:
        """True when the doc tests execute this block."""
        return self.lang in RUNNABLE and not self.no_run

    @property
    def id(self) -> str:
        """A short test id: ``README.md:123``."""
        return f"{self.doc}:{self.line}"


@dataclass
class Command:
    """One ``$ command`` of a console block, the exit status it should end with, its output."""

    text: str
    line: int
    expect_code: int = 0
    expect_output: list[str] = field(default_factory=list)


def documents() -> list[Path]:
    """README.md and every page under docs/."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def fence_lines(text: str) -> list[int]:
    """Line numbers (1-based) of every fence line in ``text``: a cross-check of the parser."""
    return [n for n, line in enumerate(text.splitlines(), 1) if _FENCE.match(line)]


def parse(doc: Path) -> list[Block]:
    """The fenced blocks of one Markdown file, in order."""
    name = str(doc.relative_to(ROOT))
    blocks: list[Block] = []
    lines = doc.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        indent, fence = opening.group("indent"), opening.group("fence")
        body: list[str] = []
        j = i + 1
        while j < len(lines):
            closing = _FENCE.match(lines[j])
            if closing and closing.group("fence").startswith(fence) and not closing["info"].strip():
                break
            body.append(lines[j].removeprefix(indent))
            j += 1
        blocks.append(Block(name, i + 1, opening.group("info").strip(), "\n".join(body) + "\n"))
        i = j + 1
    return blocks


def all_blocks() -> list[Block]:
    """Every fenced block of every document."""
    return [block for doc in documents() for block in parse(doc)]


def commands(block: Block) -> list[Command]:
    """The commands of a console block with their expected exit status and output."""
    found: list[Command] = []
    lines = block.body.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("$ "):
            text = line[2:]
            start = block.line + 1 + i
            while text.endswith("\\") and i + 1 < len(lines):
                i += 1
                text = text[:-1] + " " + lines[i].strip()
            code = _EXIT.search(text)
            found.append(Command(text, start, int(code["code"]) if code else 0))
        elif line.strip() and found:
            found[-1].expect_output.append(line)
        elif line.strip():
            raise ValueError(f"{block.id}: console text before the first '$ ' command: {line!r}")
        i += 1
    return found


_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
# What varies from run to run, as written in a doc -> what it matches in real output.
_VOLATILE: list[tuple[str, str]] = [
    (_UUID, _UUID),
    (r"[0-9a-f]{8}-\.\.\.", r"[0-9a-f]{8}-\S*"),  # an id shortened to its first 8 digits
    (r"\d{4}-\d\d-\d\dT[0-9:.]+Z?", r"\d{4}-\d\d-\d\dT[0-9:.]+Z?"),
    (r"\d\d:\d\d:\d\d(?:\.\d+)?", r"\d\d:\d\d:\d\d(?:\.\d+)?"),
    (r"\d+\.\d+", r"\d+(?:\.\d+)?"),
    (r"\.\.\.|…", r".*?"),
    (r"\s+", r"\s*"),
]
_TOKEN = re.compile("|".join(f"(?P<v{n}>{doc})" for n, (doc, _) in enumerate(_VOLATILE)))


def output_pattern(expected: str) -> re.Pattern[str]:
    """A loose pattern for one expected output line (see the module docstring)."""
    parts: list[str] = []
    last = 0
    for match in _TOKEN.finditer(expected.strip()):
        parts.append(re.escape(expected.strip()[last : match.start()]))
        parts.append(_VOLATILE[int(str(match.lastgroup)[1:])][1])
        last = match.end()
    parts.append(re.escape(expected.strip()[last:]))
    return re.compile("".join(parts))


def flat(output: str) -> str:
    """Output with all whitespace runs (line breaks included) made one space."""
    return " ".join(output.split())
