"""Which Litestream subcommands exist and how to hand them the generated configuration.

Flags are never copied by hand: whether a flag takes a value is read from the binary's own
``-h`` text when an argument list has to be split. The table below says only which
subcommands read ``-config`` and which talk to the control socket; a test checks it against
the pinned binary's help so it cannot drift.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence

from .process import run_bounded

ANSWER_TIMEOUT = 10.0

CONFIG = frozenset({"databases", "ltx", "wal", "replicate", "reset", "restore", "status"})
# One line about each, as ``litestream -h`` of the pinned binary says it (a test compares).
SUMMARIES = {
    "databases": "list databases specified in config file",
    "info": "show daemon information",
    "list": "list all managed databases",
    "ltx": "list available LTX files for a database",
    "register": "register a database for replication",
    "replicate": "runs a server to replicate databases",
    "reset": "reset local state for a database",
    "restore": "recovers database backup from a replica",
    "start": "start replication for a database",
    "status": "display replication status for databases",
    "stop": "stop replication for a database",
    "sync": "force an immediate sync for a database",
    "unregister": "unregister a database from replication",
    "version": "prints the binary version",
    "wal": "deprecated alias of ltx",  # not in the binary's list; it still accepts it
}
SOCKET = frozenset({"info", "list", "register", "start", "stop", "sync", "unregister"})
PLAIN = frozenset({"version"})
ALL = CONFIG | SOCKET | PLAIN
# Subcommands whose positional argument is a database path (so a Django alias works there).
DB_PATH = frozenset(
    {"ltx", "wal", "reset", "restore", "status", "register", "start", "stop", "sync", "unregister"}
)

# Subcommands that also take a REPLICA_URL instead of a database path; Litestream's IsURL.
URL_COMMANDS = frozenset({"restore", "ltx", "wal"})
_URL = re.compile(r"^\w+://")

_FLAG_LINE = re.compile(r"^\s+-([A-Za-z][\w-]*)(?:\s+([A-Z][A-Z_]*))?\s*$")


def is_url(text: str) -> bool:
    """Whether Litestream reads ``text`` as a replica URL rather than a database path."""
    return bool(_URL.match(text))


@functools.lru_cache(maxsize=32)
def flag_arity(binary: str, command: str) -> Mapping[str, bool]:
    """Flags of ``command`` and whether each takes a value, parsed from ``-h``."""
    from .binary import BinaryUnusableError

    code, output = run_bounded([binary, command, "-h"], timeout=ANSWER_TIMEOUT)
    if code is None:
        raise BinaryUnusableError(
            f"The Litestream executable {binary} did not answer '{command} -h' within "
            f"{ANSWER_TIMEOUT:g}s."
        )
    flags: dict[str, bool] = {}
    for line in output.splitlines():
        match = _FLAG_LINE.match(line)
        if match:
            flags[match.group(1)] = match.group(2) is not None
    return flags


def has_flag(args: Sequence[str], name: str) -> bool:
    return any(a.lstrip("-").split("=", 1)[0] == name for a in args if a.startswith("-"))


def positional_start(args: Sequence[str], arity: Mapping[str, bool]) -> int:
    """Index of the first positional argument, following Go's flag package rules."""
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            return i + 1
        if not arg.startswith("-") or arg == "-":
            return i
        name = arg.lstrip("-")
        i += 2 if "=" not in name and arity.get(name, False) else 1
    return i


def asks_for_help(binary: str, command: str, args: Sequence[str]) -> bool:
    """True when ``args`` ask Litestream for ``command``'s help (``-h``/``-help`` as a flag).

    Help needs no configuration, so it must work while the settings are still incomplete
    (for example before the bucket variable is set).
    """
    if not has_flag(args, "h") and not has_flag(args, "help"):
        return False
    flags = args[: positional_start(args, flag_arity(binary, command))]
    return has_flag(flags, "h") or has_flag(flags, "help")


def _positionals(binary: str, command: str, args: Sequence[str]) -> list[str]:
    if not args or not (command in DB_PATH or command == "replicate"):
        return []
    return list(args[positional_start(args, flag_arity(binary, command)) :])


def uses_config(binary: str, command: str, args: Sequence[str]) -> bool:
    """Whether ``litestream COMMAND ARGS`` reads the generated configuration.

    Not when the user gives ``-config``, for ``replicate DB_PATH REPLICA_URL``, nor for
    ``restore`` / ``ltx`` / ``wal`` given a REPLICA_URL (Litestream refuses -config then:
    "cannot specify a replica URL and the -config flag"); those need no setting at all.
    """
    if command not in CONFIG or has_flag(args, "config"):
        return False
    positionals = _positionals(binary, command, args)
    if command == "replicate" and positionals:
        return False
    return not (command in URL_COMMANDS and positionals and _URL.match(positionals[0]))


def build_argv(
    binary: str,
    command: str,
    args: Sequence[str],
    *,
    config_path: str | None,
    socket_path: str | None,
    aliases: Mapping[str, str],
) -> list[str]:
    """The argv that runs ``litestream COMMAND ARGS`` against the generated config.

    A Django alias in a database-path position becomes the database's absolute path;
    ``-config`` and ``-socket`` are added unless the user gave them.
    """
    args = list(args)
    positionals = _positionals(binary, command, args)
    start = len(args) - len(positionals)
    if command in DB_PATH:
        args[start:] = [aliases.get(a, a) for a in positionals]
    elif command == "replicate" and positionals:
        # "replicate DB_PATH REPLICA_URL": only the first positional is a database path.
        args[start] = aliases.get(positionals[0], positionals[0])
    extra: list[str] = []
    if config_path and uses_config(binary, command, args):
        extra += ["-config", config_path]
    if command in SOCKET and socket_path and not has_flag(args, "socket"):
        extra += ["-socket", socket_path]
    return [binary, command, *extra, *args]
