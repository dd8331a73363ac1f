"""Fixtures shared by the provider charm tests."""

from __future__ import annotations

import pytest
from charm import HttprequestLegoProviderCharm
from ops import testing

# The shared contract tests assert in testing_support; rewrite them for pytest's messages.
pytest.register_assert_rewrite("testing_support")


@pytest.fixture
def ctx() -> testing.Context[HttprequestLegoProviderCharm]:
    """A fresh context for the charm, metadata read from charmcraft.yaml."""
    return testing.Context(HttprequestLegoProviderCharm)
