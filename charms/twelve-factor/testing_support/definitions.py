"""The checks every twelve-factor charm's charmcraft.yaml and rockcraft.yaml must pass.

A charm's ``tests/test_definitions.py`` subclasses :class:`DefinitionContract`, setting
``subject``; pytest then runs these tests for that charm, beside its own.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

import yaml

from testing_support.subject import CharmUnderTest

# Juju's option types; a `secret` option holds a secret URI (Juju 3.1+).
CONFIG_TYPES = {"string": str, "int": int, "boolean": bool, "float": float, "secret": str}
PARAM_TYPES = {"string", "integer", "number", "boolean", "array", "object"}


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


class DefinitionContract:
    """Tests of charmcraft.yaml and rockcraft.yaml that hold for every twelve-factor charm."""

    subject: ClassVar[CharmUnderTest]

    def test_charmcraft_yaml_declares_a_complete_kubernetes_charm(self) -> None:
        meta = self.subject.charmcraft()
        container = self.subject.container
        database = self.subject.database

        assert meta["name"] == self.subject.name
        assert meta["summary"]
        assert meta["description"]
        assert "extensions" not in meta
        assert meta["containers"] == {container: {"resource": f"{container}-image"}}
        assert meta["resources"][f"{container}-image"]["type"] == "oci-image"
        assert meta["requires"][database]["interface"] == f"{database}_client"
        assert meta["requires"]["ingress"]["interface"] == "ingress"
        assert meta["requires"]["logging"]["interface"] == "loki_push_api"
        assert meta["provides"]["metrics-endpoint"]["interface"] == "prometheus_scrape"
        assert meta["provides"]["grafana-dashboard"]["interface"] == "grafana_dashboard"
        assert meta["peers"]["secret-storage"]["interface"] == "secret-storage"

    def test_it_builds_for_ubuntu_24_04_on_amd64_with_its_runtime_requirements(self) -> None:
        root = self.subject.root
        if self.subject.packed:
            manifest = yaml.safe_load((root / "manifest.yaml").read_text())
            assert manifest["bases"] == [
                {"name": "ubuntu", "channel": "24.04", "architectures": ["amd64"]}
            ]
            assert (root / "venv" / "ops" / "__init__.py").is_file()
            return
        meta = self.subject.charmcraft()
        assert meta["type"] == "charm"
        assert meta["base"] == "ubuntu@24.04"
        assert list(meta["platforms"]) == ["amd64"]
        assert meta["parts"]["charm"]["plugin"] == "charm"
        assert (root / "requirements.txt").read_text().count("ops==") == 1

    def test_the_webserver_defaults_are_the_measured_server_model(self) -> None:
        """charmcraft.yaml's defaults equal the service's webserver.json (the benchmarks')."""
        measured = json.loads((self.subject.rock_root / "webserver.json").read_text())
        options = self.subject.charmcraft()["config"]["options"]
        defaults = {
            key: options[f"webserver-{key.replace('_', '-')}"]["default"]
            for key in (
                "worker_class",
                "workers",
                "threads",
                "worker_connections",
                "timeout",
                "keepalive",
            )
        }

        assert defaults == {key: measured[key] for key in defaults}
        assert set(measured) <= set(defaults), "webserver.json has a setting the charm lacks"

    def test_the_charm_class_matches_the_metadata(self) -> None:
        meta = self.subject.charmcraft()
        charm = self.subject.charm

        assert charm.layout.container in meta["containers"]
        assert charm.database_spec is not None
        assert charm.database_spec.relation in meta["requires"]

    def test_config_options_have_types_descriptions_and_matching_defaults(self) -> None:
        for name, option in self.subject.charmcraft()["config"]["options"].items():
            assert option["type"] in CONFIG_TYPES, name
            assert option["description"].strip(), name
            if "default" in option:
                assert isinstance(option["default"], CONFIG_TYPES[option["type"]]), name

    def test_every_config_option_is_read_and_no_other(self) -> None:
        options = self.subject.charmcraft()["config"]["options"]
        defaults = {
            name: option["default"] for name, option in options.items() if "default" in option
        }
        config = Recording({**defaults, **self.subject.required_config})

        self.subject.read_config(config)

        assert config.read == set(options)

    def test_actions_have_descriptions_and_typed_documented_params(self) -> None:
        for name, action in self.subject.charmcraft()["actions"].items():
            assert action["description"].strip(), name
            params = action.get("params", {})
            for param_name, param in params.items():
                assert param["type"] in PARAM_TYPES, (name, param_name)
                assert param["description"].strip(), (name, param_name)
            assert set(action.get("required", [])) <= set(params), name

    def test_every_declared_action_is_observed_and_no_other(self) -> None:
        assert self.subject.observed_actions() == set(self.subject.charmcraft()["actions"])

    def test_rockcraft_yaml_uses_the_framework_extension(self) -> None:
        rock = self.subject.rockcraft()

        assert rock["name"] == self.subject.name
        assert rock["base"] == "ubuntu@24.04"
        assert isinstance(rock["version"], str)
        assert rock["summary"]
        assert rock["description"]
        assert list(rock["platforms"]) == ["amd64"]
        assert rock["extensions"] == [f"{self.subject.framework}-framework"]
