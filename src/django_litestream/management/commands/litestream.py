"""``manage.py litestream``: every Litestream command, plus ``config`` and ``serve``.

This module only maps the command line onto the command's module (one signature for all:
``run(settings, args, write)``); arguments after a Litestream command go to the binary
untouched (:mod:`django_litestream.ops.passthrough`), so flags never drift from it.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from ...errors import LitestreamError
from ...litestream import subcommands

HELP = """Run Litestream with a configuration generated from settings.LITESTREAM.

Commands of django-litestream:
  config      print the generated Litestream YAML (secrets as $VARIABLE references)
  serve       run the web server under Litestream (see 'litestream serve --help')
  verify      prove that each replica restores to what the database holds (verify -h)
  vfs         show where each VFS read replica is (see 'litestream vfs --help')

Litestream's commands:
  {litestream}

Anything after the command goes to Litestream as given: for example
'python manage.py litestream restore -o /tmp/copy.db default'. A Django database alias
works wherever Litestream takes a database path. 'litestream COMMAND -h' shows the
binary's own help for COMMAND."""


class Command(BaseCommand):
    help = HELP.format(
        litestream="\n  ".join(
            f"{name:<11} {subcommands.SUMMARIES[name]}" for name in sorted(subcommands.ALL)
        )
    )
    # Litestream commands check the settings themselves; "serve" runs the checks it needs.
    requires_system_checks: list[str] = []

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> Any:
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        parser.formatter_class = argparse.RawDescriptionHelpFormatter
        return parser

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("command", nargs="?", help="a Litestream command, 'config' or 'serve'")
        parser.add_argument(
            "litestream_args", nargs=argparse.REMAINDER, help="passed to Litestream as given"
        )

    def handle(
        self, *_: Any, command: str | None, litestream_args: list[str], **options: Any
    ) -> None:
        args = litestream_args
        if not command:
            self.print_help("manage.py", "litestream")
            raise CommandError(
                "Give a command, e.g. 'python manage.py litestream databases'.", returncode=2
            )
        try:
            code = self.dispatch(command, args)
        except LitestreamError as exc:
            raise CommandError(str(exc), returncode=exc.exit_code) from None
        if code:
            sys.exit(code)

    def dispatch(self, command: str, args: list[str]) -> int:
        # Imported here, not at the top: Django imports this module to run any litestream
        # command, and serve boots the server sooner without the configuration code loaded
        # first (serve imports what it needs itself; docs/serve.rst, "Performance").
        from ... import conf
        from ...ops import passthrough, showconfig

        passthrough.check_command(command)
        if command == "config" and showconfig.asks_for_help(args):
            self.write(showconfig.HELP)  # help needs no (valid) setting
            return 0
        settings = conf.load()
        if command in COMMANDS:
            module = importlib.import_module(COMMANDS[command], __package__)
            extra = {"error_prefix": "CommandError: "} if command == "serve" else {}
            return int(module.run(settings, args, self.write, **extra))
        return passthrough.run(settings, [command, *args], self.write)

    def write(self, text: str) -> None:
        self.stdout.write(text, ending="")
        self.stdout.flush()


# django-litestream's own commands: each module's ``run(settings, args, write)`` runs one.
COMMANDS = {
    "config": "...ops.showconfig",
    "serve": "...serve.launch",
    "status": "...ops.status",
    "verify": "...ops.verify",
    "vfs": "...vfs.status",
}
