"""The shell commands the README and the docs site show, as a reader would type them: every
```sh block of README.md and docs/*.md, one command per entry (continuation lines joined,
comments dropped). tests/unit/test_docs_commands.py says which test runs each one, or why it is
not run here and how it is checked instead; tests/e2e/test_docs_commands_stack.py runs them."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SHELL = {"sh", "bash", "shell", "console"}
NOT_RUN_HERE = "not run here"  # a block whose first line says so is not run by any test


@dataclass(frozen=True)
class Command:
    page: str  # README.md, docs/api.md, ...
    line: int  # where the command starts, 1-based
    text: str  # the command, continuation lines joined, its comment dropped
    comment: str  # the comment after it (or on the line after it: `# 202 {...}`)
    not_run_here: bool  # its block is marked "not run here"

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"


def strip_comment(line: str) -> tuple[str, str]:
    """(the command, its comment): a `#` after whitespace, outside quotes, starts a comment."""
    quote = ""
    for i, char in enumerate(line):
        if quote:
            if char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
        elif char == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip(), line[i + 1 :].strip()
    return line.rstrip(), ""


def blocks(page: Path) -> list[tuple[int, str, list[str]]]:
    """(first line number, language, lines) of each fenced block of `page`."""
    found: list[tuple[int, str, list[str]]] = []
    current: tuple[int, str, list[str]] | None = None
    for number, line in enumerate(page.read_text().splitlines(), 1):
        fence = re.match(r"^```(\w*)", line)
        if fence and current is None:
            current = (number + 1, fence.group(1), [])
        elif line.startswith("```") and current is not None:
            found.append(current)
            current = None
        elif current is not None:
            current[2].append(line)
    return found


def commands(pages: list[Path] | None = None) -> list[Command]:
    out: list[Command] = []
    for page in pages or PAGES:
        name = str(page.relative_to(ROOT))
        for first, language, lines in blocks(page):
            if language not in SHELL:
                continue
            marked = bool(lines) and NOT_RUN_HERE in lines[0].lower() and lines[0].startswith("#")
            pending: list[str] = []
            start = 0
            for offset, raw in enumerate(lines):
                text, comment = strip_comment(raw)
                if not pending and not text:
                    if comment and out and out[-1].page == name and not out[-1].comment:
                        # `# 202 {...}` under a command: what it answers
                        last = out[-1]
                        out[-1] = Command(last.page, last.line, last.text, comment, marked)
                    continue
                if not pending:
                    start = first + offset
                pending.append(text.removesuffix("\\").strip())
                if text.endswith("\\"):
                    continue
                out.append(Command(name, start, " ".join(pending), comment, marked))
                pending = []
    return out
