"""System checks of the read replicas that need Django's settings (never a connection).

- ``E019``: a replica's ``primary`` names no ``DATABASES`` alias;
- ``W019``: ``"django_litestream_vfs"`` (the older app) is in ``INSTALLED_APPS``;
- ``W020``: ``get_vfs_databases`` was imported from the older ``django_litestream_vfs``;
- ``W021``: ``LitestreamRouter`` is routing without ``ReadYourWritesMiddleware``.
"""

from __future__ import annotations

from django.conf import settings
from django.core import checks

ROUTER = "django_litestream.db.routers.LitestreamRouter"
MIDDLEWARE = "django_litestream.middleware.ReadYourWritesMiddleware"


def run() -> list[checks.CheckMessage]:
    found: list[checks.CheckMessage] = []
    from django.apps import apps

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
