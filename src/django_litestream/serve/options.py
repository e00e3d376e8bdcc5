"""Options of ``serve``: one declaration each drives the CLI, the settings and the docs.

Every option can be given on the command line or in ``LITESTREAM["serve"]``; the command
line wins.
"""

from __future__ import annotations

import argparse
import math
import re
import shlex
import textwrap
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn

from ..errors import ConfigurationError, UsageError
from ..text import did_you_mean


@dataclass(frozen=True)
class Option:
    name: str
    setting: str
    default: Any
    help: str
    kind: str = "seconds"  # seconds | interval (seconds, 0 = off) | flag | commands | mode | url


OPTIONS = (
    Option(
        "--graceful-timeout",
        "graceful_timeout",
        30.0,
        "Seconds the server gets to exit after TERM/INT before its process group is "
        "killed; the final sync runs either way.",
    ),
    Option(
        "--ready-timeout",
        "ready_timeout",
        60.0,
        "Seconds to wait for Litestream to be ready (holding every database, and each "
        "replica holding what its database held at start) before the server starts.",
    ),
    Option(
        "--restore-timeout",
        "restore_timeout",
        60.0,
        "Seconds an unreachable replica is retried, with backoff, when a missing "
        "database is restored on cold start.",
    ),
    Option(
        "--replica-check-interval",
        "replica_check_interval",
        30.0,
        "While the server runs, seconds between checks that every replica holds what "
        "Litestream has copied; a replica that stops keeping up (storage down, credentials "
        "revoked) is noticed within this plus 2 x sync-interval, logged as a warning (and "
        "its end with how long it lasted), and shown by status and the health endpoint. 0 "
        "turns the checks off.",
        kind="interval",
    ),
    Option(
        "--alert-webhook",
        "alert_webhook",
        "",
        "A URL (http or https) that receives a JSON POST when a replica outage starts and "
        "when it ends (see the replica checks). Prefer the setting, read from an environment "
        "variable: a chat service's webhook URL is a secret, and a command line is not.",
        kind="url",
    ),
    Option(
        "--require-replica",
        "require_replica",
        False,
        "Exit instead of starting fresh when a missing database's replica is empty "
        "(a typo'd bucket path looks exactly like an empty replica).",
        kind="flag",
    ),
    Option(
        "--wait-for-replica",
        "wait_for_replica",
        False,
        "Before the server starts, wait until every replica holds its database, including "
        "the fresh copy Litestream uploads after a restore and what --pre commands wrote. "
        "By default the server starts once Litestream holds every database and each replica "
        "holds what the database held at start; later uploads finish while it serves.",
        kind="flag",
    ),
    Option(
        "--boot-after-restore",
        "boot_after_restore",
        False,
        "Start the server only once it may accept requests (after the guard, the restore "
        "and Litestream's readiness). By default gunicorn with no configuration file of its "
        "own boots at once, while missing databases are restored, and accepts requests only "
        "then; use this when the application opens the database while it is imported.",
        kind="flag",
    ),
    Option(
        "--verbose",
        "verbose",
        False,
        "Show Litestream's INFO log lines too (its start-up, snapshots, compactions); by "
        "default only its warnings and errors are shown, unless LITESTREAM['logging'] "
        "sets a level.",
        kind="flag",
    ),
    Option(
        "--adopt-local",
        "adopt_local",
        False,
        "Replicate a local database that is not a continuation of its replica anyway, as "
        "the new truth (logged with both positions). Without it serve exits 65.",
        kind="flag",
    ),
    Option(
        "--restore-over-local",
        "restore_over_local",
        False,
        "Move a local database that is not a continuation of its replica (with its -wal, "
        "-shm and Litestream state) aside to <db>.replaced-<time>, and restore the replica.",
        kind="flag",
    ),
    Option(
        "--pre",
        "pre",
        (),
        "A command to run after the restore and before the server, with its writes "
        'replicated, e.g. --pre "python manage.py migrate --noinput". Repeatable.',
        kind="commands",
    ),
    Option(
        "--umask",
        "umask",
        0o077,
        "The umask (octal) for what serve and Litestream create: a database restored or "
        "created empty, its -wal and -shm, Litestream's state directory and LTX files, a "
        "file replica. The default 077 keeps them private to this user; 022 makes them "
        "world-readable. The server and --pre commands keep the umask serve was started with.",
        kind="mode",
    ),
)

# No timeout beyond a week: longer is a typo, and "inf" or "1e308" would overflow a wait.
MAX_SECONDS = 7 * 24 * 3600.0

COMMAND_SETTING = "command"
KNOWN_SETTINGS = frozenset({o.setting for o in OPTIONS} | {COMMAND_SETTING})


@dataclass(frozen=True)
class ServeOptions:
    graceful_timeout: float = 30.0
    ready_timeout: float = 60.0
    restore_timeout: float = 60.0
    replica_check_interval: float = 30.0
    alert_webhook: str = ""
    require_replica: bool = False
    wait_for_replica: bool = False
    boot_after_restore: bool = False
    verbose: bool = False
    adopt_local: bool = False
    restore_over_local: bool = False
    pre: tuple[tuple[str, ...], ...] = ()
    umask: int = 0o077
    command: tuple[str, ...] = field(default=())


def _epilog() -> str:
    from .exitcodes import EXIT_CODES

    codes = "\n".join(
        textwrap.fill(text, 76, initial_indent=f"  {code:<4}", subsequent_indent=" " * 6)
        for code, text in sorted(EXIT_CODES.items())
    )
    return (
        "Every option may also be set in LITESTREAM['serve'] under the setting name shown\n"
        "after it in brackets, e.g. LITESTREAM['serve']['graceful_timeout'] = 20; the\n"
        "command line wins. The server command's setting is 'command'.\n\n"
        "Signals: TERM/INT stop gracefully (a second one, or QUIT, stops the server now);\n"
        "HUP, USR1, USR2, TTIN, TTOU and WINCH go to the server only.\n\n"
        "Exit status: the server's own, or 128+N if it died of signal N; otherwise\n"
        f"{codes}"
    )


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="manage.py litestream serve",
        description="Restore missing databases, start Litestream, wait until it has\n"
        "replicated, then run COMMAND (default: LITESTREAM['serve']['command'], else\n"
        "gunicorn on WSGI_APPLICATION) and forward signals to it.",
        epilog=_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    for option in OPTIONS:
        shown = _SHOWN_DEFAULT.get(option.kind)
        default = f"Default: {format(option.default, shown)}. " if shown else ""
        p.add_argument(
            option.name,
            dest=option.setting,
            default=None,
            help=f"{option.help} {default}[{option.setting}]",
            **_ARGUMENT[option.kind],
        )
    p.add_argument(
        "command",
        nargs=argparse.REMAINDER,
        help="the server command, after '--' (e.g. -- gunicorn app.wsgi)",
    )
    return p


# How each kind of option reads on the command line, and how its default is shown.
_ARGUMENT: dict[str, dict[str, Any]] = {
    "flag": {"action": "store_true"},
    "commands": {"action": "append", "metavar": "COMMAND"},
    "url": {"metavar": "URL"},
    "mode": {"metavar": "MODE"},
    "seconds": {"type": float, "metavar": "SECONDS"},
    "interval": {"type": float, "metavar": "SECONDS"},
}
_SHOWN_DEFAULT = {"mode": "03o", "seconds": "g", "interval": "g"}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"serve: {message}. Run 'python manage.py litestream serve --help'.")


def _split(value: Any, where: str, error: type[Exception] = ConfigurationError) -> tuple[str, ...]:
    if isinstance(value, str):
        try:
            parts = shlex.split(value)
        except ValueError as exc:  # "No closing quotation", "No escaped character"
            raise error(
                f"{where} {value!r} cannot be split into a command: {str(exc).lower()}. "
                "Close the quote, or give the command as a list of strings."
            ) from None
    elif isinstance(value, Sequence) and all(isinstance(v, str) for v in value):
        parts = list(value)
    else:
        raise ConfigurationError(
            f"{where} must be a command string or a list of strings, not {value!r}. "
            "Write e.g. 'gunicorn myproject.wsgi' or ['gunicorn', 'myproject.wsgi']."
        )
    if not parts or not parts[0].strip():
        raise error(f"{where} is empty ({value!r}). Give the command to run.")
    return tuple(parts)


def _shown_url(value: Any) -> str:
    """A rejected URL for the error line: its scheme and host at most (never its path)."""
    if not isinstance(value, str):
        return repr(value)
    parts = urllib.parse.urlsplit(value)
    if parts.scheme and parts.netloc:
        return repr(f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}/...")
    return repr(value[:40] + ("..." if len(value) > 40 else ""))


def parse_mode(value: Any) -> int | None:
    """A umask as 0o077, 63, '077' or '0o077'; None when it is not one."""
    if isinstance(value, str):
        match = re.fullmatch(r"(?:0o|0)?([0-7]{1,3})", value.strip())
        return int(match.group(1), 8) if match else None
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 0o777:
        return value
    return None


def webhook_problem(value: Any) -> str | None:
    """Why ``value`` cannot be the alert webhook's URL, or None ("" turns it off)."""
    if not isinstance(value, str):
        return f"must be a URL string, not {type(value).__name__}"
    if value == "":
        return None
    parts = urllib.parse.urlsplit(value)
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or any(c.isspace() for c in value)
    ):
        return "must be an http:// or https:// URL such as 'https://hooks.example.com/T0/B1'"
    try:
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        return "has a port that is not a number"
    return None


def _seconds_ok(value: float, *, zero: bool) -> bool:
    return math.isfinite(value) and (value >= 0 if zero else value > 0) and value <= MAX_SECONDS


def _from_setting(option: Option, value: Any) -> Any:
    where = f"LITESTREAM['serve']['{option.setting}']"
    if option.kind == "mode":
        mode = parse_mode(value)
        if mode is None:
            raise ConfigurationError(
                f"{where} must be an octal umask such as 0o077 or '077', not {value!r}."
            )
        return mode
    if option.kind == "url":
        problem = webhook_problem(value)
        if problem:
            raise ConfigurationError(f"{where} {problem}; it is {_shown_url(value)}.")
        return value
    if option.kind == "flag":
        if not isinstance(value, bool):
            raise ConfigurationError(f"{where} must be True or False, not {value!r}.")
        return value
    if option.kind == "commands":
        if isinstance(value, str) or not isinstance(value, Sequence):
            raise ConfigurationError(
                f"{where} must be a list of commands, e.g. "
                "[['python', 'manage.py', 'migrate', '--noinput']], not {value!r}."
            )
        return tuple(_split(v, f"{where}[{i}]") for i, v in enumerate(value))
    zero = option.kind == "interval"
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not _seconds_ok(float(value), zero=zero)
    ):
        what = "a number of seconds (0 = off)" if zero else "a positive number of seconds"
        raise ConfigurationError(
            f"{where} must be {what}, at most {MAX_SECONDS:g} (a week), not {value!r}."
        )
    return float(value)


def parse(args: Sequence[str], setting: Mapping[str, Any]) -> ServeOptions:
    """Merge the command line over ``LITESTREAM['serve']``."""
    unknown = sorted(set(setting) - KNOWN_SETTINGS)
    if unknown:
        hint = did_you_mean(str(unknown[0]), KNOWN_SETTINGS)
        raise ConfigurationError(
            f"LITESTREAM['serve'] has unknown key(s) {', '.join(map(repr, unknown))}. "
            f"{hint}Known keys: {', '.join(sorted(KNOWN_SETTINGS))}."
        )
    p = parser()
    p.__class__ = _Parser
    ns = p.parse_args(list(args))
    values: dict[str, Any] = {}
    for option in OPTIONS:
        cli_value = getattr(ns, option.setting)
        if cli_value is not None:
            if option.kind == "commands":
                cli_value = tuple(_split(v, f"serve: {option.name}", UsageError) for v in cli_value)
            elif option.kind == "url":
                problem = webhook_problem(cli_value)
                if problem:
                    raise UsageError(
                        f"serve: {option.name} {problem}; it is {_shown_url(cli_value)}."
                    )
            elif option.kind == "mode":
                mode = parse_mode(cli_value)
                if mode is None:
                    raise UsageError(
                        f"serve: {option.name} must be an octal umask such as 077, "
                        f"not {cli_value!r}."
                    )
                cli_value = mode
            elif option.kind == "seconds" and not _seconds_ok(cli_value, zero=False):
                raise UsageError(
                    f"serve: {option.name} must be a positive number of seconds, at most "
                    f"{MAX_SECONDS:g} (a week), not {cli_value:g}."
                )
            elif option.kind == "interval" and not _seconds_ok(cli_value, zero=True):
                raise UsageError(
                    f"serve: {option.name} must be 0 (off) or a number of seconds, at most "
                    f"{MAX_SECONDS:g} (a week), not {cli_value:g}."
                )
            values[option.setting] = cli_value
        elif option.setting in setting:
            values[option.setting] = _from_setting(option, setting[option.setting])
        else:
            values[option.setting] = option.default
    if values["adopt_local"] and values["restore_over_local"]:
        raise UsageError(
            "serve: --adopt-local and --restore-over-local contradict each other; give one."
        )
    command = list(ns.command)
    if command and command[0] == "--":
        command = command[1:]
    if command and not command[0].strip():
        raise UsageError(
            f"serve: the server command after '--' is empty ({command[0]!r}). Give the "
            "command to run, or nothing after '--' for the default (gunicorn)."
        )
    if command:
        values["command"] = tuple(command)
    elif COMMAND_SETTING in setting:
        values["command"] = _split(setting[COMMAND_SETTING], "LITESTREAM['serve']['command']")
    return ServeOptions(**values)
