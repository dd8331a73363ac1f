"""The router's own charmcraft.yaml and rockcraft.yaml checks, beside the shared contract.

:class:`DefinitionContract` checks what every twelve-factor charm declares (structure, config
options and actions, each declared exactly when the code uses it). Here: the redelivery action
reads exactly its declared params, and the rock ships the app and the redelivery tool.
"""

from __future__ import annotations

from typing import cast

import ops
import pytest
from explain_routing import explain
from redelivery import build_request
from router_config import REQUEST_DEADLINE_SECONDS
from testing_support.definitions import DefinitionContract, Recording

from tests.states import ROUTER


class TestRouterDefinition(DefinitionContract):
    subject = ROUTER


class _Secret:
    def get_content(self, *, refresh: bool = False) -> dict[str, str]:
        return {"token": "t", "private-key": "k"}


class _Model:
    def get_secret(self, *, id: str) -> _Secret:
        return _Secret()


def test_redeliver_reads_exactly_the_declared_params():
    declared = set(ROUTER.charmcraft()["actions"]["redeliver-failed-webhooks"]["params"])
    base = {"since": 1, "github-path": "org", "webhook-id": 1}
    token = Recording({**base, "github-token-secret-id": "secret:t"})
    app = Recording(
        {
            **base,
            "github-app-client-id": "c",
            "github-app-installation-id": 1,
            "github-app-private-key-secret-id": "secret:k",
        }
    )

    for params in (token, app):
        build_request(params, cast(ops.Model, _Model()))

    assert token.read | app.read == declared


def test_rockcraft_yaml_ships_the_app_the_redelivery_tool_and_the_dispatcher():
    prime = ROUTER.rockcraft()["parts"]["flask-framework/install-app"]["prime"]

    assert {
        "flask/app/app.py",
        "flask/app/webhook_router",
        "flask/app/runner_dispatcher",
    } <= set(prime)
    assert all(entry.startswith("flask/app/") for entry in prime)


def test_rock_root_has_what_the_extension_and_the_charm_need():
    rock = ROUTER.rockcraft()
    requirements = (ROUTER.rock_root / "requirements.txt").read_text().lower()

    assert "flask" in requirements
    for entry in rock["parts"]["flask-framework/install-app"]["prime"]:
        assert (ROUTER.rock_root / entry.removeprefix("flask/app/")).exists(), entry
    assert (ROUTER.rock_root / "webhook_router" / "redeliver.py").exists()
    assert "app =" in (ROUTER.rock_root / "app.py").read_text()


def test_the_worker_timeout_outlasts_the_services_answer_budget():
    """A slow broker must be answered by the service (503), not by gunicorn killing it."""
    budget = ROUTER.service_constant("webhook_router.settings", "MAX_PUBLISH_TIMEOUT_SECONDS")
    default_timeout = ROUTER.charmcraft()["config"]["options"]["webserver-timeout"]["default"]

    assert budget <= REQUEST_DEADLINE_SECONDS
    assert default_timeout > REQUEST_DEADLINE_SECONDS


class _StoppingContainer:
    def exec(self, *_args: object, **_kwargs: object) -> None:
        raise RuntimeError("the parameters are read before the tool runs")


def test_explain_reads_exactly_the_declared_params():
    declared = set(ROUTER.charmcraft()["actions"]["explain-routing"]["params"])
    params = Recording({"labels": "large"})

    with pytest.raises(RuntimeError):
        explain(cast(ops.Container, _StoppingContainer()), params, {})

    assert params.read == declared
