"""The charm a shared contract test runs against, as each charm's tests describe it."""

from __future__ import annotations

import ast
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import yaml
from ops import testing
from twelve_factor import TwelveFactorCharm
from twelve_factor.config import Config

CHARMS_DIR = Path(__file__).resolve().parent.parent.parent


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
        read_config: the charm's config reader, to find which options it asks for.
        ready_state: the tests' builder of a ready state, taking ``State`` field overrides.
        required_config: option values without a default that ``read_config`` needs.
    """

    name: str
    charm: type[TwelveFactorCharm[Any]]
    framework: str
    container: str
    service: str
    database: str
    database_name: str
    read_config: Callable[[Config], object]
    ready_state: Callable[..., testing.State]
    required_config: dict[str, Any] = field(default_factory=dict)

    @property
    def root(self) -> Path:
        """The charm's folder."""
        return CHARMS_DIR / self.name

    @property
    def rock_root(self) -> Path:
        """The workload's folder, where its rockcraft.yaml is."""
        return CHARMS_DIR.parent / self.name

    def charmcraft(self) -> dict[str, Any]:
        """The parsed charmcraft.yaml."""
        return _load_yaml(self.root / "charmcraft.yaml")

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
