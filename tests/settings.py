"""Settings for in-process tests (system checks, config generation)."""

from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent
SECRET_KEY = "tests-only"
INSTALLED_APPS = ["django_litestream"]
DATABASES = {
    "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": "/tmp/django-litestream-tests.db"}
}
LITESTREAM = {"dbs": [{"path": "default", "replica": {"type": "file", "path": "/tmp/replica"}}]}
USE_TZ = True
