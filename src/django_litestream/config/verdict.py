"""The binary is the judge: does Litestream accept the generated configuration?

``litestream databases -json -config FILE`` reads a configuration as ``replicate`` does
(environment expansion, YAML, validation, one replica client per database) without
opening a database or the network, in about 20 ms. When it refuses, its message names a
line of a file the user never sees, or nothing at all; :func:`refusals` turns it into
``django_litestream.E009`` naming the setting's own key (``LITESTREAM['dbs'][0]
['replica']['sync-interval']``) with a hint. No Django here.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from typing import Any

from ..litestream.binary import SERIES, BinaryUnusableError
from ..litestream.process import private_dir, run_bounded, write_private
from . import envref, keys
from .translate import Path, Refusal, translate
from .types import Generated, Problem, Settings

TIMEOUT = 10.0


def placeholders(generated: Generated, environ: Mapping[str, str]) -> dict[str, str]:
    """Stand-in values for the variables the configuration refers to that are not set.

    ``check`` reports an unset variable itself (W009, W011); with a stand-in the binary
    judges everything else, as it would where the variable is set.
    """
    out: dict[str, str] = {}
    for path, _text, name in envref.written(generated.data):
        if name not in environ and name != "PID":
            out.setdefault(name, "1s" if str(path[-1]) in keys.DURATIONS else "placeholder")
    for name in envref.placed(generated.data):
        if not environ.get(name, "").strip() and name not in generated.secret_env:
            out.setdefault(name, "placeholder")
    return out


def run(
    exe: str, generated: Generated, env: Mapping[str, str], *, timeout: float = TIMEOUT
) -> tuple[int | None, str, str]:
    """(exit status or None on timeout, output, the YAML text) of ``databases -config``."""
    text = generated.render()
    with private_dir() as private:
        path = write_private(os.path.join(private, "litestream.yml"), text)
        argv = [exe, "databases", "-json", "-config", path]
        code, output = run_bounded(argv, env, timeout=timeout)
    return code, output, text


def refusals(
    exe: str,
    settings: Settings,
    generated: Generated,
    environ: Mapping[str, str],
    *,
    stand_ins: Mapping[str, str] | None = None,
    timeout: float = TIMEOUT,
) -> list[Problem]:
    """E009 for each thing the binary refuses, E012 when it does not answer like Litestream.

    The binary sees ``environ`` (what Litestream will see) plus ``stand_ins`` for variables
    whose absence is reported otherwise (see :func:`placeholders`).
    """
    env = {**environ, **generated.secret_env, **(stand_ins or {})}
    code, output, text = run(exe, generated, env, timeout=timeout)
    if code is None:
        return [unusable(exe, f"did not answer 'databases -json' within {timeout:g}s")]
    if code == 0:
        if _is_listing(output, len(generated.data.get("dbs") or ())):
            return []
        return [unusable(exe, f"answered 'databases -json' with {output[:60]!r}")]
    if "flag provided but not defined: -json" in output:
        return [unusable(exe, f"is not Litestream {SERIES} (it has no 'databases -json')")]
    found = locate(output, text, generated)
    if any(r.db is None and not r.path for r in found) and generated.data.get("dbs"):
        found = _one_at_a_time(exe, generated, env, timeout, found)
    env_view = {**environ, **generated.secret_env}
    return [translate(r, settings, generated, env_view) for r in found]


def _is_listing(output: str, count: int) -> bool:
    """Whether ``output`` is Litestream 0.5's ``databases -json``: one object per database."""
    start = re.search(r"(?m)^\[", output)  # after any log lines Litestream printed first
    try:
        listing = json.loads(output[start.start() :]) if start else None
    except ValueError:
        return False
    return (
        isinstance(listing, list)
        and len(listing) >= count
        and all(isinstance(item, dict) and "path" in item for item in listing)
    )


def _one_at_a_time(
    exe: str, generated: Generated, env: Mapping[str, str], timeout: float, found: list[Refusal]
) -> list[Refusal]:
    """Locate a complaint that names no place: the databases alone, then each one alone."""

    def refused(dbs: list[Any]) -> tuple[Generated, list[Refusal]]:
        part = Generated({**generated.data, "dbs": dbs}, {}, [], generated.secret_values)
        code, output, text = run(exe, part, env, timeout=timeout)
        return part, [] if code in (0, None) else locate(output, text, part)

    if refused([])[1]:
        return found  # not about a database: the top level
    located: list[Refusal] = []
    for i, entry in enumerate(generated.data["dbs"]):
        for r in refused([entry])[1]:
            path = ("dbs", i, *r.path[2:]) if r.path[:1] == ("dbs",) else r.path or ("dbs", i)
            located.append(Refusal(r.message, path, i))
    return located or found


def unusable(exe: str, said: str) -> Problem:
    """E012, as a finding: the program at ``exe`` does not answer like Litestream."""
    error = BinaryUnusableError(f"The Litestream executable {exe} {said}.")
    return Problem(error.check_id, error.msg, error.hint, error=True)


# -- where the binary's message points -----------------------------------------------------

_LINE = re.compile(r"^\s*line (\d+): (.*)$")
_YAML_LINE = re.compile(r"^yaml: line (\d+): (.*)$")
_DB_CONFIG = re.compile(r"^database config #(\d+): (.*)$")
_FIELD = re.compile(r"^((?:dbs\[.*?\]\.)?[a-z][\w.\-\[\]]*): (.*)$")


def line_paths(text: str) -> dict[int, Path]:
    """1-based line number -> the path of the value that starts on it."""
    import yaml  # only when the binary refused the configuration

    out: dict[int, Path] = {}

    def walk(node: yaml.Node, path: Path) -> None:
        out.setdefault(node.start_mark.line + 1, path)
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                out[key.start_mark.line + 1] = (*path, str(key.value))
                walk(value, (*path, str(key.value)))
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                walk(item, (*path, i))

    root = yaml.compose(text)
    if root is not None:
        walk(root, ())
    return out


def _db_index(generated: Generated, db_path: str) -> int | None:
    for i, entry in enumerate(generated.data.get("dbs", ())):
        if db_path in (entry.get("path"), entry.get("dir")):
            return i
    return None


def locate(output: str, text: str, generated: Generated) -> list[Refusal]:
    """The binary's complaints, each with the path of the key it is about when it says."""
    lines = [ln.removeprefix("Error: ").rstrip() for ln in output.splitlines() if ln.strip()]
    if not lines:
        return [Refusal("it exited without a message")]
    if lines[0].startswith("panic: nil Handler"):
        return [Refusal("panic: nil Handler", ("logging", "type"))]
    if lines[0].startswith("panic:"):
        return [Refusal(lines[0])]
    paths = line_paths(text)
    if lines[0] == "yaml: unmarshal errors:":
        found = []
        for line in lines[1:]:
            match = _LINE.match(line)
            if match:
                found.append(Refusal(match.group(2), paths.get(int(match.group(1)), ())))
        return found or [Refusal(lines[0])]
    first = lines[0]
    if match := _YAML_LINE.match(first):
        return [Refusal(f"yaml: {match.group(2)}", paths.get(int(match.group(1)), ()))]
    if match := _DB_CONFIG.match(first):
        index = int(match.group(1)) - 1
        return [Refusal(match.group(2), ("dbs", index), index)]
    if match := _FIELD.match(first):
        field, message = match.groups()
        path: list[str | int] = []
        db = None
        if field.startswith("dbs["):
            end = field.index("].")
            db = _db_index(generated, field[4:end])
            field = field[end + 2 :]
            path = ["dbs", db] if db is not None else []
        for part in field.split("."):
            name, _, position = part.partition("[")
            path.append(name)
            if position:
                path.append(int(position.rstrip("]")))
        return [Refusal(message, tuple(path), db)]
    return [Refusal(first)]
