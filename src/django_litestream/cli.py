"""Run a Litestream subcommand against the configuration generated from the settings."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping, Sequence

from . import binary, commands, config, guard, locations, preflight, runner
from .config import Problem, Settings
from .errors import (
    ConfigurationError,
    NotContinuationError,
    ReplicaUnavailableError,
    UsageError,
)
from .replica import ReplicaUnreachable
from .serve.lock import holder
from .serve.plan import default_meta_path

# Subcommands that talk to the replica, so a replica that cannot work is an error for them.
REPLICA_COMMANDS = frozenset({"replicate", "restore", "ltx", "wal"})
LOCAL_COMMANDS = ("config", "serve")


def print_stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def check_command(name: str) -> None:
    if name in commands.ALL or name in LOCAL_COMMANDS:
        return
    close = commands.suggest(name)
    hint = f"Did you mean '{close}'? " if close else ""
    raise UsageError(
        f"Unknown Litestream command '{name}'. {hint}"
        "Run 'python manage.py litestream --help' for the list."
    )


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
    for db in settings.dbs:
        running = holder(db.path)
        if running and running.get("socket"):
            return str(running["socket"])
    return None


def generate(
    settings: Settings,
    environ: Mapping[str, str],
    *,
    strict: bool,
    warn: Callable[[str], None] = print_stderr,
) -> config.Generated:
    """Build the config and report findings: warnings printed, errors raised when ``strict``."""
    generated = config.build(settings, environ)
    problems: list[Problem] = generated.problems + config.environment_problems(settings, environ)
    problems += locations.collisions(settings.dbs, generated.data["dbs"], environ)
    for problem in problems:
        if problem.error and strict:
            raise ConfigurationError(f"{problem} ({problem.id})")
        warn(f"Warning: {problem} ({problem.id})")
    return generated


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
    needs_config = command in commands.CONFIG and not commands.has_flag(args, "config")
    with runner.private_dir() as private:
        config_path = None
        env = dict(environ)
        if needs_config:
            generated = generate(settings, environ, strict=command in REPLICA_COMMANDS, warn=warn)
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
            socket_path=socket_path(settings) if command in commands.SOCKET else None,
            aliases=settings.aliases,
        )
        if command == "replicate" and not commands.has_flag(args, "config"):
            guard_replicate(settings, argv, exe, config_path, env, adopt=adopt, warn=warn)
        return runner.run_foreground(argv, env)


# ``manage.py litestream replicate --adopt-local``: ours, removed before Litestream sees it.
ADOPT_FLAGS = ("--adopt-local", "-adopt-local")


def replicate_targets(
    settings: Settings, argv: Sequence[str], exe: str, config_path: str | None
) -> list[preflight.Target]:
    """The databases ``litestream replicate`` (as ``argv``) would replicate."""
    from .serve.command import describe_replica

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
    targets = replicate_targets(settings, argv, exe, config_path)
    restores_missing = commands.has_flag(argv[2:], "restore-if-db-not-exists")
    targets = [t for t in targets if not (restores_missing and guard.is_missing(t.path))]
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
