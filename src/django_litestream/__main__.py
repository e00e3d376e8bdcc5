"""``python -m django_litestream serve ...``: serve, started without loading Django's apps.

``manage.py litestream serve`` runs ``django.setup()`` first (every installed app, its
models and admin), which serve does not use: it reads only the settings module
(``LITESTREAM``, ``DATABASES``, ``BASE_DIR``, ``WSGI_APPLICATION``). This entry point
imports that module alone and hands over to the same code, so every option, message and
exit code is the same; only the start is shorter (docs/serve.rst, "Performance").
The settings module comes from ``--settings MODULE`` or ``DJANGO_SETTINGS_MODULE``; the
current directory is on the import path, as for ``manage.py``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

USAGE = (
    "usage: python -m django_litestream [--settings MODULE] serve [SERVE OPTIONS] "
    "[-- SERVER COMMAND]"
)

HELP = """serve, as 'python manage.py litestream serve', started without loading Django's apps
(django.setup()): a shorter start, the same options, messages and exit codes. The settings
module comes from --settings or DJANGO_SETTINGS_MODULE; run it from the project's directory.
'python -m django_litestream serve --help' lists serve's options."""


def fail(message: str, code: int) -> int:
    print(message, file=sys.stderr)
    return code


def main(argv: Sequence[str]) -> int:
    from .serve import earlysignals

    earlysignals.record()  # from the first line: a stop is carried out, not a traceback
    args = list(argv)
    if args[:1] == ["--settings"] and len(args) > 1:
        os.environ["DJANGO_SETTINGS_MODULE"] = args[1]
        args = args[2:]
    elif args[:1] and args[0].startswith("--settings="):
        os.environ["DJANGO_SETTINGS_MODULE"] = args[0].partition("=")[2]
        args = args[1:]
    if args[:1] in (["-h"], ["--help"]):
        print(f"{USAGE}\n\n{HELP}")
        return 0
    if args[:1] != ["serve"]:
        got = f"got {args[0]!r}" if args else "got nothing"
        return fail(
            f"python -m django_litestream runs 'serve' only ({got}); every other command is "
            "'python manage.py litestream COMMAND'.",
            2,
        )
    if not os.environ.get("DJANGO_SETTINGS_MODULE"):
        return fail(
            "python -m django_litestream serve: no settings module. Set "
            "DJANGO_SETTINGS_MODULE (e.g. DJANGO_SETTINGS_MODULE=mysite.settings) or give "
            "--settings mysite.settings before 'serve'.",
            2,
        )
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())

    from django.core.exceptions import ImproperlyConfigured

    from . import conf
    from .errors import LitestreamError
    from .serve import launch

    try:
        return launch.run(conf.load(), args[1:])
    except LitestreamError as exc:
        return fail(str(exc), exc.exit_code)
    except (ImportError, ImproperlyConfigured) as exc:
        module = os.environ["DJANGO_SETTINGS_MODULE"]
        return fail(
            f"python -m django_litestream serve: the settings module {module!r} cannot be "
            f"loaded ({exc}). Run it from the project's directory (where manage.py is), or "
            "put that directory on PYTHONPATH.",
            2,
        )


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
