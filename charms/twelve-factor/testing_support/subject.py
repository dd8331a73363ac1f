"""The charm a shared contract test runs against, as each charm's tests describe it."""

from __future__ import annotations

import ast
import inspect
import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import yaml
from ops import testing
from twelve_factor import TwelveFactorCharm
from twelve_factor.config import Config

from testing_support.paths import CHARMS_DIR


def _load_yaml(path: Path) -> dict[str, Any]:
    return cast(dict[str, Any], yaml.safe_load(path.read_text()))


@dataclass(frozen=True)
class CharmUnderTest:
    """What the contracts check a charm against; its folders follow the repository layout.

    Attributes:
        name: the charm's name, which is also its folder under ``charms/`` and, at the
            repository root, the folder of its workload (with the rockcraft.yaml).
        charm: the charm class.
        framework: ``django`` or ``flask``; names the rock extension.
        container: the workload container (its resource is ``<container>-image``).
        service: the Pebble service running gunicorn.
        database: the required database relation, also the interface's prefix.
        database_name: the database the charm asks its provider for.
        peer_relation: the tests' builder of the secret-storage relation (key as argument).
        read_config: the charm's config reader, to find which options it asks for.
        ready_state: the tests' builder of a ready state, taking ``State`` field overrides.
        required_config: option values without a default that ``read_config`` needs.
        workload_dir: the folder, under the rock root, that the image puts in
            ``/<framework>/app`` (where the service's commands run).
    """

    name: str
    charm: type[TwelveFactorCharm[Any]]
    framework: str
    container: str
    service: str
    database: str
    database_name: str
    peer_relation: Callable[..., testing.PeerRelation]
    read_config: Callable[[Config], object]
    ready_state: Callable[..., testing.State]
    required_config: dict[str, Any] = field(default_factory=dict)
    workload_dir: str = ""

    @property
    def root(self) -> Path:
        """The charm's folder: where its code runs from (a packed charm's unpacked tree too)."""
        return Path(inspect.getfile(self.charm)).resolve().parent.parent

    @property
    def rock_root(self) -> Path:
        """The workload's folder, where its rockcraft.yaml is."""
        return CHARMS_DIR.parent / self.name

    @property
    def workload_source(self) -> Path:
        """The service's source as it lands in ``/<framework>/app``."""
        return self.rock_root / self.workload_dir

    def service_constant(self, module: str, name: str) -> Any:
        """A constant of the service's code, read by importing it as the workload would."""
        program = f"import json, {module} as m; print(json.dumps(m.{name}))"
        result = subprocess.run(  # noqa: S603 (a fixed program over names the tests give)
            [sys.executable, "-c", program],
            cwd=self.workload_source,
            capture_output=True,
            text=True,
            check=True,
        )
        return json.loads(result.stdout)

    def charmcraft(self) -> dict[str, Any]:
        """The charm's definition: charmcraft.yaml, or in a packed charm the files made from it.

        A packed charm holds ``metadata.yaml``, ``config.yaml`` and ``actions.yaml`` instead,
        which together say what charmcraft.yaml said (the build keys aside).
        """
        if not self.packed:
            return _load_yaml(self.root / "charmcraft.yaml")
        definition = _load_yaml(self.root / "metadata.yaml")
        definition["config"] = _load_yaml(self.root / "config.yaml")
        definition["actions"] = _load_yaml(self.root / "actions.yaml")
        return definition

    @property
    def packed(self) -> bool:
        """Whether the tests run against an unpacked ``.charm`` rather than the source tree."""
        return (self.root / "manifest.yaml").is_file()

    def rockcraft(self) -> dict[str, Any]:
        """The parsed rockcraft.yaml of the workload."""
        return _load_yaml(self.rock_root / "rockcraft.yaml")

    def observed_actions(self) -> set[str]:
        """Names of the actions the code observes (``self.on.<name>_action``)."""
        names: set[str] = set()
        sources = [*(self.root / "src").glob("*.py"), *(self.root / "lib").glob("*/*.py")]
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
