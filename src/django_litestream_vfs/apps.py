from __future__ import annotations

from django.apps import AppConfig


class DjangoLitestreamVfsConfig(AppConfig):
    """The older app label; django_litestream's checks run, and W019 says to replace it."""

    name = "django_litestream_vfs"
    verbose_name = "Litestream VFS (older name)"

    def ready(self) -> None:
        from django_litestream.apps import register_checks

        register_checks()
