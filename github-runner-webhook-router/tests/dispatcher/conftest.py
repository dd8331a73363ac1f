"""Fixtures of the dispatcher tests: the fake GitHub, queues, in-process dispatchers."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from dispatcher.fake_github import FakeGitHub, running
from dispatcher.support import TOKEN, base_env, delete_queue, wait_until
from runner_dispatcher.service import Dispatcher
from runner_dispatcher.settings import Settings
from runner_dispatcher.spawner import Spawner
from webhook_router.message import events_queue

DispatcherFactory = Callable[..., Dispatcher]


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    """The fake GitHub API on 127.0.0.1, requiring the test token."""
    with running(FakeGitHub(token=TOKEN)) as server:
        yield server


@pytest.fixture
def queue_name() -> str:
    """A flavour (queue) no other test uses."""
    return f"dispatch-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def make_dispatcher(
    github: FakeGitHub, queue_name: str, tmp_path: Path
) -> Iterator[DispatcherFactory]:
    """Start dispatchers on a broker (None: embedded); stops them and deletes the queues."""
    started: list[tuple[Dispatcher, str | None]] = []

    def build(broker: str | None, spawner: Spawner | None = None, **env: str) -> Dispatcher:
        values = base_env(github, queue_name, tmp_path / "state", broker)
        values.update(env)
        dispatcher = Dispatcher(Settings.from_env(values), spawner=spawner)
        started.append((dispatcher, broker))
        dispatcher.start()
        wait_until(dispatcher.healthy, "the consumers to connect")
        return dispatcher

    yield build
    for dispatcher, _ in started:
        dispatcher.stop()
    for dispatcher, _ in started:
        assert dispatcher.wait(timeout=30), "a consumer did not stop"
    for broker in {broker for _, broker in started}:
        delete_queue(broker, tmp_path / "state", queue_name)
    for broker in {
        broker for dispatcher, broker in started if dispatcher.settings.lifecycle_events
    }:
        delete_queue(broker, tmp_path / "state", events_queue(queue_name))
