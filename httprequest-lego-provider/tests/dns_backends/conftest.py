"""Fixtures shared by the DNS backend tests: a real sshd for the git backend's SSH remote."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.sshd import SshServer, running_sshd


@pytest.fixture(scope="session")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshServer]:
    """One OpenSSH server for the session; each test brings its own bare repositories."""
    with running_sshd(tmp_path_factory.mktemp("sshd")) as server:
        yield server
