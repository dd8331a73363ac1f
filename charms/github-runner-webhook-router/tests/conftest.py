"""Fixtures shared by the router charm tests."""

from __future__ import annotations

import pytest
from charm import GithubRunnerWebhookRouterCharm
from ops import testing


@pytest.fixture
def ctx() -> testing.Context[GithubRunnerWebhookRouterCharm]:
    """A fresh context for the charm, metadata read from charmcraft.yaml."""
    return testing.Context(GithubRunnerWebhookRouterCharm)
