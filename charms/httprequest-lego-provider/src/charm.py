#!/usr/bin/env python3
"""Charm of the httpreq lego provider: a Django app that writes ACME DNS records to git."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import git_access
import management
import ops
from config_check import COMMAND as CONFIG_CHECK
from provider_config import ProviderConfig
from twelve_factor import DatabaseSpec, TwelveFactorCharm, django

logger = logging.getLogger(__name__)


class HttprequestLegoProviderCharm(TwelveFactorCharm[ProviderConfig]):
    """The 12-factor Django charm plus SSH access to the DNS repository and user actions."""

    layout = django("httprequest_lego_provider.wsgi:application")
    database_spec = DatabaseSpec(relation="postgresql", kind="postgresql")
    config_check = CONFIG_CHECK

    def __init__(self, framework: ops.Framework):
        super().__init__(framework)
        self.framework.observe(self.on.create_user_action, self._on_create_user_action)
        self.framework.observe(self.on.allow_domains_action, self._on_allow_domains_action)
        self.framework.observe(self.on.revoke_domains_action, self._on_revoke_domains_action)
        self.framework.observe(self.on.list_domains_action, self._on_list_domains_action)
        self.framework.observe(self.on.create_superuser_action, self._on_create_superuser_action)

    def _on_create_user_action(self, event: ops.ActionEvent) -> None:
        self._run_management_action(event, management.create_user)

    def _on_allow_domains_action(self, event: ops.ActionEvent) -> None:
        self._run_management_action(event, management.allow_domains)

    def _on_revoke_domains_action(self, event: ops.ActionEvent) -> None:
        self._run_management_action(event, management.revoke_domains)

    def _on_list_domains_action(self, event: ops.ActionEvent) -> None:
        self._run_management_action(event, management.list_domains)

    def _on_create_superuser_action(self, event: ops.ActionEvent) -> None:
        self._run_management_action(event, management.create_superuser)

    def _run_management_action(
        self, event: ops.ActionEvent, arguments: Callable[[Mapping[str, Any]], list[str]]
    ) -> None:
        """Run a management command with the service's environment; report its output."""
        environment = self._workload_environment()
        if environment is None:
            event.fail("the service is not configured yet (see juju status); try again later")
            return
        container = self.unit.get_container(self.layout.container)
        try:
            output = management.run(container, arguments(event.params), environment)
        except management.ManagementError as exc:
            event.fail(str(exc))
            return
        event.set_results(management.results(output))

    def _read_config(self) -> ProviderConfig:
        return ProviderConfig.from_charm_config(self.config)

    def _prepare_workload(
        self, container: ops.Container, config: ProviderConfig, *, refresh: bool
    ) -> dict[str, str]:
        return git_access.prepare(container, config, refresh=refresh)


if __name__ == "__main__":  # pragma: nocover
    ops.main(HttprequestLegoProviderCharm)
