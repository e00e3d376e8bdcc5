"""Text for people: "did you mean" suggestions, plain-text tables, durations in words.

The one place each of these is written, for every message, table and log line of the
project. No Django here, and nothing else of the package is imported.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence


def suggest(word: str, candidates: Iterable[str], *, cutoff: float = 0.6) -> str | None:
    """The candidate closest to ``word`` (a likely typo of it), or None when none is close."""
    close = difflib.get_close_matches(word, sorted(candidates), n=1, cutoff=cutoff)
    return close[0] if close else None


def did_you_mean(word: str, candidates: Iterable[str], *, cutoff: float = 0.6) -> str:
    """``"Did you mean 'x'? "`` for the closest candidate, or ``""`` when none is close."""
    close = suggest(word, candidates, cutoff=cutoff)
    return f"Did you mean '{close}'? " if close else ""


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


def duration_words(seconds: float) -> str:
    """A span of time as a log line says it: ``45s``, ``2m05s``, ``3h07m``."""
    seconds = max(0, round(seconds))
    if seconds < 120:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 120:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"
