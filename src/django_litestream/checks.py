"""System checks for the LITESTREAM setting. They never open a database connection.

Besides the project's own findings, the Litestream binary judges the generated
configuration (``litestream databases -json``, about 25 ms; it opens no database and no
network connection), so that ``check`` never passes a setting Litestream refuses at start.

IDs are stable; docs/checks.rst lists every one and a test keeps the two in step. apps.py
registers the checks by name and imports this module only when they run.
"""

from __future__ import annotations

import os
from typing import Any

from django.core import checks

from . import conf, vfs
from .config import build, findings, locations
from .config.types import Problem, Settings
from .errors import SettingError
from .litestream import binary


def _message(problem: Problem) -> checks.CheckMessage:
    cls = checks.Error if problem.error else checks.Warning
    return cls(problem.msg, hint=problem.hint.removeprefix("Hint: "), id=problem.id)


def _binary(settings: Settings) -> tuple[str | None, list[checks.CheckMessage]]:
    """The executable the commands will run (None: none yet), and what to say about it."""
    found = binary.find(settings.bin_path)
    if found:
        return found, []
    if settings.bin_path and os.path.exists(settings.bin_path):
        msg, hint = binary.not_a_file(settings.bin_path) or ("", "")
        return None, [checks.Error(msg, hint=hint, id=binary.NOT_RUNNABLE)]
    installed = binary.installed_pinned() if settings.bin_path else None
    if installed:
        return installed, [
            checks.Warning(
                f"LITESTREAM['bin_path'] is {settings.bin_path}, which does not exist; the "
                f"installed Litestream {binary.PINNED_VERSION} at {installed} is used instead.",
                hint="Correct bin_path, or remove it to use the installed executable.",
                id="django_litestream.W006",
            )
        ]
    where = settings.bin_path or "beside the Python interpreter or on PATH"
    return None, [
        checks.Warning(
            f"The Litestream executable was not found ({where}); the first litestream "
            "command will download it.",
            hint=binary.INSTALL_HINT,
            id="django_litestream.W006",
        )
    ]


def check_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    try:
        settings = conf.load()
    except SettingError as exc:
        return [checks.Error(exc.msg, hint=exc.hint.removeprefix("Hint: "), id=exc.check_id)]
    exe, messages = _binary(settings)
    generated = build.build(settings, os.environ)
    problems = findings.collect(
        settings, generated, os.environ, bucket_required=False, exe=exe, stand_ins=True
    )
    problems += vfs.check_vfs(settings.vfs)
    messages.extend(_message(p) for p in problems)
    return messages


def check_replica_locations(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """E008: two databases whose replicas resolve to one location."""
    try:
        settings = conf.load()
    except SettingError:
        return []  # check_settings reports it
    generated = build.build(settings, os.environ)
    return [
        _message(p) for p in locations.collisions(settings.dbs, generated.data["dbs"], os.environ)
    ]


def check_deploy(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Under ``check --deploy`` a missing bucket is an error (E006): the deployment replicates."""
    try:
        settings = conf.load()
    except SettingError:
        return []  # check_settings reports it
    if any(db.replica is None for db in settings.dbs) and not build.auto_bucket_given(
        settings, os.environ
    ):
        return [_message(findings.bucket_problem(settings, os.environ, required=True))]
    return []


def check_read_replicas(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """The read replicas' checks that need Django's settings (never a connection).

    - ``E019``: a replica's ``primary`` names no ``DATABASES`` alias;
    - ``W019``: ``"django_litestream_vfs"`` (the older app) is in ``INSTALLED_APPS``;
    - ``W020``: ``get_vfs_databases`` was imported from the older ``django_litestream_vfs``;
    - ``W021``: ``LitestreamRouter`` is routing without ``ReadYourWritesMiddleware``.
    """
    return _read_replica_messages()


def check_operations(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """E020-E021, W022-W023: the health endpoint's and serve's settings."""
    from .errors import LitestreamError
    from .ops import health
    from .serve import options

    try:
        settings = conf.load()
    except SettingError:
        return []  # check_settings reports it
    messages: list[checks.CheckMessage] = []
    try:
        health.parse(settings.health)
    except health.HealthSettingError as exc:
        messages.append(
            checks.Error(exc.msg, hint=exc.hint.removeprefix("Hint: "), id=health.CHECK_ID)
        )
    try:
        serve = options.parse([], settings.serve)
    except LitestreamError as exc:
        messages.append(
            checks.Error(
                str(exc),
                hint="'python manage.py litestream serve' refuses to start with it; see the "
                "serve options in the docs.",
                id="django_litestream.E021",
            )
        )
        return messages
    if serve.replica_check_interval == 0 and _health_is_routed():
        messages.append(
            checks.Warning(
                "The health endpoint (django_litestream.urls) is routed, but serve's replica "
                "checks are off (LITESTREAM['serve']['replica_check_interval'] = 0): it will "
                "answer 503 'unchecked' for every database.",
                hint="Remove the setting (checks every 30s) or give it a number of seconds.",
                id="django_litestream.W022",
            )
        )
    if serve.alert_webhook and _cleartext_remote(serve.alert_webhook):
        messages.append(
            checks.Warning(
                "LITESTREAM['serve']['alert_webhook'] is a plain http:// URL to another "
                "machine: the alerts, and the URL's secret path, travel unencrypted.",
                hint="Use the service's https:// URL.",
                id="django_litestream.W023",
            )
        )
    return messages


def _health_is_routed() -> bool:
    from django.urls import NoReverseMatch, reverse

    try:
        reverse("litestream:health")
    except NoReverseMatch:
        return False
    except Exception:  # no URLconf at all (ROOT_URLCONF unset): nothing is routed
        return False
    return True


def _cleartext_remote(url: str) -> bool:
    import ipaddress
    import urllib.parse

    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme != "http" or host == "localhost":
        return False
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:
        return True


ROUTER = "django_litestream.db.routers.LitestreamRouter"
MIDDLEWARE = "django_litestream.middleware.ReadYourWritesMiddleware"


def _read_replica_messages() -> list[checks.CheckMessage]:
    from django.apps import apps
    from django.conf import settings

    found: list[checks.CheckMessage] = []

    if apps.is_installed("django_litestream_vfs"):
        found.append(
            checks.Warning(
                "'django_litestream_vfs' in INSTALLED_APPS is the older django-litestream-vfs "
                "app; its read replicas are part of 'django_litestream' now.",
                hint="Replace it with 'django_litestream' in INSTALLED_APPS (or remove it if "
                "that is already there).",
                id="django_litestream.W019",
            )
        )
    import sys

    legacy = sys.modules.get("django_litestream_vfs")
    if legacy is not None and getattr(legacy, "used", False):
        found.append(
            checks.Warning(
                "get_vfs_databases() was imported from django_litestream_vfs, the older "
                "django-litestream-vfs module.",
                hint="Import it from django_litestream: "
                "'from django_litestream import get_vfs_databases'.",
                id="django_litestream.W020",
            )
        )
    vfs_engine = "django_litestream.db.backends.litestream_vfs"
    for alias, entry in settings.DATABASES.items():
        primary = (entry.get("OPTIONS") or {}).get("primary")
        if entry.get("ENGINE") == vfs_engine and primary and primary not in settings.DATABASES:
            found.append(
                checks.Error(
                    f"LITESTREAM['vfs']['{alias}']['primary'] is {primary!r}, which is not an "
                    "alias in DATABASES.",
                    hint="Name the DATABASES alias this replica copies (reads fall back to it "
                    f"and writes go there), one of: {', '.join(settings.DATABASES)}.",
                    id="django_litestream.E019",
                )
            )
    routers = [
        r if isinstance(r, str) else f"{type(r).__module__}.{type(r).__name__}"
        for r in getattr(settings, "DATABASE_ROUTERS", [])
    ]
    if ROUTER in routers and MIDDLEWARE not in getattr(settings, "MIDDLEWARE", []):
        found.append(
            checks.Warning(
                f"DATABASE_ROUTERS has {ROUTER} but MIDDLEWARE lacks {MIDDLEWARE}: a write "
                "made with .using() or raw SQL is not seen, and the reads after it in the same "
                "request may miss it.",
                hint=f"Add '{MIDDLEWARE}' to MIDDLEWARE.",
                id="django_litestream.W021",
            )
        )
    return found
