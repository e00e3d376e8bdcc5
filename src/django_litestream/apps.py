from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.apps import AppConfig
from django.core import checks

# The system checks of checks.py, by name: (function, registered for ``check --deploy``
# only). They are registered here and imported when the checks run, not at every start of
# every ``manage.py`` command: checks.py needs the configuration code and PyYAML (about
# 15 ms), which ``manage.py litestream serve`` would otherwise load before it boots the
# server (docs/serve.rst, "Performance").
CHECKS = (
    ("check_settings", False),
    ("check_replica_locations", False),
    ("check_deploy", True),
    ("check_read_replicas", False),
    ("check_operations", False),
)


def _deferred(name: str) -> Callable[..., Any]:
    def check(app_configs: Any = None, **kwargs: Any) -> Any:
        from . import checks as ours

        return getattr(ours, name)(app_configs, **kwargs)

    check.__name__ = check.__qualname__ = name
    check.__module__ = f"{__package__}.checks"
    return check


# Made once, so that a second ready() (a test re-populating the registry) registers the
# same functions again, which Django's registry keeps once.
DEFERRED = tuple((_deferred(name), deploy) for name, deploy in CHECKS)


def register_checks() -> None:
    """Register the checks (again is harmless: Django's registry keeps each function once)."""
    for check, deploy in DEFERRED:
        checks.register(check, "litestream", deploy=deploy)


class DjangoLitestreamConfig(AppConfig):
    name = "django_litestream"
    verbose_name = "Litestream"

    def ready(self) -> None:
        register_checks()
