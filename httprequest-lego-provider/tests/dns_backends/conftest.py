"""Fixtures shared by the DNS backend tests: a real sshd and a seeded bare git remote."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.dns_backends.git_fixtures import make_remote
from tests.sshd import SshServer, running_sshd


@pytest.fixture(scope="session")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshServer]:
    """One OpenSSH server for the session; each test brings its own bare repositories."""
    with running_sshd(tmp_path_factory.mktemp("sshd")) as server:
        yield server


@pytest.fixture
def remote(tmp_path: Path) -> Path:
    """A bare repository seeded with the contract's zone files (and the DNS team's lines)."""
    return make_remote(tmp_path / "zones.git")
