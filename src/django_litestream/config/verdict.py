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

from ..litestream.binary import SERIES, BinaryUnusableError, identify
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


def as_replicate_builds(generated: Generated) -> Generated:
    """The configuration with each ``dir`` entry as ``replicate`` builds its databases.

    ``databases`` builds a ``dir`` entry as one database (``NewDBFromConfig``), which
    refuses ``meta-dir``; ``replicate`` builds one database per file found
    (``NewDBsFromDirectoryConfig``), each with ``meta-dir`` as its ``meta-path``. The judge
    must read what ``replicate`` runs. (Both keys together stay: ``replicate`` refuses that.)
    """
    dbs = []
    for entry in generated.data.get("dbs") or ():
        if isinstance(entry, Mapping) and "dir" in entry and "meta-path" not in entry:
            entry = {("meta-path" if k == "meta-dir" else k): v for k, v in entry.items()}
        dbs.append(entry)
    data = {**generated.data, "dbs": dbs}
    return Generated(data, generated.secret_env, generated.problems, generated.secret_values)


def run(
    exe: str, generated: Generated, env: Mapping[str, str], *, timeout: float = TIMEOUT
) -> tuple[int | None, str, str]:
    """(exit status or None on timeout, output, the YAML text) of ``databases -config``."""
    text = as_replicate_builds(generated).render()
    with private_dir() as private:
        path = write_private(os.path.join(private, "litestream.yml"), text)
        argv = [exe, "databases", "-json", "-config", path]
        code, output = run_bounded(argv, env, timeout=timeout)
    return code, output, text


# Top-level keys that only ``replicate``'s start reads (``ReplicateCommand.Run``), which
# ``databases`` never runs: for these, a second judge starts ``replicate -once`` without
# databases (no database opened, no storage touched; it exits at once).
START_ONLY = ("addr",)
# Left out of that start: ``exec`` (serve passes its own; ``-once`` refuses one), the MCP
# server (nothing to judge; it would bind a port) and the control socket (Litestream
# removes an existing socket file at start: it would take a running serve's).
_NOT_STARTED = ("exec", "mcp-addr", "socket")


def run_start(
    exe: str, generated: Generated, env: Mapping[str, str], *, timeout: float = TIMEOUT
) -> tuple[int | None, str]:
    """(exit status or None on timeout, output) of ``replicate -once`` on the top level."""
    data = {k: v for k, v in generated.data.items() if k not in _NOT_STARTED}
    data["dbs"] = []
    text = Generated(data, {}, [], generated.secret_values).render()
    with private_dir() as private:
        path = write_private(os.path.join(private, "start.yml"), text)
        return run_bounded([exe, "replicate", "-once", "-config", path], env, timeout=timeout)


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
    env_view = {**environ, **generated.secret_env}
    named = settings.bin_path is not None and settings.bin_path == exe
    code, output, text = run(exe, generated, env, timeout=timeout)
    if code == 0 and _is_listing(output, len(generated.data.get("dbs") or ())):
        if not any(key in generated.data for key in START_ONLY):
            return []
        code, output = run_start(exe, generated, env, timeout=timeout)
        if code == 0:
            return []
        if code is not None:
            refusal = _start_refusal(output, generated)
            return [translate(refusal, settings, generated, env_view)]
    if code is None:  # (asking it 'version' too would double the wait)
        return [unusable(exe, f"did not answer 'databases -json' within {timeout:g}s", named)]
    # Before blaming the setting, make sure the program is Litestream at all.
    try:
        identify(exe, bin_path=named)
    except BinaryUnusableError as exc:
        return [Problem(exc.check_id, exc.msg, exc.hint, error=True, where=BIN_PATH)]
    if code == 0:
        return [unusable(exe, f"answered 'databases -json' with {output[:60]!r}", named)]
    if "flag provided but not defined: -json" in output:
        return [unusable(exe, f"is not Litestream {SERIES} (it has no 'databases -json')", named)]
    found = locate(output, text, generated)
    if any(r.db is None and not r.path for r in found) and generated.data.get("dbs"):
        found = _one_at_a_time(exe, generated, env, timeout, found)
    found = [by_value(r, generated) for r in found]
    return [translate(r, settings, generated, env_view) for r in found]


BIN_PATH = "LITESTREAM['bin_path']"


def _start_refusal(output: str, generated: Generated) -> Refusal:
    """The start's complaint, at the start-only key whose value it quotes."""
    lines = [ln.removeprefix("Error: ") for ln in output.splitlines() if ln.startswith("Error: ")]
    message = lines[-1] if lines else (output.strip().splitlines() or ["it failed"])[-1]
    return by_value(Refusal(message), generated, keys=START_ONLY)


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


_QUOTED = re.compile(r'"([^"]+)"')


def by_value(
    refusal: Refusal, generated: Generated, *, keys: tuple[str, ...] | None = None
) -> Refusal:
    """Point a complaint that names no key at the one value it quotes.

    Litestream's messages about a value either name the field or quote the value
    (``invalid value for query parameter "partSize": "10MB"``, ``unhandled size name:
    megabytes``): within the entry the complaint was narrowed to (or the top level), the
    key is the one whose value holds a quoted token or the message's last part. Exactly one
    such key, or the complaint stays where it was.
    """
    if refusal.path and not (len(refusal.path) == 2 and refusal.path[0] == "dbs"):
        return refusal
    node: Any = generated.data
    for part in refusal.path:
        node = node[part]
    tokens = _QUOTED.findall(refusal.message)
    if ": " in refusal.message:
        tokens.append(refusal.message.rsplit(": ", 1)[-1].strip('"'))
    tokens = [t for t in tokens if len(t) > 1]
    matches = [
        path
        for path, value in _leaves(node, refusal.path, top=not refusal.path)
        if (keys is None or path[-1] in keys) and any(t in str(value) for t in tokens)
    ]
    if len(matches) != 1:
        return refusal
    return Refusal(refusal.message, matches[0], refusal.db)


def _leaves(node: Any, path: Path, *, top: bool = False) -> list[tuple[Path, Any]]:
    """(path, value) of every scalar under ``node`` (at the top level: not the databases)."""
    if isinstance(node, Mapping):
        return [
            leaf
            for key, value in node.items()
            if not (top and key == "dbs")
            for leaf in _leaves(value, (*path, str(key)))
        ]
    if isinstance(node, list | tuple):
        return [leaf for i, value in enumerate(node) for leaf in _leaves(value, (*path, i))]
    return [(path, node)]


def unusable(exe: str, said: str, named: bool = False) -> Problem:
    """E012, as a finding: the program at ``exe`` does not answer like Litestream
    (``named``: it is what ``bin_path`` names, and the message says so)."""
    subject = f"{BIN_PATH} is {exe}, which" if named else f"The Litestream executable {exe}"
    error = BinaryUnusableError(f"{subject} {said}.")
    return Problem(error.check_id, error.msg, error.hint, error=True, where=BIN_PATH)


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
