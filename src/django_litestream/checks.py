"""System checks for the LITESTREAM setting. They never open a database connection.

IDs are stable; docs/checks.rst lists every one and a test keeps the two in step.
"""

from __future__ import annotations

import os
from typing import Any

from django.core import checks

from . import binary, conf, config, vfs


def _message(problem: config.Problem) -> checks.CheckMessage:
    cls = checks.Error if problem.error else checks.Warning
    return cls(problem.msg, hint=problem.hint.removeprefix("Hint: "), id=problem.id)


@checks.register("litestream")
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    try:
        settings = conf.load()
    except conf.SettingError as exc:
        return [checks.Error(exc.msg, hint=exc.hint.removeprefix("Hint: "), id=exc.check_id)]
    messages: list[checks.CheckMessage] = []
    if binary.find(settings.bin_path) is None:
        if settings.bin_path and os.path.exists(settings.bin_path):
            messages.append(
                checks.Error(
                    f"LITESTREAM['bin_path'] is {settings.bin_path}, which is not executable.",
                    hint=f"Run 'chmod +x {settings.bin_path}', or point bin_path at the "
                    "litestream executable.",
                    id="django_litestream.E005",
                )
            )
        else:
            where = settings.bin_path or "beside the Python interpreter or on PATH"
            messages.append(
                checks.Warning(
                    f"The Litestream executable was not found ({where}); the first "
                    "litestream command will download it.",
                    hint=binary.INSTALL_HINT,
                    id="django_litestream.W006",
                )
            )
    generated = config.build(settings, os.environ)
    problems = generated.problems + config.environment_problems(settings, os.environ)
    problems += vfs.check_vfs(settings.vfs)
    messages.extend(_message(p) for p in problems)
    return messages


@checks.register("litestream")
def check_read_replicas(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """The read replicas' checks that need Django (W019-W021, E019); see vfs_checks."""
    from . import vfs_checks

    return vfs_checks.run()
