"""``manage.py litestream``: every Litestream command, plus ``config`` and ``serve``.

This module only maps the command line onto :mod:`django_litestream.cli`; arguments after
the subcommand go to the binary untouched, so flags never drift from the pinned binary.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from ... import cli, commands, conf
from ...errors import LitestreamError

HELP = """Run Litestream with a configuration generated from settings.LITESTREAM.

Commands:
  config      print the generated Litestream YAML (secrets as $VARIABLE references)
  serve       run the web server under Litestream (see 'litestream serve --help')
  vfs         show where each VFS read replica is (see 'litestream vfs --help')
  {litestream}

Anything after the command goes to Litestream as given: for example
'python manage.py litestream restore -o /tmp/copy.db default'. A Django database alias
works wherever Litestream takes a database path. 'litestream COMMAND -h' shows the
binary's own help for COMMAND."""


class Command(BaseCommand):
    help = HELP.format(litestream="\n  ".join(sorted(commands.ALL)))
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
        cli.check_command(command)
        settings = conf.load()
        if command == "config":
            return self.print_config(settings, args)
        if command == "serve":
            from ...serve import command as serve_command

            return serve_command.run(settings, args)
        if command == "vfs":
            from ... import vfs_status

            return vfs_status.run(args, lambda text: self.stdout.write(text, ending=""))
        return cli.run_litestream(settings, command, args)

    def print_config(self, settings: Any, args: list[str]) -> int:
        if args:
            raise CommandError(
                f"'litestream config' takes no arguments (got {' '.join(args)}).", returncode=2
            )
        generated = cli.generate(settings, os.environ, strict=False)
        self.stdout.write(generated.render(), ending="")
        return 0
