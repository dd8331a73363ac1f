"""Every message the router queues is one the SPEC 2.2 consumer accepts.

Recorded GitHub payloads (tests/fixtures, GitHub's published examples) go through the router
onto real brokers; each queued message is read back with kombu's SimpleQueue and validated by
the consumer we ship (`runner_dispatcher.contract.parse_job`), which applies SPEC 2.2's rules:
labels a subset of the runner's supported labels (its configured labels, its flavour name and
x64/arm64, never `self-hosted` or `linux`), URL a job on the GitHub API host.
"""

from __future__ import annotations

import json

import pytest
from helpers import (
    AMQP_URL,
    RECORDED_JOB_FILES,
    REDIS_URL,
    AppFactory,
    Poster,
    Reader,
    fixture_bytes,
    job_body,
    new_job_id,
    set_job_id,
)
from runner_dispatcher.contract import RejectedMessage, parse_job

API_URL = "https://api.github.com"
BROKERS = {"embedded": None, "redis": REDIS_URL, "rabbitmq": AMQP_URL}
ARCHITECTURES = ("x64", "arm64")


def supported_labels(flavour: str, configured: list[str]) -> set[str]:
    """What the SPEC 2.2 consumer's runner of this flavour supports."""
    return {*configured, flavour, *ARCHITECTURES}


def as_queued(name: str) -> bytes:
    """A recorded job announced as queued (new job id, so every run is a new job)."""
    document = json.loads(fixture_bytes(name))
    document["action"] = "queued"
    set_job_id(document["workflow_job"], new_job_id())
    return json.dumps(document).encode()


@pytest.mark.parametrize("broker", BROKERS.values(), ids=BROKERS.keys())
def test_every_queued_message_passes_the_consumers_rules(
    make_app: AppFactory, post: Poster, read_queue: Reader, flavour: str, broker: str | None
) -> None:
    # Runners of `flavour` are configured with the recorded jobs' labels; `-large` with large.
    configured = {flavour: ["ubuntu-latest", "k8s"], f"{flavour}-large": ["large"]}
    env = {
        "FLASK_FLAVOURS": f"- {flavour}: [ubuntu-latest, k8s, x64]\n"
        f"- {flavour}-large: [large, x64]"
    }
    if broker is not None:
        env["MONGODB_DB_CONNECT_STRING"] = broker
    app = make_app(**env)
    client = app.test_client()
    bodies = [as_queued(name) for name in RECORDED_JOB_FILES]
    bodies += [
        job_body(["self-hosted", "linux", "X64", "large"]),
        job_body(["Self-Hosted", "LINUX", "x64", "x64"]),
        job_body(["self-hosted", "linux"]),
    ]
    for body in bodies:
        assert post(client, body).status_code == 200

    jobs = []
    for queue, labels in configured.items():
        for message in read_queue(app, queue):
            job = parse_job(
                json.dumps(message),
                supported_labels=supported_labels(queue, labels),
                api_url=API_URL,
            )
            assert job.flavour == queue
            jobs.append(job)

    assert len(jobs) == len(bodies)
    sent = {json.loads(body)["workflow_job"]["id"] for body in bodies}
    assert {job.job_id for job in jobs} == sent
    assert all(not job.labels & {"self-hosted", "linux"} for job in jobs)
    assert all(job.run_attempt == 1 and job.repository for job in jobs)


def test_the_consumer_rejects_labels_as_github_sent_them() -> None:
    """What the reference router published; shows the check above can fail."""
    as_sent = json.dumps(
        {
            "labels": ["self-hosted", "linux", "X64", "large"],
            "status": "queued",
            "url": f"{API_URL}/repos/o/r/actions/jobs/1",
        }
    )

    with pytest.raises(RejectedMessage) as caught:
        parse_job(as_sent, supported_labels={"large", *ARCHITECTURES}, api_url=API_URL)
    assert caught.value.reason == "unsupported_labels"
