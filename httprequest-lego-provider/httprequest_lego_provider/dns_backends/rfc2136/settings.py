"""The rfc2136 backend's settings: ``DJANGO_RFC2136_*`` read once, validated, into a dataclass."""

from __future__ import annotations

import base64
import binascii
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass

import dns.exception
import dns.name
import dns.tsig

from dns_backends.base import BackendConfigError

DEFAULT_PORT = 53
DEFAULT_TIMEOUT = 5.0
DEFAULT_TTL = 60
MAX_TTL = 2**31 - 1

# The HMAC algorithms dnspython can sign with, by the names BIND's configuration uses.
# GSS-TSIG is left out: it needs a Kerberos context, not a shared secret.
ALGORITHMS: dict[str, dns.name.Name] = {
    name.to_text(omit_final_dot=True).lower(): name
    for name in (
        dns.tsig.HMAC_SHA1,
        dns.tsig.HMAC_SHA224,
        dns.tsig.HMAC_SHA256,
        dns.tsig.HMAC_SHA256_128,
        dns.tsig.HMAC_SHA384,
        dns.tsig.HMAC_SHA384_192,
        dns.tsig.HMAC_SHA512,
        dns.tsig.HMAC_SHA512_256,
        dns.tsig.HMAC_MD5,
    )
}
ALGORITHMS["hmac-md5"] = dns.tsig.HMAC_MD5  # BIND's short name for the legacy algorithm


@dataclass(frozen=True)
class Rfc2136Settings:
    """Validated configuration: where to send updates, the TSIG key and the zones.

    ``zones`` is ``None`` when zones are discovered from the server per request.
    """

    server: str
    port: int
    key: dns.tsig.Key
    zones: frozenset[str] | None = None
    timeout: float = DEFAULT_TIMEOUT
    ttl: int = DEFAULT_TTL


def settings_from_env(environ: Mapping[str, str]) -> Rfc2136Settings:
    """Read and check the ``DJANGO_RFC2136_*`` variables (see docs/backends.md).

    Raises:
        BackendConfigError: a variable is missing or invalid; the message names it.
    """
    server, port = parse_server(_required(environ, "DJANGO_RFC2136_SERVER"))
    key_name = _required(environ, "DJANGO_RFC2136_KEY_NAME")
    algorithm_text = environ.get("DJANGO_RFC2136_KEY_ALGORITHM", "").strip().lower().rstrip(".")
    algorithm = ALGORITHMS.get(algorithm_text or "hmac-sha256")
    if algorithm is None:
        known = ", ".join(sorted(ALGORITHMS))
        raise BackendConfigError(
            f"DJANGO_RFC2136_KEY_ALGORITHM={algorithm_text!r} is not supported "
            f"(use one of {known})"
        )
    secret = _required(environ, "DJANGO_RFC2136_KEY_SECRET")
    try:
        if not base64.b64decode(secret, validate=True):
            raise ValueError("empty")
        key = dns.tsig.Key(_dns_name(key_name, "DJANGO_RFC2136_KEY_NAME"), secret, algorithm)
    except (binascii.Error, ValueError) as exc:
        raise BackendConfigError(
            "DJANGO_RFC2136_KEY_SECRET must be the key's secret in base64 (as in BIND's key file)"
        ) from exc
    return Rfc2136Settings(
        server=server,
        port=port,
        key=key,
        zones=_zones(environ.get("DJANGO_RFC2136_ZONES", "")),
        timeout=_positive_float(environ, "DJANGO_RFC2136_TIMEOUT", DEFAULT_TIMEOUT),
        ttl=_ttl(environ),
    )


def parse_server(raw: str) -> tuple[str, int]:
    """Split ``IP``, ``IP:port``, ``[IPv6]:port`` or a bare IPv6 address into address and port.

    Host names are refused: resolving one would send the service's DNS traffic elsewhere first.
    """
    text = raw.strip()
    host, port_text = text, ""
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise BackendConfigError(f"DJANGO_RFC2136_SERVER={raw!r} is not [IPv6]:port")
        port_text = rest[1:]
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise BackendConfigError(
            f"DJANGO_RFC2136_SERVER={raw!r} must be an IP address with an optional port "
            "(127.0.0.1:53, [::1]:53), not a host name"
        ) from None
    port = DEFAULT_PORT
    if port_text:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise BackendConfigError(f"DJANGO_RFC2136_SERVER={raw!r} has an invalid port")
        port = int(port_text)
    return str(address), port


def _required(environ: Mapping[str, str], name: str) -> str:
    value = environ.get(name, "").strip()
    if not value:
        raise BackendConfigError(f"{name} is required by the rfc2136 DNS backend")
    return value


def _dns_name(text: str, variable: str) -> dns.name.Name:
    try:
        return dns.name.from_text(text)
    except dns.exception.DNSException as exc:
        raise BackendConfigError(f"{variable}={text!r} is not a valid DNS name") from exc


def _zones(raw: str) -> frozenset[str] | None:
    zones = [z.strip().lower().rstrip(".") for z in raw.split(",") if z.strip()]
    if not zones:
        return None
    for zone in zones:
        _dns_name(zone, "DJANGO_RFC2136_ZONES")
    return frozenset(zones)


def _positive_float(environ: Mapping[str, str], name: str, default: float) -> float:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 < value <= 300:
        raise BackendConfigError(f"{name}={raw!r} must be a number of seconds between 0 and 300")
    return value


def _ttl(environ: Mapping[str, str]) -> int:
    raw = environ.get("DJANGO_RFC2136_TTL", "").strip()
    if not raw:
        return DEFAULT_TTL
    if not raw.isdigit() or not 0 < int(raw) <= MAX_TTL:
        raise BackendConfigError(f"DJANGO_RFC2136_TTL={raw!r} must be a whole number of seconds")
    return int(raw)
