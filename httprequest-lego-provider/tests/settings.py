"""Test settings: the real PostgreSQL (see tests/postgresql_url.py), an in-memory DNS backend."""

from __future__ import annotations

import os

from tests.postgresql_url import postgresql_url_for_tests

os.environ.setdefault("DJANGO_SECRET_KEY", "test-secret-key-not-for-production-0123456789")
os.environ.setdefault("DJANGO_DNS_BACKEND", "memory")
os.environ.setdefault("DJANGO_MEMORY_ZONES", "example.com,sub.example.com,example.co.uk")
if "POSTGRESQL_DB_CONNECT_STRING" not in os.environ:
    os.environ["POSTGRESQL_DB_CONNECT_STRING"] = postgresql_url_for_tests()

from httprequest_lego_provider.settings import *  # noqa: F403

# Tests create many users; the production hasher would dominate the suite's run time.
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.MD5PasswordHasher",
    "api.hashers.GeneratedTokenHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]

# A database name of this run's own, so two runs on one machine (a developer's and CI's, or a
# helper's) never drop each other's test database.
DATABASES["default"]["TEST"] = {"NAME": f"test_hlp_{os.getpid()}"}  # noqa: F405
