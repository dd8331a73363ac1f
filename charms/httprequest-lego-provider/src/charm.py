#!/usr/bin/env python3
"""Charm of the httpreq lego provider: a Django app that writes ACME DNS records to git."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import git_access
import janitor
import management
import ops
from config_check import COMMAND as CONFIG_CHECK
from provider_config import ProviderConfig
from twelve_factor import DatabaseSpec, TwelveFactorCharm, Worker, django

logger = logging.getLogger(__name__)

PROXY_HOPS = "DJANGO_PROXY_HOPS"


class HttprequestLegoProviderCharm(TwelveFactorCharm[ProviderConfig]):
    """The 12-factor Django charm plus SSH access to the DNS repository and user actions."""

    layout = django("httprequest_lego_provider.wsgi:application")
    database_spec = DatabaseSpec(relation="postgresql", kind="postgresql")
    # The provider's own metrics (api.metrics: presents, cleanups, updates by outcome, backend
    # latency), beside the rock's statsd exporter on 9102; told to it as DJANGO_METRICS_PORT.
    app_metrics_port = 9103
    config_check = CONFIG_CHECK
    worker_names = (janitor.SERVICE,)

    def __init__(self, framework: ops.Framework):
        super().__init__(framework)
        self.framework.observe(self.on.create_user_action, self._on_create_user_action)
        self.framework.observe(self.on.allow_domains_action, self._on_allow_domains_action)
        self.framework.observe(self.on.revoke_domains_action, self._on_revoke_domains_action)
        self.framework.observe(self.on.list_domains_action, self._on_list_domains_action)
        self.framework.observe(self.on.create_superuser_action, self._on_create_superuser_action)
        self.framework.observe(
            self.on.create_acmedns_account_action, self._on_create_acmedns_account_action
        )
        self.framework.observe(self.on.rotate_password_action, self._on_rotate_password_action)

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

    def _on_create_acmedns_account_action(self, event: ops.ActionEvent) -> None:
        self._run_management_action(
            event, management.create_acmedns_account, management.account_results
        )

    def _on_rotate_password_action(self, event: ops.ActionEvent) -> None:
        self._run_management_action(event, management.rotate_password, management.password_results)

    def _run_management_action(
        self,
        event: ops.ActionEvent,
        arguments: Callable[[Mapping[str, Any]], list[str]],
        results: Callable[[str], dict[str, str]] = management.results,
    ) -> None:
        """Run a management command with the service's environment; report its output."""
        environment = self._workload_environment()
        if environment is None:
            event.fail("the service is not configured yet (see juju status); try again later")
            return
        container = self.unit.get_container(self.layout.container)
        try:
            output = management.run(container, arguments(event.params), environment)
            answer = results(output)
        except management.ManagementError as exc:
            event.fail(str(exc))
            return
        event.set_results(answer)

    def _read_config(self) -> ProviderConfig:
        return ProviderConfig.from_charm_config(self.config)

    def _workers(self, config: ProviderConfig, environment: dict[str, str]) -> tuple[Worker, ...]:
        del environment
        return (janitor.worker(config.janitor_max_age),)

    def _charm_environment(self, config: ProviderConfig) -> dict[str, str]:
        # Behind the ingress, Traefik appends the client's address to X-Forwarded-For: one hop
        # to trust. Without it nothing may set that header for the service to believe.
        del config
        return {PROXY_HOPS: "1"} if self.ingress_ready else {}

    def _prepare_workload(
        self, container: ops.Container, config: ProviderConfig, *, refresh: bool
    ) -> dict[str, str]:
        return git_access.prepare(container, config, refresh=refresh)


if __name__ == "__main__":  # pragma: nocover
    ops.main(HttprequestLegoProviderCharm)
