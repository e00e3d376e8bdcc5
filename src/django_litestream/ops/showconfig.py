"""``manage.py litestream config``: print the configuration Litestream is given, never a secret."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

from ..config.generate import generate
from ..config.types import Generated, Settings
from ..errors import ConfigurationError, UsageError
from ..litestream import binary

HELP = """usage: manage.py litestream config

Print the Litestream configuration generated from settings.LITESTREAM (YAML, on standard
output). Secrets never appear as values: credentials kept in the environment are written
as $VARIABLE references, and a secret written literally in the settings as a reference to
a private variable (DJANGO_LITESTREAM_SECRET_N) that only the Litestream processes
started by manage.py receive. Warnings and errors about the setting go to standard error;
the exit status is 78 when the configuration would not work.
"""


def asks_for_help(args: Sequence[str]) -> bool:
    """Help needs no setting (it must work while the setting is still wrong)."""
    return list(args[:1]) in (["-h"], ["-help"], ["--help"])


def run(settings: Settings, args: Sequence[str], write: Callable[[str], Any]) -> int:
    """``manage.py litestream config``; see :data:`HELP`."""
    if asks_for_help(args):
        write(HELP)
        return 0
    if args:
        raise UsageError(
            f"'litestream config' takes no arguments (got {' '.join(args)}); "
            "'python manage.py litestream config -h' says what it prints."
        )
    exe = binary.find(settings.bin_path) or binary.installed_pinned()
    generated = generate(settings, os.environ, strict=False, exe=exe)
    if generated.secret_env:
        write(secrets_comment(generated))
    write(generated.render())
    errors = [p for p in generated.problems if p.error]
    if errors:
        raise ConfigurationError(
            f"The configuration above would not work: {len(errors)} error"
            f"{'s' if len(errors) > 1 else ''} (see above; "
            "'python manage.py check' shows them too)."
        )
    return 0


def secrets_comment(generated: Generated) -> str:
    names = ", ".join(sorted(generated.secret_env))
    return (
        f"# {names}: secrets written literally in settings.LITESTREAM. Only the\n"
        "# Litestream processes that 'python manage.py litestream' starts receive them;\n"
        "# elsewhere they expand to nothing. To use this file outside manage.py, keep\n"
        "# those secrets in environment variables and write '$NAME' in the setting.\n"
    )
