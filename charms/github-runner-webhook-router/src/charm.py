#!/usr/bin/env python3
"""Charm of the GitHub runner webhook router: a Flask app that queues workflow jobs in MongoDB."""

from __future__ import annotations

import logging

import dispatcher
import ops
from config_check import COMMAND as CONFIG_CHECK
from explain_routing import ExplainError, explain
from redelivery import RedeliveryError, build_request, redeliver
from router_config import RouterConfig
from twelve_factor import FLASK, DatabaseSpec, TwelveFactorCharm, Worker

logger = logging.getLogger(__name__)


class GithubRunnerWebhookRouterCharm(TwelveFactorCharm[RouterConfig]):
    """The 12-factor Flask charm plus the webhook actions and the optional dispatcher."""

    layout = FLASK
    database_spec = DatabaseSpec(relation="mongodb", kind="mongodb")
    app_metrics_port = 9103  # the router's own metrics (webhooks by outcome, publish latency)
    config_check = CONFIG_CHECK
    worker_names = (dispatcher.SERVICE,)

    def __init__(self, framework: ops.Framework):
        super().__init__(framework)
        self.framework.observe(
            self.on.redeliver_failed_webhooks_action, self._on_redeliver_failed_webhooks_action
        )
        self.framework.observe(self.on.explain_routing_action, self._on_explain_routing_action)

    def _on_redeliver_failed_webhooks_action(self, event: ops.ActionEvent) -> None:
        try:
            request = build_request(event.params, self.model)
            count = redeliver(self.unit.get_container(self.layout.container), request)
        except RedeliveryError as exc:
            event.fail(str(exc))
            return
        event.set_results({"redelivered": count})

    def _on_explain_routing_action(self, event: ops.ActionEvent) -> None:
        environment = self._workload_environment()
        if environment is None:
            event.fail("the service is not configured yet (see juju status); try again later")
            return
        container = self.unit.get_container(self.layout.container)
        try:
            event.set_results(explain(container, event.params, environment))
        except ExplainError as exc:
            event.fail(str(exc))

    def _workers(self, config: RouterConfig, environment: dict[str, str]) -> tuple[Worker, ...]:
        if config.dispatcher is None:
            return ()
        secret = config.dispatcher.github_token_secret
        token = dispatcher.github_token(self.model, secret) if secret else None
        return (config.dispatcher.worker(environment, config.log_level, token),)

    def _read_config(self) -> RouterConfig:
        return RouterConfig.from_charm_config(self.config)


if __name__ == "__main__":  # pragma: nocover
    ops.main(GithubRunnerWebhookRouterCharm)
