"""What the audit, metrics and janitor tests share: the acting-context middleware, metric reads."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from api.metrics import metrics
from django.conf import settings
from django.test.utils import override_settings

MIDDLEWARE_PATH = "api.audit.AuditContextMiddleware"
AFTER = "django.contrib.auth.middleware.AuthenticationMiddleware"


def middleware_with_audit_context() -> list[str]:
    """The service's middleware with the audit context after authentication (once)."""
    chain = [name for name in settings.MIDDLEWARE if name != MIDDLEWARE_PATH]
    chain.insert(chain.index(AFTER) + 1, MIDDLEWARE_PATH)
    return chain


@pytest.fixture
def audit_context() -> Iterator[None]:
    """Requests carry their client address and user into the audit trail."""
    with override_settings(MIDDLEWARE=middleware_with_audit_context()):
        yield


def sample(name: str, **labels: str) -> float:
    """The current value of one of this process's metrics (0 when never counted)."""
    value = metrics().registry.get_sample_value(name, labels)
    return 0.0 if value is None else value
