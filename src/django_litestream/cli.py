"""Run a Litestream subcommand against the configuration generated from the settings."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping, Sequence

from . import binary, commands, config, runner
from .config import Problem, Settings
from .errors import ConfigurationError, UsageError
from .serve.lock import holder

# Subcommands that talk to the replica, so a replica that cannot work is an error for them.
REPLICA_COMMANDS = frozenset({"replicate", "restore", "ltx", "wal"})
LOCAL_COMMANDS = ("config", "serve", "vfs")


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
        return runner.run_foreground(argv, env)
