"""A backend that publishes TXT values by RFC 2136 dynamic updates, signed with TSIG."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

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
    DnsBackendError,
    DnsBackendUnavailableError,
    InvalidRecordError,
    ZoneNotFoundError,
)
from dns_backends.deadline import Deadline, default_deadline
from dns_backends.rfc2136.settings import Rfc2136Settings, settings_from_env
from dns_backends.zones import dns_name, find_zone, suffixes

logger = logging.getLogger(__name__)

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

    def present(self, fqdn: str, value: str, deadline: Deadline | None = None) -> None:
        """Add ``value`` to the TXT set at ``fqdn``; the server ignores an identical record."""
        self._update(fqdn, add=(value,), delete=(), deadline=deadline or default_deadline())

    def cleanup(self, fqdn: str, value: str, deadline: Deadline | None = None) -> None:
        """Delete the one TXT record holding ``value``; deleting an absent record is a no-op."""
        self._update(fqdn, add=(), delete=(value,), deadline=deadline or default_deadline())

    def replace(
        self,
        fqdn: str,
        value: str,
        old_values: Sequence[str],
        deadline: Deadline | None = None,
    ) -> None:
        """Delete the old values and add the new one in one UPDATE, applied whole by the server."""
        deletions = tuple(old for old in old_values if old != value)
        deadline = deadline or default_deadline()
        self._update(fqdn, add=(value,), delete=deletions, deadline=deadline)

    def values(self, fqdn: str) -> set[str]:
        """Ask the server itself (not a cache) which TXT values it publishes at ``fqdn``."""
        name = dns_name(fqdn)
        query = dns.message.make_query(name, dns.rdatatype.TXT)
        deadline = default_deadline()
        with self._connection(deadline) as sock:
            response = self._exchange(query, sock, fqdn, deadline)
        rcode = response.rcode()
        if rcode == dns.rcode.REFUSED:
            raise ZoneNotFoundError(fqdn)
        if rcode not in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
            raise DnsBackendError(f"the DNS server answered {dns.rcode.to_text(rcode)} for {fqdn}")
        found: set[str] = set()
        for rrset in response.answer:
            if rrset.rdtype == dns.rdatatype.TXT and rrset.name == name:
                found.update(b"".join(rdata.strings).decode() for rdata in rrset)
        return found

    def _update(
        self, fqdn: str, *, add: Sequence[str], delete: Sequence[str], deadline: Deadline
    ) -> None:
        """Send one UPDATE: the server applies it whole or not at all, even if time runs out."""
        settings = self._settings
        name = dns_name(fqdn)  # refused, like the values, before anything is sent
        additions, deletions = [_txt(v) for v in add], [_txt(v) for v in delete]
        with self._connection(deadline) as sock:
            zone = self._zone_for(fqdn, sock, deadline)
            update = dns.update.UpdateMessage(
                _absolute(zone), keyring=settings.key, keyalgorithm=settings.key.algorithm
            )
            for rdata in deletions:
                update.delete(name, rdata)
            for rdata in additions:
                update.add(name, settings.ttl, rdata)
            response = self._exchange(update, sock, fqdn, deadline)
        rcode = response.rcode()
        if rcode != dns.rcode.NOERROR:
            self._raise_for_rcode(rcode, fqdn, zone)
        for value in delete:
            logger.info("deleted TXT %s at %s (zone %s)", value, fqdn, zone)
        for value in add:
            logger.info("added TXT %s at %s (zone %s)", value, fqdn, zone)

    def _zone_for(self, fqdn: str, sock: socket.socket, deadline: Deadline) -> str:
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
            response = self._exchange(query, sock, fqdn, deadline)
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
    def _connection(self, deadline: Deadline) -> Iterator[socket.socket]:
        """One TCP connection for the zone lookup and the update (no truncation, one set-up)."""
        settings = self._settings
        step = "connecting to the DNS server"
        try:
            sock = socket.create_connection(
                (settings.server, settings.port),
                timeout=min(settings.timeout, deadline.check(step)),
            )
        except TimeoutError as exc:
            if deadline.remaining() <= 0:
                raise deadline.exceeded(step) from exc
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
        self, message: dns.message.Message, sock: socket.socket, fqdn: str, deadline: Deadline
    ) -> dns.message.Message:
        """Send ``message`` and return the answer, turning transport and TSIG faults into ours.

        Each exchange waits for the server's timeout or what is left of the deadline, whichever
        is shorter.
        """
        settings = self._settings
        step = "waiting for the DNS server's answer"
        timeout = min(settings.timeout, deadline.check(step))
        try:
            return dns.query.tcp(message, settings.server, timeout=timeout, sock=sock)
        except dns.exception.Timeout as exc:
            if deadline.remaining() <= 0:
                raise deadline.exceeded(step) from exc
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


def _txt(value: str) -> dns.rdtypes.ANY.TXT.TXT:
    """Return the TXT record data holding ``value``, refusing what one TXT string cannot hold."""
    try:
        return dns.rdtypes.ANY.TXT.TXT(dns.rdataclass.IN, dns.rdatatype.TXT, [value.encode()])
    except (ValueError, UnicodeError, dns.exception.DNSException) as exc:
        raise InvalidRecordError("the TXT value cannot be held in one DNS string") from exc


def from_env(
    environ: Mapping[str, str],
    *,
    data_dir: Path | None = None,  # noqa: ARG001 - every backend's factory takes it
) -> Rfc2136Backend:
    """Build the backend from ``DJANGO_RFC2136_*`` (it keeps no state: ``data_dir`` is unused).

    Raises:
        BackendConfigError: a variable is missing or invalid; the message names it.
    """
    return Rfc2136Backend(settings_from_env(environ))
