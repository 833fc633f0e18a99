"""Settings of the test project: the database from ``PGSWEEP_DJANGO_DSN``, nothing else."""

from __future__ import annotations

import json
import os

from psycopg.conninfo import conninfo_to_dict

_dsn = conninfo_to_dict(os.environ["PGSWEEP_DJANGO_DSN"])

SECRET_KEY = "pgsweep-test-project-not-secret"  # a throwaway test project
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"
ROOT_URLCONF = "tests.django_app.urls"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "oauth2_provider",
]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": _dsn.get("dbname", ""),
        "USER": _dsn.get("user", ""),
        "PASSWORD": _dsn.get("password", ""),
        "HOST": _dsn.get("host", ""),
        "PORT": _dsn.get("port", ""),
    }
}
# The filler creates users; the default hasher's 1,000,000 rounds would dominate its time.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
SESSION_ENGINE = "django.contrib.sessions.backends.db"

# What cleartokens reads (oauth2_provider.models.clear_expired): a refresh token is reclaimed a
# day after its access token expired; revoked refresh tokens go at once (grace period 0, no
# reuse protection: the toolkit's defaults, written out).
REFRESH_TOKEN_EXPIRE_SECONDS = 24 * 3600
# PGSWEEP_DJANGO_OAUTH (JSON) overrides them, to compare other settings by hand (docs/rules.md).
OAUTH2_PROVIDER = {
    "REFRESH_TOKEN_EXPIRE_SECONDS": REFRESH_TOKEN_EXPIRE_SECONDS,
    "REFRESH_TOKEN_GRACE_PERIOD_SECONDS": 0,
    "REFRESH_TOKEN_REUSE_PROTECTION": False,
    **json.loads(os.environ.get("PGSWEEP_DJANGO_OAUTH", "{}")),
}
