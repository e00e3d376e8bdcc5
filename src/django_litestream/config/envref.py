"""``$NAME`` references: values Litestream reads from its environment, one reading of them.

Litestream substitutes ``$NAME`` and ``${NAME}`` into its configuration text (Go's
``os.Expand``; an unset variable becomes the empty string) before it parses the YAML. The
builder writes credentials as :class:`EnvRef` values rendered ``$NAME``; a user may write
references into any value. Everything that reads, finds or shows a reference goes through
this module. No Django here.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

Path = tuple[str | int, ...]  # where a value is in the configuration: ("dbs", 0, "replica")

# $NAME and ${NAME} as Go's os.Expand reads them in the configuration text.
REFERENCE = re.compile(r"\$(?:\{(\w+)\}|([A-Za-z_]\w*))")


@dataclass(frozen=True)
class EnvRef:
    """A value Litestream reads from the environment: rendered as ``$NAME``."""

    name: str


def names(text: str) -> list[str]:
    """The variables ``text`` refers to, in order."""
    return [braced or bare for braced, bare in REFERENCE.findall(text)]


def is_reference(text: str) -> bool:
    """Whether ``text`` is only a reference (``$NAME`` or ``${NAME}``), nothing else."""
    return REFERENCE.fullmatch(text) is not None


def expand(value: Any, environ: Mapping[str, str]) -> str:
    """A value as Litestream will read it, for messages: references resolved from
    ``environ``; an unset variable stays ``$NAME``, so that what is missing shows."""
    if isinstance(value, EnvRef):
        return environ.get(value.name) or f"${value.name}"
    return REFERENCE.sub(
        lambda m: environ.get(m.group(1) or m.group(2)) or m.group(0), str(value or "")
    )


def written(data: Any, path: Path = ()) -> Iterator[tuple[Path, str, str]]:
    """(path, value, NAME) for every ``$NAME`` written into a string of ``data``."""
    if isinstance(data, str):
        for name in names(data):
            yield path, data, name
    elif isinstance(data, Mapping):
        for key, item in data.items():
            yield from written(item, (*path, str(key)))
    elif isinstance(data, Sequence) and not isinstance(data, bytes):
        for i, item in enumerate(data):
            yield from written(item, (*path, i))


def placed(data: Any) -> list[str]:
    """The names of every :class:`EnvRef` in ``data`` (what the builder wrote as ``$NAME``)."""
    if isinstance(data, EnvRef):
        return [data.name]
    if isinstance(data, Mapping):
        return [n for v in data.values() for n in placed(v)]
    if isinstance(data, list | tuple):
        return [n for v in data for n in placed(v)]
    return []
