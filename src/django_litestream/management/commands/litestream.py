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

from ... import commands
from ...errors import ConfigurationError, LitestreamError

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
            f"{name:<11} {commands.SUMMARIES[name]}" for name in sorted(commands.ALL)
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
        from ... import cli, conf

        cli.check_command(command)
        if command == "config" and args[:1] in (["-h"], ["-help"], ["--help"]):
            self.stdout.write(CONFIG_HELP)  # help needs no (valid) setting
            return 0
        settings = conf.load()
        if command == "config":
            return self.print_config(settings, args)
        if command == "serve":
            from ...serve import command as serve_command

            return serve_command.run(settings, args, error_prefix="CommandError: ")
        if command == "status":
            from ... import status

            return status.run(settings, args, self.write)
        if command == "verify":
            from ... import verify

            return verify.run(settings, args, self.write)
        if command == "vfs":
            from ... import vfs_status

            return vfs_status.run(args, lambda text: self.stdout.write(text, ending=""))
        return cli.run_litestream(settings, command, args)

    def write(self, text: str) -> None:
        self.stdout.write(text, ending="")
        self.stdout.flush()

    def print_config(self, settings: Any, args: list[str]) -> int:
        if args:
            raise CommandError(
                f"'litestream config' takes no arguments (got {' '.join(args)}); "
                "'python manage.py litestream config -h' says what it prints.",
                returncode=2,
            )
        from ... import binary, cli

        exe = binary.find(settings.bin_path) or binary.installed_pinned()
        generated = cli.generate(settings, os.environ, strict=False, exe=exe)
        if generated.secret_env:
            self.stdout.write(secrets_comment(generated))
        self.stdout.write(generated.render(), ending="")
        errors = [p for p in generated.problems if p.error]
        if errors:
            raise CommandError(
                f"The configuration above would not work: {len(errors)} error"
                f"{'s' if len(errors) > 1 else ''} (see above; "
                "'python manage.py check' shows them too).",
                returncode=ConfigurationError.exit_code,
            )
        return 0


CONFIG_HELP = """usage: manage.py litestream config

Print the Litestream configuration generated from settings.LITESTREAM (YAML, on standard
output). Secrets never appear as values: credentials kept in the environment are written
as $VARIABLE references, and a secret written literally in the settings as a reference to
a private variable (DJANGO_LITESTREAM_SECRET_N) that only the Litestream processes
started by manage.py receive. Warnings and errors about the setting go to standard error;
the exit status is 78 when the configuration would not work.
"""


def secrets_comment(generated: Any) -> str:
    names = ", ".join(sorted(generated.secret_env))
    return (
        f"# {names}: secrets written literally in settings.LITESTREAM. Only the\n"
        "# Litestream processes that 'python manage.py litestream' starts receive them;\n"
        "# elsewhere they expand to nothing. To use this file outside manage.py, keep\n"
        "# those secrets in environment variables and write '$NAME' in the setting.\n"
    )
