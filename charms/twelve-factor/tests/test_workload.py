"""The Pebble layer and the configuration helpers."""

from __future__ import annotations

import pytest
from twelve_factor import FLASK, InvalidConfigError, WebserverConfig, django
from twelve_factor.config import log_level_option, string_option, webserver_options
from twelve_factor.workload import build_layer


def test_flask_layer_runs_gunicorn_as_daemon_user_on_port_8000():
    layer = build_layer(FLASK, {"FLASK_X": "1"}, WebserverConfig(workers=3, timeout=60))

    service = layer.services["flask"]
    assert service.command == (
        "/bin/python3 -m gunicorn -c /flask/gunicorn.conf.py app:app --bind 0.0.0.0:8000"
        " --workers 3 --timeout 60"
    )
    assert service.user == "_daemon_"
    assert service.working_dir == "/flask/app"
    assert service.environment == {"FLASK_X": "1"}
    assert layer.checks["flask-ready"].tcp == {"port": 8000}


def test_django_layout():
    layout = django("site.wsgi:application")

    assert (layout.container, layout.service, layout.prefix) == ("django-app", "django", "DJANGO_")
    assert (
        "site.wsgi:application"
        in build_layer(layout, {}, WebserverConfig()).services["django"].command
    )


def test_string_option_treats_blank_as_unset():
    assert string_option({"a": "  "}, "a") is None
    assert string_option({}, "a") is None
    assert string_option({"a": " x "}, "a") == "x"


def test_log_level_is_validated_and_upper_cased():
    assert log_level_option({"log-level": "debug"}) == "DEBUG"
    assert log_level_option({}) == "INFO"
    with pytest.raises(InvalidConfigError, match="log-level"):
        log_level_option({"log-level": "loud"})


@pytest.mark.parametrize("value", [0, -1, True, "2"])
def test_webserver_options_must_be_positive_integers(value):
    with pytest.raises(InvalidConfigError, match="webserver-workers"):
        webserver_options({"webserver-workers": value})


def test_webserver_defaults():
    assert webserver_options({}) == WebserverConfig(workers=2, timeout=30)
