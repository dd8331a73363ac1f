"""The two GitHub REST calls the dispatcher makes: a job's state and a JIT runner config."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import requests
from webhook_router.github_api import (
    ApiError,
    CredentialsError,
    GitHubClient,
    TokenSource,
    json_document,
)

from runner_dispatcher.contract import QueuedJob
from runner_dispatcher.errors import DispatcherError

# Statuses meaning a runner already took the job (SPEC 2.2): nothing to spawn.
TAKEN_STATUSES = frozenset({"in_progress", "completed"})


class JobNotFoundError(DispatcherError):
    """GitHub answered 404 for the job: deleted, or not visible to these credentials."""


class GitHubUnavailableError(DispatcherError):
    """GitHub could not be asked (unreachable, 5xx, rate limit, refused credentials).

    The job may still need a runner: the message is requeued, never dropped.
    """


@dataclass(frozen=True)
class JobState:
    """What GitHub says of a job now.

    Attributes:
        status: queued, in_progress, completed, waiting (or another GitHub status).
        created_at: when the job was queued, when GitHub says.
    """

    status: str
    created_at: datetime | None

    @property
    def taken(self) -> bool:
        """Whether a runner already took the job."""
        return self.status in TAKEN_STATUSES


@dataclass(frozen=True)
class JitRunner:
    """A just-in-time runner GitHub registered: its id (to delete it) and configuration."""

    runner_id: int | None
    encoded_jit_config: str


class Jobs(Protocol):
    """What the dispatcher asks of GitHub."""

    def state(self, job: QueuedJob) -> JobState:
        """The job's status now."""

    def jit_config(self, job: QueuedJob, name: str, labels: Sequence[str]) -> JitRunner:
        """A just-in-time configuration for a runner named `name` with `labels`."""

    def delete_runner(self, job: QueuedJob, runner_id: int) -> None:
        """Remove a registered runner (a JIT runner whose spawn failed)."""


class OfflineJobs:
    """A stand-in for GitHub in local demos (DISPATCHER_OFFLINE_DEMO): no call leaves the host.

    Each job is `queued` at the first look and `in_progress` at the next, as if the spawned
    runner took it at once. Never for production: a job taken elsewhere would still be spawned.
    """

    def __init__(self) -> None:
        self._looked: set[str] = set()
        self._lock = threading.Lock()

    def state(self, job: QueuedJob) -> JobState:
        """`queued` the first time, `in_progress` (and forgotten) the second."""
        with self._lock:
            if job.url in self._looked:
                self._looked.discard(job.url)
                return JobState("in_progress", None)
            self._looked.add(job.url)
            return JobState("queued", None)

    def jit_config(self, job: QueuedJob, name: str, labels: Sequence[str]) -> JitRunner:
        """Never called: the settings refuse JIT configuration in the offline demo."""
        raise GitHubUnavailableError("the offline demo has no GitHub to ask")

    def delete_runner(self, job: QueuedJob, runner_id: int) -> None:
        """Never called: no JIT runner is registered in the offline demo."""


class JobsApi:
    """GitHub calls of one consumer thread: its own session, a shared token source."""

    def __init__(
        self,
        api_url: str,
        tokens: TokenSource | None,
        session: requests.Session,
        timeout: float,
        *,
        organisation_scope: bool = False,
        runner_group_id: int = 1,
    ) -> None:
        self._client = GitHubClient(api_url, tokens, session, timeout)
        self._api = api_url.rstrip("/")
        self._organisation_scope = organisation_scope
        self._runner_group_id = runner_group_id

    def state(self, job: QueuedJob) -> JobState:
        """`GET /repos/{o}/{r}/actions/jobs/{id}`: the job's status.

        Raises:
            JobNotFoundError: 404.
            GitHubUnavailableError: any other failure.
        """
        document = self._call("GET", job.url)
        status = document.get("status")
        if not isinstance(status, str):
            raise GitHubUnavailableError("GitHub returned a job without a status")
        return JobState(status=status, created_at=_instant(document.get("created_at")))

    def jit_config(self, job: QueuedJob, name: str, labels: Sequence[str]) -> JitRunner:
        """`POST .../actions/runners/generate-jitconfig`: a one-job runner's configuration.

        Raises:
            JobNotFoundError: 404 (the repository or organisation is not visible).
            GitHubUnavailableError: any other failure.
        """
        document = self._call(
            "POST",
            f"{self._runners(job)}/generate-jitconfig",
            {
                "name": name,
                "runner_group_id": self._runner_group_id,
                "labels": list(labels),
                "work_folder": "_work",
            },
        )
        config = document.get("encoded_jit_config")
        if not isinstance(config, str) or not config:
            raise GitHubUnavailableError("GitHub returned no encoded_jit_config")
        runner = document.get("runner")
        runner_id = runner.get("id") if isinstance(runner, dict) else None
        valid_id = isinstance(runner_id, int) and not isinstance(runner_id, bool)
        return JitRunner(runner_id if valid_id else None, config)

    def delete_runner(self, job: QueuedJob, runner_id: int) -> None:
        """`DELETE .../actions/runners/{runner_id}`; a runner already gone (404) is fine.

        Raises:
            GitHubUnavailableError: any other failure.
        """
        try:
            self._client.call("DELETE", f"{self._runners(job)}/{runner_id}")
        except ApiError as exc:
            if exc.http_status != 404:
                raise GitHubUnavailableError(exc.message) from exc
        except CredentialsError as exc:
            raise GitHubUnavailableError(exc.message) from exc

    def _runners(self, job: QueuedJob) -> str:
        """The runners endpoint of the JIT scope: the job's repository or its owner."""
        scope = (
            f"orgs/{job.owner}" if self._organisation_scope else f"repos/{job.owner}/{job.repo}"
        )
        return f"{self._api}/{scope}/actions/runners"

    def _call(
        self, method: str, url: str, body: dict[str, object] | None = None
    ) -> dict[str, object]:
        """The call's JSON object, with GitHub's failures mapped to the dispatcher's."""
        try:
            return json_document(self._client.call(method, url, json=body), dict)
        except ApiError as exc:
            if exc.http_status == 404:
                raise JobNotFoundError(exc.message) from exc
            raise GitHubUnavailableError(exc.message) from exc
        except CredentialsError as exc:  # an App key GitHub's token exchange cannot use
            raise GitHubUnavailableError(exc.message) from exc


def _instant(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
