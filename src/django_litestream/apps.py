from __future__ import annotations

from django.apps import AppConfig


class DjangoLitestreamConfig(AppConfig):
    name = "django_litestream"
    verbose_name = "Litestream"

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers the system checks)
