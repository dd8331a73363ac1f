"""POST /webhook end to end: recorded GitHub payloads in, messages read back with kombu."""

from __future__ import annotations

import json
from urllib.parse import urlencode

import pytest
from flask import Flask
from helpers import (
    AMQP_URL,
    FORM,
    REDIS_URL,
    SECRET,
    AppFactory,
    Poster,
    Reader,
    dispatcher,
    fixture_bytes,
    job_body,
)
from kombu.connection import Connection
from webhook_router.broker import flavour_queue

QUEUED_URL = "https://api.github.com/repos/octo-org/octo-repo/actions/jobs/1291536064"
BROKERS = {"embedded": None, "redis": REDIS_URL, "rabbitmq": AMQP_URL}
# The recorded payload's job, as the message names it (besides labels, status, url, flavour).
QUEUED_JOB = {
    "job_id": 289782451,
    "run_id": 2202229078,
    "run_attempt": 1,
    "repository": "Codertocat/Hello-World",
}


def routed_app(make_app: AppFactory, flavour: str, broker: str | None, **env: str) -> Flask:
    """An app whose first flavour serves the recorded payload's `ubuntu-latest` label."""
    values = {
        "FLASK_FLAVOURS": f"- {flavour}: [ubuntu-latest, x64]\n- {flavour}-large: [x64, large]",
        "FLASK_WEBHOOK_SECRET": SECRET,
    }
    if broker is not None:
        values["MONGODB_DB_CONNECT_STRING"] = broker
    values.update(env)
    return make_app(**values)


def counted(app: Flask, outcome: str, flavour: str = "", reason: str = "") -> float:
    value = dispatcher(app).metrics.registry.get_sample_value(
        "webhook_router_webhooks_total",
        {"outcome": outcome, "flavour": flavour, "reason": reason},
    )
    return value or 0.0


@pytest.mark.usefixtures("forget_recorded_jobs")
@pytest.mark.parametrize("broker", BROKERS.values(), ids=BROKERS.keys())
def test_queued_job_is_published_once_as_json_text_to_its_flavour_queue(
    make_app: AppFactory, post: Poster, read_queue: Reader, flavour: str, broker: str | None
) -> None:
    app = routed_app(make_app, flavour, broker)

    response = post(app.test_client(), fixture_bytes("workflow_job.queued.json"))

    assert response.status_code == 200
    assert response.text == f"Job queued for flavour {flavour}\n"
    assert read_queue(app, flavour) == [
        {
            "labels": ["ubuntu-latest"],
            "status": "queued",
            "url": QUEUED_URL,
            **QUEUED_JOB,
            "flavour": flavour,
        }
    ]
    assert counted(app, "published", flavour=flavour) == 1
    assert (
        dispatcher(app).metrics.registry.get_sample_value(
            "webhook_router_jobs_routed_total", {"flavour": flavour}
        )
        == 1
    )


def test_message_carries_the_routed_label_set_not_the_labels_as_sent(
    make_app: AppFactory, post: Poster, read_queue: Reader, flavour: str
) -> None:
    """SPEC 2.2's example: [self-hosted, linux, X64, large] is published as [large, x64]."""
    app = routed_app(make_app, flavour, REDIS_URL)
    body = job_body(["self-hosted", "linux", "X64", "large", "x64", "LARGE"])

    assert post(app.test_client(), body).status_code == 200

    (message,) = read_queue(app, f"{flavour}-large")
    assert message["labels"] == ["large", "x64"]
    assert message["flavour"] == f"{flavour}-large"


@pytest.mark.parametrize("broker", BROKERS.values(), ids=BROKERS.keys())
def test_every_200_is_exactly_one_message_on_the_right_queue(
    make_app: AppFactory, post: Poster, read_queue: Reader, flavour: str, broker: str | None
) -> None:
    app = routed_app(make_app, flavour, broker)
    client = app.test_client()
    sent = {flavour: [], f"{flavour}-large": []}  # type: dict[str, list[str]]
    for number in range(20):
        labels = ["self-hosted", "x64", "large"] if number % 3 == 0 else ["X64"]
        url = f"https://api.github.com/repos/o/r/actions/jobs/{number}"
        response = post(client, job_body(labels, url=url))
        assert response.status_code == 200
        sent[f"{flavour}-large" if number % 3 == 0 else flavour].append(url)

    for queue, urls in sent.items():
        assert sorted(message["url"] for message in read_queue(app, queue)) == sorted(urls)


@pytest.mark.parametrize(
    "name",
    ["workflow_job.in_progress.json", "workflow_job.completed.json", "workflow_job.waiting.json"],
)
def test_jobs_that_are_not_queued_are_answered_200_and_not_published(
    make_app: AppFactory, post: Poster, read_queue: Reader, flavour: str, name: str
) -> None:
    app = routed_app(make_app, flavour, None)

    response = post(app.test_client(), fixture_bytes(name))

    assert response.status_code == 200
    assert response.text == "Ignored: only queued jobs are routed\n"
    assert read_queue(app, flavour) == []
    # The waiting example's labels ([self-hosted, k8s]) match no flavour here.
    routed_to = "" if name == "workflow_job.waiting.json" else flavour
    assert counted(app, "ignored", flavour=routed_to) == 1


@pytest.mark.parametrize(
    "action", ["x" * 100_000, "\ud800", "in_progress\udfff"], ids=["100KB", "surrogate", "mixed"]
)
def test_ignored_answer_never_repeats_the_action_and_survives_lone_surrogates(
    make_app: AppFactory, post: Poster, flavour: str, action: str
) -> None:
    """Today's echo sent 100 KB back, and a lone surrogate (valid JSON) made it a 500."""
    app = routed_app(make_app, flavour, None)
    document = json.loads(job_body(["x64"]))
    document["action"] = action
    body = json.dumps(document).encode()  # ensure_ascii: the surrogate travels as \\ud800

    response = post(app.test_client(), body)

    assert response.status_code == 200
    assert response.text == "Ignored: only queued jobs are routed\n"


def test_ping_event_is_answered_200(make_app: AppFactory, post: Poster, flavour: str) -> None:
    app = routed_app(make_app, flavour, None)

    response = post(app.test_client(), fixture_bytes("ping.json"), event="ping")

    assert response.status_code == 200
    assert response.text == "pong\n"


@pytest.mark.usefixtures("forget_recorded_jobs")
def test_form_encoded_delivery_is_published_like_json(
    make_app: AppFactory, post: Poster, read_queue: Reader, flavour: str
) -> None:
    app = routed_app(make_app, flavour, REDIS_URL)
    payload = fixture_bytes("workflow_job.queued.json").decode()
    body = urlencode({"payload": payload}).encode()

    response = post(app.test_client(), body, content_type=FORM)

    assert response.status_code == 200
    assert read_queue(app, flavour)[0]["url"] == QUEUED_URL


def test_labels_matching_no_flavour_are_answered_200_and_logged_not_queued(
    make_app: AppFactory,
    post: Poster,
    read_queue: Reader,
    flavour: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = routed_app(make_app, flavour, None)
    body = job_body(
        ["self-hosted", "windows"], url="https://api.github.com/repos/o/r/actions/jobs/7"
    )

    response = post(app.test_client(), body)

    assert response.status_code == 200
    assert response.text == "No flavour serves the job's labels; job not queued\n"
    assert read_queue(app, flavour) == []
    (line,) = [json.loads(r.getMessage()) for r in caplog.records if r.name.endswith("decisions")]
    assert line["labels"] == ["self-hosted", "windows"]
    assert line["outcome"] == "unmatched"
    assert line["reason"] == "unknown_label"
    assert counted(app, "unmatched", reason="unknown_label") == 1


def test_default_labels_only_go_to_the_default_flavour(
    make_app: AppFactory, post: Poster, read_queue: Reader, flavour: str
) -> None:
    app = routed_app(make_app, flavour, None, FLASK_DEFAULT_FLAVOUR=f"{flavour}-large")

    response = post(app.test_client(), job_body(["self-hosted", "Linux"]))

    assert response.status_code == 200
    assert len(read_queue(app, f"{flavour}-large")) == 1


def test_signature_is_not_required_with_the_unsigned_opt_out(
    make_app: AppFactory, post: Poster, read_queue: Reader, flavour: str
) -> None:
    app = routed_app(
        make_app, flavour, None, FLASK_WEBHOOK_SECRET="", FLASK_ALLOW_UNSIGNED_WEBHOOKS="true"
    )

    response = post(app.test_client(), job_body(["x64"]), secret=None)

    assert response.status_code == 200
    assert len(read_queue(app, flavour)) == 1


def test_health_reports_200_when_broker_answers(make_app: AppFactory, flavour: str) -> None:
    for broker in BROKERS.values():
        app = routed_app(make_app, flavour, broker)
        response = app.test_client().get("/health")
        assert response.status_code == 200, broker


def test_liveness_endpoint_answers_without_touching_the_broker(
    make_app: AppFactory, flavour: str
) -> None:
    app = routed_app(make_app, flavour, "redis://127.0.0.1:1/0")

    assert app.test_client().get("/health/live").status_code == 200


def test_unknown_paths_and_methods_get_short_answers(make_app: AppFactory, flavour: str) -> None:
    client = routed_app(make_app, flavour, None).test_client()

    assert client.get("/webhook").status_code == 405
    assert client.get("/nowhere").text == "Not Found\n"


def test_published_message_is_what_simplequeue_put_of_the_text_would_send(
    make_app: AppFactory, post: Poster, flavour: str
) -> None:
    """The wire body equals kombu's own json serialisation of the JSON text."""
    from kombu.serialization import dumps
    from webhook_router.message import encode_body, job_text
    from webhook_router.payload import parse_job

    job = parse_job(fixture_bytes("workflow_job.queued.json"), "application/json")
    text = job_text(job, flavour, ("ubuntu-latest",))
    content_type, encoding, body = dumps(text, serializer="json")

    assert (content_type, encoding) == ("application/json", "utf-8")
    assert encode_body(text) == body.encode()
    assert json.loads(text) == {
        "labels": ["ubuntu-latest"],
        "status": "queued",
        "url": QUEUED_URL,
        **QUEUED_JOB,
        "flavour": flavour,
    }


def test_queue_deleted_behind_the_routers_back_is_declared_again_not_dropped(
    make_app: AppFactory, post: Poster, read_queue: Reader, flavour: str
) -> None:
    """On RabbitMQ an unroutable publish would be confirmed and lost without `mandatory`."""
    app = routed_app(make_app, flavour, AMQP_URL)
    client = app.test_client()
    assert post(client, job_body(["x64"])).status_code == 200
    assert len(read_queue(app, flavour)) == 1
    with Connection(AMQP_URL) as admin:
        flavour_queue(flavour)(admin.default_channel).delete()

    response = post(client, job_body(["x64"]))

    assert response.status_code == 200
    assert len(read_queue(app, flavour)) == 1


def test_during_a_rotation_both_secrets_are_accepted_and_the_metric_says_which_matched(
    make_app: AppFactory, post: Poster, read_queue: Reader, flavour: str
) -> None:
    app = routed_app(make_app, flavour, None, FLASK_WEBHOOK_SECRET="new secret\n" + SECRET)
    client = app.test_client()

    old = post(client, job_body(["x64"]), secret=SECRET)
    new = post(client, job_body(["x64"]), secret="new secret")
    other = post(client, job_body(["x64"]), secret="retired secret")

    assert (old.status_code, new.status_code, other.status_code) == (200, 200, 403)
    assert len(read_queue(app, flavour)) == 2
    registry = dispatcher(app).metrics.registry
    for position in ("0", "1"):
        assert (
            registry.get_sample_value(
                "webhook_router_signature_matches_total", {"position": position}
            )
            == 1
        )


def test_each_routing_decision_is_one_json_log_line_without_the_body(
    make_app: AppFactory,
    post: Poster,
    read_queue: Reader,
    flavour: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = routed_app(make_app, flavour, None)
    body = job_body(["self-hosted", "X64"], job_id=4242, run_id=77, run_attempt=2)
    caplog.set_level("INFO", logger="webhook_router.decisions")

    post(app.test_client(), body, delivery="delivery-1")

    records = [r for r in caplog.records if r.name == "webhook_router.decisions"]
    assert len(records) == 1
    line = records[0].getMessage()
    assert json.loads(line) == {
        "event": "routing_decision",
        "delivery": "delivery-1",
        "action": "queued",
        "job_id": 4242,
        "run_id": 77,
        "run_attempt": 2,
        "repository": "Codertocat/Hello-World",
        "labels": ["self-hosted", "X64"],
        "routed_labels": ["x64"],
        "flavour": flavour,
        "outcome": "published",
        "reason": None,
    }
    assert "octo-repo" not in line  # nothing else of the body (its URLs, its steps)
    assert len(read_queue(app, flavour)) == 1
