"""Where this unit sits in Juju (model, application, unit, charm), as COS libraries label it."""

from __future__ import annotations

from dataclasses import dataclass

import ops


@dataclass(frozen=True)
class Topology:
    """The Juju topology every observability relation carries."""

    model: str
    model_uuid: str
    application: str
    unit: str
    charm_name: str

    @classmethod
    def of(cls, charm: ops.CharmBase) -> Topology:
        """The topology of the running unit."""
        model = charm.model
        return cls(
            model=model.name,
            model_uuid=model.uuid,
            application=model.app.name,
            unit=model.unit.name,
            charm_name=charm.meta.name,
        )

    @property
    def identifier(self) -> str:
        """``<model>_<uuid prefix>_<application>``, the prefix of job and rule group names."""
        return f"{self.model}_{self.model_uuid[:8]}_{self.application}"

    def metadata(self) -> dict[str, str]:
        """The ``scrape_metadata`` / Loki ``metadata`` object."""
        return {
            "model": self.model,
            "model_uuid": self.model_uuid,
            "application": self.application,
            "unit": self.unit,
            "charm_name": self.charm_name,
        }

    def rule_labels(self) -> dict[str, str]:
        """The labels Prometheus and Loki expect on every alert rule of this application."""
        return {
            "juju_model": self.model,
            "juju_model_uuid": self.model_uuid,
            "juju_application": self.application,
            "juju_charm": self.charm_name,
        }
