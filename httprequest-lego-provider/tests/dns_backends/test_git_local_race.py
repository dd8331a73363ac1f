"""A local repository's branch update racing another writer's lock is a lost race, never a 502.

Another writer (another process or host) takes ``refs/heads/main.lock``, writes its commit in it
and renames it over the ref. Our update can fail on that lock while the tip still reads our
base; whatever the other writer does next, we must retry, not report an error.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pygit2
import pytest
from dns_backends.git.repository import LocalStore, PushRejectedError
from dns_backends.git.settings import parse_repo_url

SIGNATURE = pygit2.Signature("t", "t@127.0.0.1")


class Race:
    """A bare repository, a base commit, our commit and the other writer's commit."""

    def __init__(self, tmp_path: Path) -> None:
        self.path = tmp_path / "dns.git"
        self.repo = pygit2.init_repository(str(self.path), bare=True)
        self.base = self._commit(None, b"; zone\n")
        self.repo.references.create("refs/heads/main", self.base)
        self.ours = self._commit(self.base, b"ours\n")
        self.theirs = self._commit(self.base, b"theirs\n")
        self.ref = self.path / "refs" / "heads" / "main"
        self.lock = self.path / "refs" / "heads" / "main.lock"
        self.store = LocalStore(parse_repo_url(f"file://{self.path}@main"), tmp_path / "work")

    def _commit(self, parent: pygit2.Oid | None, text: bytes) -> pygit2.Oid:
        builder = self.repo.TreeBuilder()
        builder.insert("example.com.domain", self.repo.create_blob(text), pygit2.GIT_FILEMODE_BLOB)
        parents = [parent] if parent else []
        return self.repo.create_commit(
            None, SIGNATURE, SIGNATURE, text.decode(), builder.write(), parents
        )

    def after_first_tip_read(self, action: Callable[[], None]) -> None:
        """Run ``action`` right after the store first reads the tip (after our update failed)."""
        real_tip = self.store.tip
        calls: list[int] = []

        def tip() -> pygit2.Oid:
            value = real_tip()
            calls.append(1)
            if len(calls) == 1:  # the first look at the tip after our update failed
                action()
            return value

        self.store.tip = tip  # type: ignore[method-assign,assignment]


@pytest.fixture
def race(tmp_path: Path) -> Race:
    return Race(tmp_path)


def test_other_writer_finishing_between_our_checks_is_a_lost_race(race: Race) -> None:
    race.lock.write_text(f"{race.theirs}\n")
    race.after_first_tip_read(lambda: os.replace(race.lock, race.ref))
    with pytest.raises(PushRejectedError):
        race.store.publish(race.base, race.ours)


def test_other_writer_giving_up_between_our_checks_is_a_lost_race(race: Race) -> None:
    race.lock.write_text(f"{race.theirs}\n")
    race.after_first_tip_read(race.lock.unlink)
    with pytest.raises(PushRejectedError):
        race.store.publish(race.base, race.ours)
