"""Plain-text tables for the commands' human output (``status``, ``vfs``). No Django here."""

from __future__ import annotations

from collections.abc import Sequence


def align(lines: Sequence[Sequence[object]]) -> list[str]:
    """Each row of cells as one line, every column as wide as its widest cell, two spaces
    between columns, no trailing blanks."""
    if not lines:
        return []
    widths = [max(len(str(line[i])) for line in lines) for i in range(len(lines[0]))]
    return [
        "  ".join(str(cell).ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
        for line in lines
    ]
