"""System checks for the LITESTREAM setting. They never open a database connection.

Besides the project's own findings, the Litestream binary judges the generated
configuration (``litestream databases -json``, about 25 ms; it opens no database and no
network connection), so that ``check`` never passes a setting Litestream refuses at start.

IDs are stable; docs/checks.rst lists every one and a test keeps the two in step.
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


@checks.register("litestream")
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


@checks.register("litestream")
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


@checks.register("litestream", deploy=True)
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


@checks.register("litestream")
def check_read_replicas(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """The read replicas' checks that need Django (W019-W021, E019); see vfs_checks."""
    from . import vfs_checks

    return vfs_checks.run()
