"""charmcraft.yaml and the provider's rockcraft.yaml: structure, and agreement with the code.

A config option, action or parameter that the code uses but the YAML does not declare (or the
other way round) fails here, so a typo on either side breaks CI rather than a deployment.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any, cast

import management
import pytest
import yaml
from charm import HttprequestLegoProviderCharm
from provider_config import ProviderConfig

from tests.states import CONFIG

CHARM_ROOT = Path(__file__).resolve().parent.parent
ROCK_ROOT = CHARM_ROOT.parent.parent / "httprequest-lego-provider"
CONFIG_TYPES = {"string": str, "int": int, "boolean": bool, "float": float}
PARAM_TYPES = {"string", "integer", "number", "boolean", "array", "object"}
ACTION_COMMANDS = {
    "create-user": management.create_user,
    "allow-domains": management.allow_domains,
    "revoke-domains": management.revoke_domains,
    "list-domains": management.list_domains,
    "create-superuser": management.create_superuser,
}


def charmcraft() -> dict[str, Any]:
    return cast(dict[str, Any], yaml.safe_load((CHARM_ROOT / "charmcraft.yaml").read_text()))


class Recording(dict[str, Any]):
    """A mapping that remembers which keys the code asked for."""

    def __init__(self, data: dict[str, Any]):
        super().__init__(data)
        self.read: set[str] = set()

    def get(self, key: str, default: Any = None) -> Any:
        self.read.add(key)
        return super().get(key, default)

    def __getitem__(self, key: str) -> Any:
        self.read.add(key)
        return super().__getitem__(key)


def test_charmcraft_yaml_declares_a_complete_kubernetes_charm():
    meta = charmcraft()

    assert meta["name"] == "httprequest-lego-provider"
    assert meta["type"] == "charm"
    assert meta["summary"]
    assert meta["description"]
    assert meta["base"] == "ubuntu@24.04"
    assert list(meta["platforms"]) == ["amd64"]
    assert "extensions" not in meta
    assert meta["parts"]["charm"]["plugin"] == "charm"
    assert meta["containers"] == {"django-app": {"resource": "django-app-image"}}
    assert meta["resources"]["django-app-image"]["type"] == "oci-image"
    assert meta["requires"]["postgresql"]["interface"] == "postgresql_client"
    assert meta["requires"]["ingress"]["interface"] == "ingress"
    assert meta["provides"]["metrics-endpoint"]["interface"] == "prometheus_scrape"
    assert meta["peers"]["secret-storage"]["interface"] == "secret-storage"
    assert (CHARM_ROOT / "requirements.txt").read_text().count("ops==") == 1


def test_the_charm_class_matches_the_metadata():
    meta = charmcraft()
    charm = HttprequestLegoProviderCharm

    assert charm.layout.container in meta["containers"]
    assert charm.database_spec is not None
    assert charm.database_spec.relation in meta["requires"]


def test_config_options_have_types_descriptions_and_matching_defaults():
    for name, option in charmcraft()["config"]["options"].items():
        assert option["type"] in CONFIG_TYPES, name
        assert option["description"].strip(), name
        if "default" in option:
            assert isinstance(option["default"], CONFIG_TYPES[option["type"]]), name


def test_every_config_option_is_read_and_no_other():
    options = charmcraft()["config"]["options"]
    defaults = {name: option["default"] for name, option in options.items() if "default" in option}
    config = Recording({**defaults, **CONFIG})

    ProviderConfig.from_charm_config(config)

    assert config.read == set(options)


def test_actions_have_descriptions_and_typed_documented_params():
    for name, action in charmcraft()["actions"].items():
        assert action["description"].strip(), name
        params = action.get("params", {})
        for param_name, param in params.items():
            assert param["type"] in PARAM_TYPES, (name, param_name)
            assert param["description"].strip(), (name, param_name)
        assert set(action.get("required", [])) <= set(params), name


def _observed_actions() -> set[str]:
    """Names of the actions the code observes (``self.on.<name>_action``)."""
    names: set[str] = set()
    sources = [*(CHARM_ROOT / "src").glob("*.py"), *(CHARM_ROOT / "lib").glob("*/*.py")]
    for path in sources:
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Attribute)
                and node.attr.endswith("_action")
                and isinstance(node.value, ast.Attribute)
                and node.value.attr == "on"
            ):
                names.add(node.attr.removesuffix("_action").replace("_", "-"))
    return names


def test_every_declared_action_is_observed_and_no_other():
    assert _observed_actions() == set(charmcraft()["actions"])


@pytest.mark.parametrize("action", sorted(ACTION_COMMANDS))
def test_each_action_reads_exactly_its_declared_params(action):
    declared = set(charmcraft()["actions"][action].get("params", {}))
    params = Recording(dict.fromkeys(declared, "value"))

    ACTION_COMMANDS[action](params)

    assert params.read == declared


def test_rockcraft_yaml_uses_the_django_extension_with_git_and_ssh():
    rock = yaml.safe_load((ROCK_ROOT / "rockcraft.yaml").read_text())

    assert rock["name"] == "httprequest-lego-provider"
    assert rock["base"] == "ubuntu@24.04"
    assert isinstance(rock["version"], str)
    assert rock["summary"]
    assert rock["description"]
    assert list(rock["platforms"]) == ["amd64"]
    assert rock["extensions"] == ["django-framework"]
    packages = rock["parts"]["django-framework/dependencies"]["stage-packages"]
    assert {"git", "openssh-client"} <= set(packages)


def test_rock_root_has_the_project_layout_the_extension_and_the_charm_need():
    rock = yaml.safe_load((ROCK_ROOT / "rockcraft.yaml").read_text())
    project = ROCK_ROOT / rock["name"].replace("-", "_")
    wsgi_module = HttprequestLegoProviderCharm.layout.wsgi_app.split(":")[0]

    assert "django" in (ROCK_ROOT / "requirements.txt").read_text().lower()
    assert (project / "manage.py").exists()
    wsgi = project / (wsgi_module.replace(".", "/") + ".py")
    assert "application =" in wsgi.read_text()
