"""The router charm's configuration, read once into a frozen dataclass and validated."""

from __future__ import annotations

import re
from dataclasses import dataclass

import yaml
from twelve_factor import InvalidConfigError, WebserverConfig
from twelve_factor.config import Config, log_level_option, string_option, webserver_options
from twelve_factor.environment import config_environment
from twelve_factor.workload import FLASK

DEFAULT_SELF_HOSTED_LABELS = "self-hosted,linux"
# The service's own rule for flavour names (webhook_router/routing.py): the charm must refuse
# what the service would refuse at start, or the unit would restart the service in a loop.
FLAVOUR_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")


def webhook_secret_option(config: Config) -> str | None:
    """The webhook secret exactly as set (GitHub signs with every byte of it); None when unset.

    Raises:
        InvalidConfigError: the secret is only white space, which would look set to an operator
            while signatures went unchecked or never matched.
    """
    value = config.get("webhook-secret")
    if value is None or value == "":
        return None
    secret = str(value)
    if not secret.strip():
        raise InvalidConfigError("webhook-secret is blank: set a secret, or unset the option")
    return secret


def parse_flavours(text: str) -> tuple[str, ...]:
    """Check the routing table and return its flavour names, in order.

    The table is a YAML list of single-key maps ``- <flavour>: [label, ...]``; the service reads
    the same text, so it is passed on unchanged once it is known to be valid.

    Args:
        text: the ``flavours`` option.

    Returns:
        The flavour names.

    Raises:
        InvalidConfigError: the table is malformed.
    """
    try:
        table = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidConfigError("flavours is not valid YAML") from exc
    if not isinstance(table, list) or not table:
        raise InvalidConfigError("flavours must be a non-empty YAML list of '- flavour: [labels]'")
    names: list[str] = []
    for item in table:
        if not isinstance(item, dict) or len(item) != 1:
            raise InvalidConfigError("each flavours item must be a map with one flavour")
        ((name, labels),) = item.items()
        if not isinstance(name, str) or not FLAVOUR_NAME.fullmatch(name):
            raise InvalidConfigError(
                f"flavour name {name!r} must be letters, digits, '.', '_' or '-' (at most 100)"
            )
        if not isinstance(labels, list) or not all(
            isinstance(label, str) and label for label in labels
        ):
            raise InvalidConfigError(
                f"the labels of flavour {name} must be a list of non-empty strings"
            )
        if name in names:
            raise InvalidConfigError(f"flavour {name} is listed twice")
        names.append(name)
    return tuple(names)


def dedup_url_option(config: Config) -> str | None:
    """The shared delivery-id store, a Redis URL (the service accepts no other).

    Raises:
        InvalidConfigError: not a redis:// or rediss:// URL.
    """
    url = string_option(config, "dedup-url")
    if url is not None and not url.startswith(("redis://", "rediss://")):
        raise InvalidConfigError("dedup-url must be a redis:// or rediss:// URL")
    return url


@dataclass(frozen=True)
class RouterConfig:
    """Validated configuration of the webhook router."""

    flavours: str
    default_flavour: str
    default_self_hosted_labels: str
    log_level: str
    webhook_secret: str | None
    webserver: WebserverConfig
    dedup_url: str | None = None
    allowed_hosts: tuple[str, ...] = ()

    @classmethod
    def from_charm_config(cls, config: Config) -> RouterConfig:
        """Read and validate the options.

        Raises:
            InvalidConfigError: an option is missing or invalid.
        """
        flavours = string_option(config, "flavours")
        if flavours is None:
            raise InvalidConfigError("set the flavours option (the label routing table)")
        names = parse_flavours(flavours)
        default_flavour = string_option(config, "default-flavour") or names[0]
        if default_flavour not in names:
            raise InvalidConfigError(f"default-flavour {default_flavour} is not in flavours")
        labels = string_option(config, "default-self-hosted-labels")
        return cls(
            flavours=flavours,
            default_flavour=default_flavour,
            default_self_hosted_labels=labels if labels is not None else "",
            log_level=log_level_option(config),
            webhook_secret=webhook_secret_option(config),
            webserver=webserver_options(config),
            dedup_url=dedup_url_option(config),
        )

    def environment(self) -> dict[str, str]:
        """``FLASK_<OPTION>`` variables; an unset webhook secret is left out."""
        return config_environment(
            FLASK.prefix,
            {
                "flavours": self.flavours,
                "default-flavour": self.default_flavour,
                "default-self-hosted-labels": self.default_self_hosted_labels,
                "log-level": self.log_level,
                "webhook-secret": self.webhook_secret,
                "dedup-url": self.dedup_url,
            },
        )
