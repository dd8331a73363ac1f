"""The Pebble layer and the configuration helpers."""

from __future__ import annotations

from typing import Any

import pytest
from twelve_factor import FLASK, InvalidConfigError, WebserverConfig, django
from twelve_factor.config import string_option, webserver_options
from twelve_factor.workload import Worker, build_layer, retired_layer

SERVER = WebserverConfig(
    worker_class="gthread", workers=3, threads=8, timeout=60, keepalive=2, worker_connections=9
)
OPTIONS: dict[str, Any] = {
    "webserver-worker-class": "gthread",
    "webserver-workers": 2,
    "webserver-threads": 4,
    "webserver-timeout": 30,
    "webserver-keepalive": 2,
    "webserver-worker-connections": 1000,
}


def test_flask_layer_runs_gunicorn_as_daemon_user_on_port_8000():
    layer = build_layer(FLASK, {"FLASK_X": "1"}, SERVER)

    service = layer.services["flask"]
    assert service.command == (
        "/bin/python3 -m gunicorn -c /flask/gunicorn.conf.py app:app --bind 0.0.0.0:8000"
        " --worker-class gthread --workers 3 --threads 8 --timeout 60 --keep-alive 2"
        " --worker-connections 9"
    )
    assert service.user == "_daemon_"
    assert service.working_dir == "/flask/app"
    assert service.environment == {"FLASK_X": "1"}
    assert layer.checks["flask-ready"].tcp == {"port": 8000}


def test_a_worker_runs_beside_gunicorn_with_the_apps_environment_and_its_own():
    worker = Worker(
        name="queue-worker",
        command=("/bin/python3", "-m", "consumer"),
        environment={"QUEUE_X": "2", "FLASK_X": "worker"},
        health_url="http://127.0.0.1:9104/health",
        kill_delay="20s",
    )

    layer = build_layer(FLASK, {"FLASK_X": "1", "FLASK_Y": "1"}, SERVER, [worker])

    service = layer.services["queue-worker"]
    assert service.command == "/bin/python3 -m consumer"
    assert service.user == "_daemon_"
    assert service.working_dir == "/flask/app"
    assert service.environment == {"FLASK_X": "worker", "FLASK_Y": "1", "QUEUE_X": "2"}
    assert service.kill_delay == "20s"
    assert service.on_check_failure == {"queue-worker-health": "restart"}
    assert layer.services["flask"].environment == {"FLASK_X": "1", "FLASK_Y": "1"}
    check = layer.checks["queue-worker-health"]
    assert check.http == {"url": "http://127.0.0.1:9104/health"}
    assert check.to_dict().get("level") is None  # never the pod's liveness or readiness


def test_a_retired_worker_without_a_check_gets_none():
    layer = retired_layer(["queue-worker"], [])

    assert layer.checks == {}  # merging a check that is not there would create a broken one


def test_a_retired_worker_and_its_check_are_disabled():
    layer = retired_layer(["queue-worker"], ["queue-worker-health"])

    assert layer.services["queue-worker"].to_dict() == {
        "override": "merge",
        "startup": "disabled",
    }
    assert layer.checks["queue-worker-health"].to_dict() == {
        "override": "merge",
        "startup": "disabled",
    }


def test_django_layout():
    layout = django("site.wsgi:application")

    assert (layout.container, layout.service, layout.prefix) == ("django-app", "django", "DJANGO_")
    assert "site.wsgi:application" in build_layer(layout, {}, SERVER).services["django"].command


def test_string_option_treats_blank_as_unset():
    assert string_option({"a": "  "}, "a") is None
    assert string_option({}, "a") is None
    assert string_option({"a": " x "}, "a") == "x"


@pytest.mark.parametrize("value", [0, -1, True, "2", None])
def test_webserver_options_must_be_positive_integers(value):
    with pytest.raises(InvalidConfigError, match="set webserver-workers to an integer"):
        webserver_options({**OPTIONS, "webserver-workers": value}, request_deadline=10)


@pytest.mark.parametrize("worker_class", ["eventlet", "", "GTHREAD"])
def test_webserver_worker_class_must_be_one_the_image_can_run(worker_class):
    with pytest.raises(
        InvalidConfigError, match="webserver-worker-class to one of sync, gthread, gevent"
    ):
        webserver_options({**OPTIONS, "webserver-worker-class": worker_class}, request_deadline=1)


@pytest.mark.parametrize(("deadline", "refused"), [(29.5, False), (30, True), (45, True)])
def test_webserver_timeout_must_outlast_the_services_request_deadline(deadline, refused):
    """Gunicorn killing a worker at its timeout would drop the service's own 503 answer."""
    if refused:
        with pytest.raises(InvalidConfigError, match="webserver-timeout to an integer of at"):
            webserver_options(OPTIONS, request_deadline=deadline)
    else:
        assert webserver_options(OPTIONS, request_deadline=deadline).timeout == 30


def test_webserver_options_are_read_as_given():
    assert webserver_options(OPTIONS, request_deadline=20) == WebserverConfig(
        worker_class="gthread",
        workers=2,
        threads=4,
        timeout=30,
        keepalive=2,
        worker_connections=1000,
    )
