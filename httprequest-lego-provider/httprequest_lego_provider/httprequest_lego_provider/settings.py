"""Django settings, built from the environment by :mod:`environment` (see the README table)."""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

import dj_database_url
import django_stubs_ext

from httprequest_lego_provider.environment import ProviderEnvironment

# Lets admin.ModelAdmin[Model] and friends be subscripted at run time, as the stubs type them.
django_stubs_ext.monkeypatch()

ENV = ProviderEnvironment.from_env(os.environ)

SECRET_KEY = ENV.secret_key
DEBUG = ENV.debug
ALLOWED_HOSTS = ENV.allowed_hosts

# Behind a TLS-terminating ingress: the ingress says which scheme the client used.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
CSRF_TRUSTED_ORIGINS = [ENV.public_origin] if ENV.public_origin else []
# Cookies (the Django admin's session and CSRF token) only over HTTPS when people use HTTPS.
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = ENV.https
# A browser asking for the admin over plain HTTP is sent to the HTTPS base URL. Machine clients
# (the httpreq and API endpoints) are never redirected: lego inside the cluster posts to the
# plain http://<app>.<model>:8000 address, and a redirected POST cannot succeed.
SECURE_SSL_REDIRECT = ENV.https
SECURE_SSL_HOST = ENV.public_host if ENV.https else None
SECURE_REDIRECT_EXEMPT = [r"^(?!admin/)"]
# HSTS is sent on HTTPS answers only (Django's SecurityMiddleware), so plain in-cluster HTTP is
# unaffected.
SECURE_HSTS_SECONDS = ENV.hsts_seconds
SECURE_HSTS_INCLUDE_SUBDOMAINS = ENV.hsts_include_subdomains
SECURE_HSTS_PRELOAD = ENV.hsts_preload
# Asking browsers' preload lists to carry the domain is the domain owner's decision
# (DJANGO_HSTS_PRELOAD), not a default: without it the deploy check's preload warning is moot.
SILENCED_SYSTEM_CHECKS = [] if ENV.hsts_preload else ["security.W021"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework_simplejwt",
    "django_filters",
    "api",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Who and from where, for the audit trail of changes made through any view.
    "api.audit.AuditContextMiddleware",
    "api.credentials.CredentialBoundSessionMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "httprequest_lego_provider.urls"
WSGI_APPLICATION = "httprequest_lego_provider.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

if ENV.database_url:
    DATABASES: dict[str, Any] = {
        "default": dj_database_url.parse(ENV.database_url, conn_max_age=0, conn_health_checks=True)
    }
    # A bounded pool per worker process, not a connection per request greenlet: under gevent
    # every open client connection may run a request, and Django's persistent connections would
    # then hold one PostgreSQL session each (an idle-client flood would exhaust the server).
    # A request that waits longer than `timeout` for a connection is answered 503 (api/errors).
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": 1,
        "max_size": 8,
        "timeout": 5,
    }
else:
    ENV.data_dir.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": ENV.data_dir / "db.sqlite3",
            # Wait for the writer lock rather than failing under concurrent requests.
            "OPTIONS": {"timeout": 20, "transaction_mode": "IMMEDIATE"},
        }
    }

# Human passwords keep Django's slow hasher; passwords the service generates (256 bits of
# entropy) use a fast salted SHA-256 that is just as safe for them (see api.hashers).
PASSWORD_HASHERS = [
    # Django's PBKDF2, run off gevent's event loop (api/hashers.py): same stored format.
    "api.hashers.OffloadedPBKDF2PasswordHasher",
    "api.hashers.GeneratedTokenHasher",
    "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.BCryptSHA256PasswordHasher",
    "django.contrib.auth.hashers.ScryptPasswordHasher",
]
AUTHENTICATION_BACKENDS = ["api.authentication.GeneratedTokenAwareModelBackend"]
# Failed logins per username and per client address (DJANGO_LOGIN_*, see api.throttle).
LOGIN_THROTTLE = ENV.login_throttle
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
# The admin's CSS and JS are served by the app itself from the installed apps (no collectstatic,
# no web server in front): gunicorn alone serves everything, in the rock as in the local run.
STATIC_ROOT = None
WHITENOISE_USE_FINDERS = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# A challenge body is ~100 bytes; anything near this limit is not a real client.
DATA_UPLOAD_MAX_MEMORY_SIZE = 64 * 1024
DATA_UPLOAD_MAX_NUMBER_FIELDS = 100
# Django applies the limit above to JSON and form-encoded bodies but not to multipart file parts;
# this handler holds multipart bodies to the same limit (API and Django admin alike).
FILE_UPLOAD_HANDLERS = [
    "api.parsers.BodyLimitUploadHandler",
    "django.core.files.uploadhandler.MemoryFileUploadHandler",
]

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.BasicAuthentication",
        "rest_framework.authentication.SessionAuthentication",
        "api.jwt.CredentialBoundJWTAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PARSER_CLASSES": [
        "api.parsers.LimitedJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "EXCEPTION_HANDLER": "api.errors.exception_handler",
    "UNAUTHENTICATED_USER": None,
}

SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=15),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=1),
    "SIGNING_KEY": SECRET_KEY,
    "TOKEN_OBTAIN_SERIALIZER": "api.jwt.CredentialBoundTokenObtainPairSerializer",
    "TOKEN_REFRESH_SERIALIZER": "api.jwt.RefreshForExistingUserSerializer",
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
        "json_line": {"format": "%(message)s"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain"},
        # The audit trail's log copy: one JSON object per line, nothing around it.
        "audit": {"class": "logging.StreamHandler", "formatter": "json_line"},
    },
    "loggers": {"audit": {"handlers": ["audit"], "level": "INFO", "propagate": False}},
    "root": {"handlers": ["console"], "level": ENV.log_level},
}

# The DNS backend: chosen by DJANGO_DNS_BACKEND, configured by its own DJANGO_* variables.
DNS_BACKEND = ENV.dns_backend
DNS_BACKEND_ENVIRON = ENV.raw
# The service's state directory (DJANGO_DATA_DIR, read only by the environment module).
DATA_DIR = ENV.data_dir
# Seconds each request's backend work may take (locks, fetch, push, DNS update); then a 503.
REQUEST_DEADLINE = ENV.request_deadline
# Which address a request comes from (DJANGO_PROXY_HOPS, see api.client_address): the login
# throttle, acme-dns allowfrom and the accounts' allowed networks all ask api.client_address.
CLIENT_ADDRESS = ENV.client_address
# The acme-dns API's delegation zone and public URL (DJANGO_ACMEDNS_*, see api.acmedns.config).
ACMEDNS = ENV.acmedns
