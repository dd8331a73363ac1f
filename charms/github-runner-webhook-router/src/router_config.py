"""The router charm's configuration, read once into a frozen dataclass.

The charm checks only what is its own business (a routing table is set, the server model);
what the service accepts (the table's grammar, flavour and label names, the secret, the dedup
store's URL, log levels) is decided by the service itself, in the workload, before every
(re)start (``config_check``), so charm and service can never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass

from dispatcher import DispatcherConfig
from twelve_factor import InvalidConfigError, WebserverConfig
from twelve_factor.config import Config, string_option, webserver_options
from twelve_factor.environment import config_environment
from twelve_factor.workload import FLASK

# The router answers GitHub within its publish budget (webhook_router/settings.py: at most
# 8 s of broker work, GitHub itself waits 10 s); gunicorn must not kill the worker first.
REQUEST_DEADLINE_SECONDS = 10.0


def webhook_secret_option(config: Config) -> str | None:
    """The webhook secret exactly as set (GitHub signs with every byte of it); None when unset."""
    value = config.get("webhook-secret")
    if value is None or value == "":
        return None
    return str(value)


@dataclass(frozen=True)
class RouterConfig:
    """Configuration of the webhook router, as the charm passes it on."""

    flavours: str
    default_flavour: str | None
    default_self_hosted_labels: str
    log_level: str | None
    webhook_secret: str | None
    webserver: WebserverConfig
    dedup_url: str | None = None
    allow_unsigned_webhooks: bool = False
    lifecycle_events: bool = False
    allowed_repositories: str | None = None
    allowed_networks: str | None = None
    client_address_header: str | None = None
    trusted_proxies: str | None = None
    allowed_hosts: tuple[str, ...] = ()
    dispatcher: DispatcherConfig | None = None

    @classmethod
    def from_charm_config(cls, config: Config) -> RouterConfig:
        """Read the options.

        Raises:
            InvalidConfigError: the routing table is not set, or a webserver option is invalid.
        """
        flavours = string_option(config, "flavours")
        if flavours is None:
            raise InvalidConfigError("set the flavours option (the label routing table)")
        labels = config.get("default-self-hosted-labels")
        return cls(
            flavours=flavours,
            default_flavour=string_option(config, "default-flavour"),
            default_self_hosted_labels="" if labels is None else str(labels),
            log_level=string_option(config, "log-level"),
            webhook_secret=webhook_secret_option(config),
            webserver=webserver_options(config, request_deadline=REQUEST_DEADLINE_SECONDS),
            dedup_url=string_option(config, "dedup-url"),
            allow_unsigned_webhooks=bool(config.get("allow-unsigned-webhooks", False)),
            lifecycle_events=bool(config.get("lifecycle-events", False)),
            allowed_repositories=string_option(config, "allowed-repositories"),
            allowed_networks=string_option(config, "allowed-networks"),
            client_address_header=string_option(config, "client-address-header"),
            trusted_proxies=string_option(config, "trusted-proxies"),
            dispatcher=DispatcherConfig.from_charm_config(config, flavours),
        )

    def environment(self) -> dict[str, str]:
        """``FLASK_<OPTION>`` variables; unset options are left out."""
        return config_environment(
            FLASK.prefix,
            {
                "flavours": self.flavours,
                "default-flavour": self.default_flavour,
                "default-self-hosted-labels": self.default_self_hosted_labels,
                "log-level": self.log_level,
                "webhook-secret": self.webhook_secret,
                "dedup-url": self.dedup_url,
                "allow-unsigned-webhooks": self.allow_unsigned_webhooks,
                "lifecycle-events": self.lifecycle_events,
                "allowed-repositories": self.allowed_repositories,
                "allowed-networks": self.allowed_networks,
                "client-address-header": self.client_address_header,
                "trusted-proxies": self.trusted_proxies,
            },
        )
