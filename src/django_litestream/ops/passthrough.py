"""``manage.py litestream COMMAND``: a Litestream command run with the generated configuration.

Before Litestream starts, a command that cannot work says so in this project's words: a
setting Litestream would refuse (the binary itself is asked, see ``config/verdict.py``),
a command or flag of an older release, a control-socket command with no daemon to talk to,
and (``replicate``) a database that is not its replica's continuation.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..config import build, effective, locations
from ..config.generate import generate, print_stderr
from ..config.types import Settings
from ..errors import (
    ConfigurationError,
    NotContinuationError,
    NotRunningError,
    ReplicaUnavailableError,
    UsageError,
)
from ..litestream import binary, process, subcommands
from ..text import did_you_mean

if TYPE_CHECKING:
    from ..replica import preflight

# The replicate guard (replica/guard, preflight, listing), the point-in-time restore and
# serve's lock are imported where they are used: only the command that needs them pays.

LOCAL_COMMANDS = ("config", "serve", "verify", "vfs")

# Commands of the older django-litestream and of Litestream 0.3, and what replaced each.
REPLACED = {
    "init": "the configuration is generated from settings.LITESTREAM for every command, "
    "so there is nothing to initialise; 'python manage.py litestream config' prints it",
    "mcp": "the MCP server runs inside 'replicate' and 'serve' when LITESTREAM['mcp-addr'] "
    "is set, e.g. '127.0.0.1:3001'",
    "vfs-install": "read replicas need 'pip install \"django-litestream[vfs]\"' (see the "
    "'vfs' setting)",
    "generations": "Litestream 0.5 has no generations: 'python manage.py litestream ltx DB' "
    "lists the replica's LTX files",
    "snapshots": "Litestream 0.5 keeps snapshots as LTX files: 'python manage.py litestream "
    "ltx -level all DB' lists them",
}

# Flags of Litestream 0.3 that 0.5 refuses, and what 0.5 uses instead.
_POINT = (
    "restore to a point with -txid TXID (from 'python manage.py litestream ltx DB') or "
    "-timestamp 2025-01-01T00:00:00Z"
)
_ONE_REPLICA = "Litestream 0.5 replicates each database to exactly one replica: drop -replica"
REPLACED_FLAGS = {
    ("restore", "generation"): f"Litestream 0.5 has no generations: {_POINT}",
    ("restore", "index"): f"Litestream 0.5 has no WAL indexes: {_POINT}",
    ("restore", "replica"): _ONE_REPLICA,
    ("ltx", "replica"): _ONE_REPLICA,
    ("wal", "replica"): _ONE_REPLICA + " (and 'wal' is now 'ltx')",
}


def check_command(name: str) -> None:
    if name in subcommands.ALL or name in LOCAL_COMMANDS:
        return
    if name in REPLACED:
        origin = (
            "Litestream 0.3"
            if name in ("generations", "snapshots")
            else "the older django-litestream"
        )
        raise UsageError(f"'{name}' is a command of {origin}: {REPLACED[name]}.")
    raise UsageError(
        f"Unknown Litestream command '{name}'. {did_you_mean(name, subcommands.ALL, cutoff=0.7)}"
        "Run 'python manage.py litestream --help' for the list."
    )


def check_flags(command: str, args: Sequence[str]) -> None:
    for (cmd, flag), replacement in REPLACED_FLAGS.items():
        if cmd == command and subcommands.has_flag(args, flag):
            raise UsageError(f"'{command} -{flag}' is a flag of Litestream 0.3: {replacement}.")


def socket_path(settings: Settings) -> str | None:
    """The control socket for commands that talk to a running daemon.

    The one the settings enable, else the private one of a ``serve`` running on these
    databases (it publishes the socket in its lock file).
    """
    configured = effective.configured_socket(settings)
    if configured:
        return configured
    from ..serve.lock import holder

    for db in settings.dbs:
        running = holder(db.path)
        if running and running.get("socket"):
            return str(running["socket"])
    return None


def _listening(path: str) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(2.0)
        try:
            sock.connect(path)
        except OSError:
            return False
    return True


def daemon_socket(settings: Settings, command: str) -> str:
    """The socket of the running daemon ``command`` talks to; NotRunningError when none."""
    path = socket_path(settings)
    if path and _listening(path):
        return path
    enable = (
        "start 'python manage.py litestream serve' (its socket is found by itself), or "
        "enable the socket of 'replicate': LITESTREAM['socket'] = {'enabled': True, "
        "'path': '/run/app/litestream.sock'}"
    )
    if path is None:
        where = "no 'serve' is running on these databases and LITESTREAM['socket'] is not enabled"
    else:
        where = f"nothing is listening on {path}"
    raise NotRunningError(
        f"'{command}' talks to a running 'python manage.py litestream serve' or 'replicate' "
        f"through its control socket, and {where}. To use it, {enable}."
    )


def run(settings: Settings, args: Sequence[str], write: Callable[[str], Any]) -> int:
    """``manage.py litestream COMMAND ...`` for a command of Litestream's (``args[0]``)."""
    return run_litestream(settings, args[0], args[1:])


def run_litestream(
    settings: Settings,
    command: str,
    args: Sequence[str],
    *,
    environ: Mapping[str, str] | None = None,
    warn: Callable[[str], None] = print_stderr,
) -> int:
    """Run ``litestream COMMAND ARGS`` in the foreground; return its exit status."""
    check_command(command)
    environ = dict(os.environ if environ is None else environ)
    exe = binary.resolve(settings.bin_path, download_url=settings.download_url, progress=warn)
    # Before anything runs it: a program that is not Litestream is one line (E012), never
    # its output echoed raw to the terminal.
    binary.identify(exe, bin_path=settings.bin_path == exe)
    if subcommands.asks_for_help(exe, command, args):
        return process.run_foreground([exe, command, *args], environ)
    adopt = command == "replicate" and any(a in ADOPT_FLAGS for a in args)
    args = [a for a in args if not (adopt and a in ADOPT_FLAGS)]
    check_flags(command, args)
    sock = None
    if command in subcommands.SOCKET and not subcommands.has_flag(args, "socket"):
        sock = daemon_socket(settings, command)
    needs_config = subcommands.uses_config(exe, command, args)
    process.sweep_dead_private_dirs()
    with process.private_dir() as private:
        config_path = None
        env = dict(environ)
        if needs_config:
            generated = generate(settings, environ, strict=True, warn=warn, exe=exe)
            if command == "replicate" and not settings.dbs:
                raise ConfigurationError(
                    "Nothing to replicate: LITESTREAM['dbs'] lists no database. "
                    "Add one, e.g. LITESTREAM = {'dbs': [{'path': 'default'}]}."
                )
            env.update(generated.secret_env)
            expand = env if subcommands.has_flag(args, "no-expand-env") else None
            config_path = process.write_private(
                os.path.join(private, "litestream.yml"), generated.render(expand=expand)
            )
        argv = subcommands.build_argv(
            exe,
            command,
            args,
            config_path=config_path,
            socket_path=sock,
            aliases=settings.aliases,
        )
        if command == "replicate" and not subcommands.has_flag(args, "config"):
            guard_replicate(settings, argv, exe, config_path, env, adopt=adopt, warn=warn)
        if command == "restore":
            from . import pointintime

            ours = config_path is not None and not subcommands.has_flag(args, "config")
            ready = pointintime.prepare(argv, env=env, say=warn, dbs=settings.dbs if ours else None)
            if ready is None:
                return 0
            argv = ready
        return process.run_foreground(argv, env)


# ``manage.py litestream replicate --adopt-local``: ours, removed before Litestream sees it.
ADOPT_FLAGS = ("--adopt-local", "-adopt-local")


def replicate_targets(
    settings: Settings, argv: Sequence[str], exe: str, config_path: str | None
) -> list[preflight.Subject]:
    """The databases ``litestream replicate`` (as ``argv``) would replicate."""
    from ..replica import preflight
    from ..replica.ltx import default_meta_path

    args = list(argv[2:])
    # Only a command line with arguments can hold DB_PATH REPLICA_URL; build_argv has then
    # already read (and cached) the flags from 'replicate -h'.
    given = [a for a in args if a != "-config" and a != config_path]
    arity = subcommands.flag_arity(exe, "replicate") if given else {}
    rest = args[subcommands.positional_start(args, arity) :] if given else []
    if rest:  # replicate DB_PATH REPLICA_URL: no configuration file
        path = os.path.abspath(rest[0])
        url = rest[1] if len(rest) > 1 else ""
        return [preflight.Subject(path, path, url, default_meta_path(path), source=url)]
    if config_path is None:
        return []
    generated = build.build(settings, os.environ)
    targets = []
    for db, entry in zip(settings.dbs, generated.data["dbs"], strict=True):
        if "dir" in db.options:
            continue  # a directory of databases: Litestream finds them itself
        targets.append(
            preflight.Subject(
                db.path,
                db.label,
                locations.describe(entry["replica"], os.environ),
                effective.meta_path(db.path, entry),
            )
        )
    return targets


def guard_replicate(
    settings: Settings,
    argv: Sequence[str],
    exe: str,
    config_path: str | None,
    env: Mapping[str, str],
    *,
    adopt: bool,
    warn: Callable[[str], None],
) -> None:
    """Refuse to replicate a database that is not its replica's continuation (exit 65)."""
    from ..replica import guard, preflight
    from ..replica.dbfile import is_missing
    from ..replica.listing import ReplicaUnreachable

    targets = replicate_targets(settings, argv, exe, config_path)
    restores_missing = subcommands.has_flag(argv[2:], "restore-if-db-not-exists")
    targets = [t for t in targets if not (restores_missing and is_missing(t.path))]
    results = preflight.check_all(
        targets,
        binary=exe,
        config_path=None if any(t.source for t in targets) else config_path,
        env=env,
    )
    refused: list[str] = []
    unreachable: list[str] = []
    for target, result in zip(targets, results, strict=True):
        if isinstance(result, ReplicaUnreachable):
            if adopt:
                warn(f"Adopting {target.label} without comparing it (--adopt-local): {result}")
            else:
                unreachable.append(
                    f"Cannot check {target.label} against its replica {target.replica}: "
                    f"{result}. Check that the replica is reachable and its credentials are set."
                )
        elif result.proceed:
            continue
        elif adopt and result.kind != guard.MISSING:
            warn(preflight.adoption(result, flag="--adopt-local"))
        else:
            refused.append(preflight.refusal(result, command="replicate"))
    if refused:
        raise NotContinuationError("\n".join(refused))
    if unreachable:
        raise ReplicaUnavailableError("\n".join(unreachable))
