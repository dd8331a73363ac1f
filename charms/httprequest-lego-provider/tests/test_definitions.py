"""What only the provider's charmcraft.yaml and rockcraft.yaml must satisfy.

Every management action must read exactly the params charmcraft.yaml declares for it (a typo on
either side fails CI, not a deployment), and the rock must stage git and ssh and hold the Django
project. The checks all twelve-factor charms share run from :class:`DefinitionContract`.
"""

from __future__ import annotations

import management
import pytest
from provider_config import REQUEST_DEADLINE_SECONDS
from testing_support.definitions import DefinitionContract, Recording

from tests.states import PROVIDER

ACTION_COMMANDS = {
    "create-user": management.create_user,
    "allow-domains": management.allow_domains,
    "revoke-domains": management.revoke_domains,
    "list-domains": management.list_domains,
    "create-superuser": management.create_superuser,
}


class TestProviderDefinition(DefinitionContract):
    subject = PROVIDER


@pytest.mark.parametrize("action", sorted(ACTION_COMMANDS))
def test_each_action_reads_exactly_its_declared_params(action):
    declared = set(PROVIDER.charmcraft()["actions"][action].get("params", {}))
    params = Recording(dict.fromkeys(declared, "value"))

    ACTION_COMMANDS[action](params)

    assert params.read == declared


def test_rockcraft_yaml_stages_git_and_ssh():
    packages = PROVIDER.rockcraft()["parts"]["django-framework/dependencies"]["stage-packages"]

    assert {"git", "openssh-client"} <= set(packages)


def test_rock_root_has_the_project_layout_the_extension_and_the_charm_need():
    rock = PROVIDER.rockcraft()
    project = PROVIDER.rock_root / rock["name"].replace("-", "_")
    wsgi_module = PROVIDER.charm.layout.wsgi_app.split(":")[0]

    assert "django" in (PROVIDER.rock_root / "requirements.txt").read_text().lower()
    assert (project / "manage.py").exists()
    wsgi = project / (wsgi_module.replace(".", "/") + ".py")
    assert "application =" in wsgi.read_text()


def test_the_worker_timeout_outlasts_the_services_request_deadline():
    """A slow repository must be answered by the service (503), not by gunicorn killing it."""
    deadline = PROVIDER.service_constant("dns_backends.deadline", "DEFAULT_DEADLINE_SECONDS")
    default_timeout = PROVIDER.charmcraft()["config"]["options"]["webserver-timeout"]["default"]

    assert deadline == REQUEST_DEADLINE_SECONDS
    assert default_timeout > deadline
