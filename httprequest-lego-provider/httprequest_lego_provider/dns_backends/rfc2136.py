"""A backend that publishes TXT values by RFC 2136 dynamic updates, signed with TSIG."""

from __future__ import annotations

import base64
import binascii
import ipaddress
import logging
import socket
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.TXT
import dns.tsig
import dns.update

from dns_backends.base import (
    BackendConfigError,
    DnsBackendError,
    DnsBackendUnavailableError,
    ZoneNotFoundError,
)
from dns_backends.zones import find_zone, suffixes

logger = logging.getLogger(__name__)

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

# Answers to an UPDATE, as the short message the client sees and whether retrying may help.
UPDATE_FAILURES: dict[dns.rcode.Rcode, tuple[str, bool]] = {
    dns.rcode.REFUSED: (
        "the DNS server refused the update of {fqdn} (not allowed by its policy)",
        False,
    ),
    dns.rcode.NOTAUTH: (
        "the DNS server is not authoritative for {zone} or rejected the key",
        False,
    ),
    dns.rcode.NOTZONE: ("{fqdn} is not inside the DNS server's zone {zone}", False),
    dns.rcode.SERVFAIL: ("the DNS server failed to apply the update of {fqdn} (SERVFAIL)", True),
}
TSIG_FAILURES: dict[type[dns.tsig.PeerError], str] = {
    dns.tsig.PeerBadKey: "the DNS server does not know the TSIG key {key} (BADKEY)",
    dns.tsig.PeerBadSignature: "the DNS server rejected the TSIG secret of {key} (BADSIG)",
    dns.tsig.PeerBadTime: "the DNS server rejected the TSIG time (BADTIME): check the clocks",
}


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


class Rfc2136Backend:
    """Adds and deletes single TXT records on one authoritative server.

    Each call opens its own TCP connection and builds its own messages, so calls from many
    threads need no lock: the server applies each UPDATE atomically, and adding or deleting one
    rdata never touches the other values at the name.
    """

    def __init__(self, settings: Rfc2136Settings) -> None:
        self._settings = settings

    @property
    def settings(self) -> Rfc2136Settings:
        """The validated configuration this backend uses."""
        return self._settings

    def present(self, fqdn: str, value: str) -> None:
        """Add ``value`` to the TXT set at ``fqdn``; the server ignores an identical record."""
        self._update(fqdn, value, add=True)

    def cleanup(self, fqdn: str, value: str) -> None:
        """Delete the one TXT record holding ``value``; deleting an absent record is a no-op."""
        self._update(fqdn, value, add=False)

    def values(self, fqdn: str) -> set[str]:
        """Ask the server itself (not a cache) which TXT values it publishes at ``fqdn``."""
        query = dns.message.make_query(_absolute(fqdn), dns.rdatatype.TXT)
        with self._connection() as sock:
            response = self._exchange(query, sock, fqdn)
        rcode = response.rcode()
        if rcode == dns.rcode.REFUSED:
            raise ZoneNotFoundError(fqdn)
        if rcode not in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
            raise DnsBackendError(f"the DNS server answered {dns.rcode.to_text(rcode)} for {fqdn}")
        found: set[str] = set()
        for rrset in response.answer:
            if rrset.rdtype == dns.rdatatype.TXT and rrset.name == _absolute(fqdn):
                found.update(b"".join(rdata.strings).decode() for rdata in rrset)
        return found

    def _update(self, fqdn: str, value: str, *, add: bool) -> None:
        settings = self._settings
        with self._connection() as sock:
            zone = self._zone_for(fqdn, sock)
            update = dns.update.UpdateMessage(
                _absolute(zone), keyring=settings.key, keyalgorithm=settings.key.algorithm
            )
            rdata = dns.rdtypes.ANY.TXT.TXT(dns.rdataclass.IN, dns.rdatatype.TXT, [value.encode()])
            if add:
                update.add(_absolute(fqdn), settings.ttl, rdata)
            else:
                update.delete(_absolute(fqdn), rdata)
            response = self._exchange(update, sock, fqdn)
        rcode = response.rcode()
        if rcode != dns.rcode.NOERROR:
            self._raise_for_rcode(rcode, fqdn, zone)
        logger.info("%s TXT %s at %s (zone %s)", "added" if add else "deleted", value, fqdn, zone)

    def _zone_for(self, fqdn: str, sock: socket.socket) -> str:
        """Return the longest suffix of ``fqdn`` that is a zone the server is authoritative for.

        With configured zones no query is needed. Otherwise each suffix is asked for its SOA,
        longest first: an authoritative answer with the suffix's own SOA marks the zone apex. A
        referral on the way up means the name is delegated to servers we do not update.
        """
        if self._settings.zones is not None:
            zone = find_zone(fqdn, self._settings.zones)
            if zone is None:
                raise ZoneNotFoundError(fqdn)
            return zone
        for candidate in suffixes(fqdn):
            query = dns.message.make_query(_absolute(candidate), dns.rdatatype.SOA)
            response = self._exchange(query, sock, fqdn)
            if response.rcode() == dns.rcode.REFUSED:
                continue  # the server serves no zone containing this name
            authoritative = bool(response.flags & dns.flags.AA)
            soa = response.get_rrset(
                response.answer, _absolute(candidate), dns.rdataclass.IN, dns.rdatatype.SOA
            )
            if authoritative and soa is not None:
                return candidate
            if not authoritative and any(r.rdtype == dns.rdatatype.NS for r in response.authority):
                raise ZoneNotFoundError(fqdn)  # delegated away from this server
        raise ZoneNotFoundError(fqdn)

    @contextmanager
    def _connection(self) -> Iterator[socket.socket]:
        """One TCP connection for the zone lookup and the update (no truncation, one set-up)."""
        settings = self._settings
        try:
            sock = socket.create_connection(
                (settings.server, settings.port), timeout=settings.timeout
            )
        except TimeoutError as exc:
            raise DnsBackendUnavailableError(
                f"the DNS server {self._address} did not answer within {settings.timeout:g} s"
            ) from exc
        except OSError as exc:
            raise DnsBackendUnavailableError(
                f"the DNS server {self._address} is unreachable ({exc.strerror or exc})"
            ) from exc
        with sock:
            sock.setblocking(False)  # dnspython requires a non-blocking socket when given one
            yield sock

    def _exchange(
        self, message: dns.message.Message, sock: socket.socket, fqdn: str
    ) -> dns.message.Message:
        """Send ``message`` and return the answer, turning transport and TSIG faults into ours."""
        settings = self._settings
        try:
            return dns.query.tcp(message, settings.server, timeout=settings.timeout, sock=sock)
        except dns.exception.Timeout as exc:
            raise DnsBackendUnavailableError(
                f"the DNS server {self._address} did not answer within {settings.timeout:g} s"
            ) from exc
        except dns.tsig.PeerError as exc:
            template = TSIG_FAILURES.get(type(exc), "the DNS server rejected the TSIG signature")
            raise DnsBackendError(template.format(key=self._key_name)) from exc
        except (dns.message.UnknownTSIGKey, dns.tsig.BadSignature, dns.message.BadTSIG) as exc:
            raise DnsBackendError(
                f"the DNS server's answer about {fqdn} failed TSIG verification"
            ) from exc
        except (EOFError, OSError) as exc:
            raise DnsBackendUnavailableError(
                f"the connection to the DNS server {self._address} failed"
            ) from exc
        except dns.exception.DNSException as exc:
            raise DnsBackendError(f"the DNS server {self._address} sent a bad answer") from exc

    def _raise_for_rcode(self, rcode: dns.rcode.Rcode, fqdn: str, zone: str) -> None:
        template, transient = UPDATE_FAILURES.get(
            rcode, (f"the DNS server answered {dns.rcode.to_text(rcode)} to the update", False)
        )
        message = template.format(fqdn=fqdn, zone=zone)
        logger.warning("update of %s in zone %s failed: %s", fqdn, zone, message)
        if transient:
            raise DnsBackendUnavailableError(message)
        raise DnsBackendError(message)

    @property
    def _address(self) -> str:
        host, port = self._settings.server, self._settings.port
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    @property
    def _key_name(self) -> str:
        return self._settings.key.name.to_text(omit_final_dot=True)


def _absolute(name: str) -> dns.name.Name:
    return dns.name.from_text(name.rstrip(".") + ".")


def from_env(environ: Mapping[str, str]) -> Rfc2136Backend:
    """Build the backend from ``DJANGO_RFC2136_*`` variables (see docs/backends.md).

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
    return Rfc2136Backend(
        Rfc2136Settings(
            server=server,
            port=port,
            key=key,
            zones=_zones(environ.get("DJANGO_RFC2136_ZONES", "")),
            timeout=_positive_float(environ, "DJANGO_RFC2136_TIMEOUT", DEFAULT_TIMEOUT),
            ttl=_ttl(environ),
        )
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
