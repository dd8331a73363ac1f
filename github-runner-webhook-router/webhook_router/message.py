"""The queued messages: the contract with consumers reading `SimpleQueue(<queue>)`."""

from __future__ import annotations

import json

from webhook_router.payload import Job

CONTENT_TYPE = "application/json"
CONTENT_ENCODING = "utf-8"
# Lifecycle events of a flavour's jobs go to `<flavour>.events`, never to the job queue.
EVENTS_QUEUE_SUFFIX = ".events"
# The actions published as lifecycle events (when enabled); `queued` is the job queue's.
LIFECYCLE_ACTIONS = frozenset({"waiting", "in_progress", "completed"})


def events_queue(flavour: str) -> str:
    """The queue a flavour's lifecycle events go to."""
    return flavour + EVENTS_QUEUE_SUFFIX


def job_text(job: Job, flavour: str, labels: tuple[str, ...]) -> str:
    """The JSON text job consumers parse (SPEC 2.2).

    `labels`, `status` and `url` are the reference router's contract; `labels` is the set the
    job was routed on (lowercased, no duplicates, no default self-hosted labels), because the
    reference consumer rejects for good a label its runners do not list, and `self-hosted`
    and `linux` are never listed. `job_id`, `run_id`, `run_attempt`, `repository` (full
    name) and `flavour` are for newer consumers; older ones ignore extra keys.
    """
    return json.dumps(
        {
            "labels": list(labels),
            "status": job.action,
            "url": job.url,
            "job_id": job.job_id,
            "run_id": job.run_id,
            "run_attempt": job.run_attempt,
            "repository": job.repository,
            "flavour": flavour,
        }
    )


def event_text(job: Job, flavour: str) -> str:
    """The JSON text of a lifecycle event on `<flavour>.events`.

    `action` is `waiting`, `in_progress` or `completed`; the job's identity fields are those of
    the job message, so a consumer can drop a pending spawn for a job already taken.
    """
    return json.dumps(
        {
            "action": job.action,
            "job_id": job.job_id,
            "run_id": job.run_id,
            "run_attempt": job.run_attempt,
            "repository": job.repository,
            "flavour": flavour,
            "url": job.url,
            "runner_name": job.runner_name,
        }
    )


def encode_body(text: str) -> bytes:
    """The wire body: the JSON text serialised as a JSON string.

    This is byte for byte what `SimpleQueue.put(text)` produces with kombu's default json
    serializer, so a consumer's `message.payload` is the JSON *text*, as the reference consumer
    expects. Encoding it here skips kombu's serializer lookup on every publish.
    """
    return json.dumps(text).encode(CONTENT_ENCODING)
