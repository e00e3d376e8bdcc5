"""Exceptions for problems a user can fix, and the exit codes they map to.

Every message names the problem and the fix. The management command turns these
into one line on stderr and a non-zero exit code; they are never shown as tracebacks.
"""

from __future__ import annotations

import argparse
from typing import NoReturn


class LitestreamError(Exception):
    """Base class: a user-fixable problem. ``exit_code`` is what the command exits with."""

    exit_code = 1


class ConfigurationError(LitestreamError):
    """The ``LITESTREAM`` setting (or a command line) is wrong."""

    exit_code = 78


class SettingError(ConfigurationError):
    """A ConfigurationError tied to a system check ID (the same mistake, as ``check`` says it)."""

    def __init__(self, check_id: str, msg: str, hint: str) -> None:
        super().__init__(f"{msg} {hint}")
        self.check_id = check_id
        self.msg = msg
        self.hint = hint


class BinaryNotFoundError(LitestreamError):
    """The Litestream executable cannot be found or installed."""

    exit_code = 127


class DownloadError(BinaryNotFoundError):
    """Downloading the Litestream release failed or did not verify."""


class UsageError(LitestreamError):
    """The command line is wrong."""

    exit_code = 2


class UsageParser(argparse.ArgumentParser):
    """An argument parser whose mistakes are one :class:`UsageError` line naming ``-h``."""

    def __init__(self, command: str) -> None:
        super().__init__(prog=f"manage.py litestream {command}", add_help=False)
        self.command = command

    def error(self, message: str) -> NoReturn:
        raise UsageError(
            f"{self.command}: {message}. Run 'python manage.py litestream {self.command} -h'."
        )


class NotContinuationError(LitestreamError):
    """A local database is not a continuation of its replica; replicating it would lose data."""

    exit_code = 65


class ReplicaUnavailableError(LitestreamError):
    """The replica could not be read, so a local database could not be checked against it."""

    exit_code = 69


class NotRunningError(LitestreamError):
    """A control-socket command found no running Litestream to talk to (EX_UNAVAILABLE)."""

    exit_code = 69


class NoBackupError(LitestreamError):
    """The replica holds no backup for what was asked (no backup at all, or none that old)."""

    exit_code = 66


class RestoreRefusedError(LitestreamError):
    """``restore`` would overwrite the database of a running serve, or an existing database
    without ``-force`` (EX_CANTCREAT: the output cannot be created)."""

    exit_code = 73


# The exit codes of 'python manage.py litestream COMMAND' that are this project's own (a
# Litestream command otherwise exits with Litestream's code). docs/commands.rst has a row for
# each; a test keeps the two in step. serve's own are in serve/exitcodes.py.
EXIT_CODES = {
    1: "vfs: a read replica could not be opened, or its storage listed",
    2: "wrong command line (an unknown command, alias or flag; a time restore cannot read)",
    65: "replicate: a database is not its replica's continuation; verify: a database failed",
    66: "restore -timestamp: the replica holds no backup that old (or none at all)",
    69: "no running daemon to talk to; a replica that could not be read (replicate, status, "
    "restore -timestamp)",
    73: "restore: the output is a running serve's database, or exists and -force is missing",
    75: "verify: a database was inconclusive (it kept changing); run it again",
    78: "the LITESTREAM setting is wrong, or there is nothing to work on",
    127: "the Litestream executable was not found and could not be installed",
}
