"""Pure functions that turn charm configuration and integration data into workload environment.

Nothing here talks to Juju or Pebble, so every rule (naming, URL parsing) is tested directly.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

ConfigValue = bool | int | float | str


def option_variable(prefix: str, option: str) -> str:
    """Name a config option's variable: ``webhook-secret`` -> ``FLASK_WEBHOOK_SECRET``.

    Args:
        prefix: the framework prefix, ``DJANGO_`` or ``FLASK_``.
        option: the config option's name as written in charmcraft.yaml.

    Returns:
        The variable name.
    """
    return f"{prefix}{option.replace('-', '_').upper()}"


def config_environment(prefix: str, options: Mapping[str, ConfigValue | None]) -> dict[str, str]:
    """Map config options to ``<PREFIX><OPTION>`` variables; unset (None) options are left out.

    Booleans become ``true``/``false`` so the workload parses one spelling.

    Args:
        prefix: the framework prefix, ``DJANGO_`` or ``FLASK_``.
        options: option name to value, as read from the charm configuration.

    Returns:
        The environment variables.
    """
    environment: dict[str, str] = {}
    for option, value in options.items():
        if value is None:
            continue
        text = ("true" if value else "false") if isinstance(value, bool) else str(value)
        environment[option_variable(prefix, option)] = text
    return environment


@dataclass(frozen=True)
class ConnectionUri:
    """The parts of a database URI, parsed without assuming a single host.

    ``urllib.parse`` cannot read the port of ``h1:27017,h2:27017`` (a MongoDB replica set URI
    raises ``ValueError``), which is what broke the reference charm: hosts are split here.
    """

    uri: str
    scheme: str
    username: str | None
    password: str | None
    hosts: tuple[tuple[str, int | None], ...]
    name: str
    query: str

    @classmethod
    def parse(cls, uri: str) -> ConnectionUri:
        """Parse ``scheme://[user[:password]@]host[:port][,host[:port]...]/[name][?query]``.

        Args:
            uri: the connection URI.

        Returns:
            The parsed URI.

        Raises:
            ValueError: the URI has no scheme or no host, or a port is not a number.
        """
        scheme, separator, rest = uri.partition("://")
        if not separator or not scheme:
            raise ValueError("the URI has no scheme")
        authority, path_and_query = _split_authority(rest)
        path, _, query = path_and_query.partition("#")[0].partition("?")
        userinfo, at, hostlist = authority.rpartition("@")
        username: str | None = None
        password: str | None = None
        if at:
            raw_user, colon, raw_password = userinfo.partition(":")
            username = urllib.parse.unquote(raw_user)
            password = urllib.parse.unquote(raw_password) if colon else None
        hosts = tuple(_split_host_port(host) for host in hostlist.split(",") if host)
        if not hosts:
            raise ValueError("the URI names no host")
        return cls(
            uri=uri,
            scheme=scheme,
            username=username,
            password=password,
            hosts=hosts,
            name=urllib.parse.unquote(path.lstrip("/").partition("/")[0]),
            query=query,
        )

    def environment(self, prefix: str) -> dict[str, str]:
        """Describe the URI as ``<prefix>_DB_*`` variables (the first host is *the* hostname).

        Args:
            prefix: the integration's prefix, e.g. ``MONGODB``.

        Returns:
            The variables; parts the URI does not have are left out.
        """
        hostname, port = self.hosts[0]
        parts: dict[str, str | None] = {
            "CONNECT_STRING": self.uri,
            "SCHEME": self.scheme,
            "USERNAME": self.username,
            "PASSWORD": self.password,
            "HOSTNAME": hostname,
            "PORT": None if port is None else str(port),
            "HOSTS": ",".join(_join_host_port(host, port) for host, port in self.hosts),
            "NAME": self.name or None,
            "QUERY": self.query or None,
        }
        return {f"{prefix}_DB_{key}": value for key, value in parts.items() if value}


def _split_authority(rest: str) -> tuple[str, str]:
    """Split ``authority[/path][?query]`` where RFC 3986 ends the authority (``/?#``)."""
    ends = [index for index in (rest.find(c) for c in "/?#") if index >= 0]
    end = min(ends) if ends else len(rest)
    return rest[:end], rest[end:].removeprefix("/")


def _split_host_port(host: str) -> tuple[str, int | None]:
    """Split ``host[:port]`` or ``[v6]:port``."""
    if host.startswith("["):
        address, _, rest = host[1:].partition("]")
        port_text = rest.removeprefix(":")
        return address, int(port_text) if port_text else None
    name, colon, port_text = host.rpartition(":")
    if not colon:
        return host, None
    if not port_text.isdigit():
        raise ValueError(f"port of {host!r} is not a number")
    return name, int(port_text)


def _join_host_port(host: str, port: int | None) -> str:
    shown = f"[{host}]" if ":" in host else host
    return shown if port is None else f"{shown}:{port}"


def build_uri(
    scheme: str,
    *,
    username: str,
    password: str,
    endpoints: str,
    database: str,
    query: Mapping[str, str] | None = None,
) -> str:
    """Build a URI from parts, for providers that send no ``uris`` (some PostgreSQL revisions).

    Credentials are percent-encoded so a password with ``@``, ``:`` or ``/`` stays intact.

    Args:
        scheme: ``postgresql`` or ``mongodb``.
        username: the user name.
        password: the password.
        endpoints: ``host:port[,host:port]`` as the provider sent them.
        database: the database name.
        query: optional query parameters.

    Returns:
        The URI.
    """
    credentials = (
        f"{urllib.parse.quote(username, safe='')}:{urllib.parse.quote(password, safe='')}"
    )
    uri = f"{scheme}://{credentials}@{endpoints}/{urllib.parse.quote(database, safe='')}"
    if query:
        uri += "?" + urllib.parse.urlencode(dict(query))
    return uri


def base_url(ingress_url: str | None, *, app: str, model: str, port: int) -> str:
    """Where users reach the app: the ingress URL when there is one, else the in-cluster name.

    Args:
        ingress_url: the URL the ingress provider published, if any.
        app: the application name.
        model: the model name.
        port: the port the app listens on.

    Returns:
        The base URL.
    """
    if ingress_url:
        return ingress_url
    return f"http://{app}.{model}:{port}"


def allowed_hosts(url: str, extra: Iterable[str] = ()) -> str:
    """Django's ``ALLOWED_HOSTS`` as a JSON list that always holds the base URL's host.

    Args:
        url: the base URL.
        extra: hosts the operator configured.

    Returns:
        The JSON list, without duplicates, in a stable order.
    """
    hosts: list[str] = []
    for host in [urllib.parse.urlsplit(url).hostname or "", *extra]:
        host = host.strip()
        if host and host not in hosts:
            hosts.append(host)
    return json.dumps(hosts)
