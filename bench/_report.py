"""Writing one benchmark's section into a shared Markdown report (docs/benchmarks.md)."""

from __future__ import annotations

from pathlib import Path

__all__ = ["write_section"]


def write_section(path: str, name: str, text: str) -> None:
    """Put ``text`` between ``name``'s markers in ``path``, leaving the other sections alone.

    ``text`` is the section without its markers; a file without them gets the
    section appended (a new file gets just the section).
    """
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    section = f"{start}\n{text.strip(chr(10))}\n{end}"
    target = Path(path)
    existing = target.read_text() if target.exists() else ""
    if start in existing and end in existing:
        before, rest = existing.split(start, 1)
        target.write_text(before + section + rest.split(end, 1)[1])
    else:
        target.write_text(existing.rstrip("\n") + ("\n\n" if existing.strip() else "") + section + "\n")
