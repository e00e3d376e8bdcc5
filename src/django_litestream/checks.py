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

from . import binary, conf, config, findings, locations, vfs
from .config import Settings


def _message(problem: config.Problem) -> checks.CheckMessage:
    cls = checks.Error if problem.error else checks.Warning
    return cls(problem.msg, hint=problem.hint.removeprefix("Hint: "), id=problem.id)


def _binary(settings: Settings) -> tuple[str | None, list[checks.CheckMessage]]:
    """The executable the commands will run (None: none yet), and what to say about it."""
    found = binary.find(settings.bin_path)
    if found:
        return found, []
    if settings.bin_path and os.path.exists(settings.bin_path):
        msg, hint = binary.not_a_file(settings.bin_path) or ("", "")
        return None, [checks.Error(msg, hint=hint, id="django_litestream.E005")]
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
    except conf.SettingError as exc:
        return [checks.Error(exc.msg, hint=exc.hint.removeprefix("Hint: "), id=exc.check_id)]
    exe, messages = _binary(settings)
    generated = config.build(settings, os.environ)
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
    except conf.SettingError:
        return []  # check_settings reports it
    generated = config.build(settings, os.environ)
    return [
        _message(p) for p in locations.collisions(settings.dbs, generated.data["dbs"], os.environ)
    ]


def check_deploy(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Under ``check --deploy`` a missing bucket is an error (E006): the deployment replicates."""
    try:
        settings = conf.load()
    except conf.SettingError:
        return []  # check_settings reports it
    if any(db.replica is None for db in settings.dbs) and not config.auto_replica_bucket_set(
        os.environ
    ):
        return [_message(config.bucket_problem(settings, os.environ, required=True))]
    return []


def check_read_replicas(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """The read replicas' checks that need Django (W019-W021, E019); see vfs_checks."""
    from . import vfs_checks

    return vfs_checks.run()


def check_operations(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """E020-E021, W022-W023: the health endpoint's and serve's settings."""
    from . import health
    from .errors import LitestreamError
    from .serve import options

    try:
        settings = conf.load()
    except conf.SettingError:
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
