"""A real BIND 9 ``named`` for tests: own directory, free loopback ports, stopped by its PID.

Used by the RFC 2136 backend tests and the end-to-end issuance tests. Nothing here is skipped:
a missing ``named`` or one that does not come up raises :class:`InfraError` with its log.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype
import dns.tsig
import dns.update
import dns.zone

# LOOPBACK and free_port are re-exported: the RFC 2136 backend tests take them from here.
from tests.processes import LOOPBACK as LOOPBACK
from tests.processes import InfraError, ManagedProcess, require_tool, run
from tests.processes import free_port as free_port


@dataclass(frozen=True)
class TsigKey:
    """A shared-secret key as BIND configures it and as dnspython signs with it."""

    name: str
    secret: str = field(default_factory=lambda: base64.b64encode(secrets.token_bytes(32)).decode())
    algorithm: str = "hmac-sha256"

    def bind_clause(self) -> str:
        """Return the ``key`` statement for named.conf."""
        return f'key "{self.name}" {{ algorithm {self.algorithm}; secret "{self.secret}"; }};\n'

    def dnspython(self) -> dns.tsig.Key:
        """Return the key for dnspython's ``keyring`` argument."""
        return dns.tsig.Key(self.name, self.secret, self.algorithm)


@dataclass(frozen=True)
class Zone:
    """A zone served by the test server.

    ``dynamic`` zones accept RFC 2136 updates under ``update_policy``; static zones are files
    the test rewrites and reloads with rndc (how a git-deployed zone is published).
    """

    name: str
    records: tuple[str, ...] = ()
    dynamic: bool = True
    update_policy: tuple[str, ...] = ()


def example_zones(update_policy: tuple[str, ...]) -> tuple[Zone, ...]:
    """The zones of the backend contract, as dynamic zones under ``update_policy``.

    ``sub.example.com`` is delegated by ``example.com`` to this same server (it is its own zone
    here); ``elsewhere.example.com`` is delegated to servers the tests cannot update.
    """
    parent = Zone(
        "example.com",
        records=(
            "sub IN NS ns.sub",
            f"ns.sub IN A {LOOPBACK}",
            "elsewhere IN NS ns.elsewhere.invalid.",
        ),
        update_policy=update_policy,
    )
    return (
        parent,
        Zone("sub.example.com", update_policy=update_policy),
        Zone("example.co.uk", update_policy=update_policy),
    )


def zone_header(zone: str, serial: int | str) -> str:
    """Return an SOA/NS header for ``zone`` whose name server is the loopback test server."""
    return (
        f"$ORIGIN {zone}.\n$TTL 60\n"
        f"@ IN SOA ns.{zone}. hostmaster.{zone}. {serial} 3600 600 86400 60\n"
        f"@ IN NS ns.{zone}.\nns IN A {LOOPBACK}\n"
    )


class NamedServer:
    """One ``named -g`` process serving ``zones`` on a free loopback port (UDP and TCP)."""

    def __init__(self, directory: Path, zones: Sequence[Zone], keys: Sequence[TsigKey]) -> None:
        self.directory = directory
        self.zones = tuple(zones)
        self.keys = tuple(keys)
        self.port = free_port()
        self.rndc_port = free_port()
        self.rndc_key = TsigKey("rndc-key")
        self.rndc_key_file = directory / "rndc.key"
        self.process = ManagedProcess("named", directory / "named.log")

    @property
    def address(self) -> str:
        """``IP:port`` as DJANGO_RFC2136_SERVER and lego's ``--dns.resolvers`` expect it."""
        return f"{LOOPBACK}:{self.port}"

    def zone_file(self, zone: str) -> Path:
        """Return where the zone's master file lives."""
        return self.directory / f"{zone}.zone"

    def start(self, timeout: float = 15.0) -> None:
        """Write the configuration and zone files, start named, wait until every zone answers."""
        named = require_tool("named")
        self.directory.mkdir(parents=True, exist_ok=True)
        for zone in self.zones:
            self.zone_file(zone.name).write_text(
                zone_header(zone.name, 1) + "".join(f"{r}\n" for r in zone.records)
            )
        self.rndc_key_file.write_text(self.rndc_key.bind_clause())
        conf = self.directory / "named.conf"
        conf.write_text(self._config())
        pending = [z.name for z in self.zones]

        def serving_every_zone() -> bool:
            while pending and self.is_serving(pending[0]):
                pending.pop(0)
            return not pending

        self.process.start(
            [named, "-g", "-4", "-n", "2", "-c", str(conf)],
            ready=serving_every_zone,
            timeout=timeout,
            cwd=self.directory,
        )

    def stop(self) -> None:
        """Terminate the named we started (by its PID) and reap it."""
        self.process.stop(timeout=10)

    def log(self) -> str:
        """Return the tail of named's log (for failure messages)."""
        return self.process.log()

    def is_serving(self, zone: str) -> bool:
        """True when the server answers the zone's SOA authoritatively."""
        query = dns.message.make_query(f"{zone}.", dns.rdatatype.SOA)
        try:
            response = dns.query.udp(query, LOOPBACK, port=self.port, timeout=0.5)
        except (dns.exception.Timeout, OSError):
            return False
        return response.rcode() == dns.rcode.NOERROR and bool(response.flags & dns.flags.AA)

    def soa_serial(self, zone: str) -> int:
        """Return the serial the server currently publishes for ``zone``."""
        query = dns.message.make_query(f"{zone}.", dns.rdatatype.SOA)
        response = dns.query.tcp(query, LOOPBACK, port=self.port, timeout=5)
        serial: int = response.answer[0][0].serial
        return serial

    def txt(self, fqdn: str) -> set[str]:
        """Return the TXT values the server publishes at ``fqdn`` (what a validator would see)."""
        query = dns.message.make_query(f"{fqdn.rstrip('.')}.", dns.rdatatype.TXT)
        response = dns.query.tcp(query, LOOPBACK, port=self.port, timeout=5)
        return {
            b"".join(rdata.strings).decode()
            for rrset in response.answer
            if rrset.rdtype == dns.rdatatype.TXT
            for rdata in rrset
        }

    def rndc(self, *args: str) -> str:
        """Run an rndc command against this server's own control channel."""
        key = ["-s", LOOPBACK, "-p", str(self.rndc_port), "-k", str(self.rndc_key_file)]
        return run([require_tool("rndc"), *key, *args], timeout=30)

    def clear_txt_records(self, key: TsigKey) -> None:
        """Delete every TXT RRset from the dynamic zones, so each test starts from empty zones.

        Reads each zone by AXFR (allowed from loopback) and deletes its TXT sets in one UPDATE.
        """
        for zone in self.zones:
            if not zone.dynamic:
                continue
            origin = dns.name.from_text(f"{zone.name}.")
            contents = dns.zone.from_xfr(
                dns.query.xfr(LOOPBACK, origin, port=self.port, timeout=5)
            )
            update = dns.update.UpdateMessage(origin, keyring=key.dnspython())
            names = [name for name, _ in contents.iterate_rdatasets(dns.rdatatype.TXT)]
            if not names:
                continue
            for name in names:
                update.delete(name.derelativize(origin), dns.rdatatype.TXT)
            response = dns.query.tcp(update, LOOPBACK, port=self.port, timeout=5)
            if response.rcode() != dns.rcode.NOERROR:
                raise InfraError(
                    f"clearing {zone.name} failed: {dns.rcode.to_text(response.rcode())}"
                )

    def _config(self) -> str:
        d = self.directory
        parts = [
            "options {\n"
            f'  directory "{d}";\n'
            f'  pid-file "{d}/named.pid";\n'
            f'  session-keyfile "{d}/session.key";\n'
            f'  managed-keys-directory "{d}";\n'
            f"  listen-on port {self.port} {{ {LOOPBACK}; }};\n"
            "  listen-on-v6 { none; };\n"
            "  recursion no;\n"
            "  dnssec-validation no;\n"
            "  notify no;\n"
            f"  allow-transfer {{ {LOOPBACK}; }};\n"
            "};\n",
            self.rndc_key.bind_clause(),
            f"controls {{ inet {LOOPBACK} port {self.rndc_port} allow {{ {LOOPBACK}; }} "
            f'keys {{ "{self.rndc_key.name}"; }}; }};\n',
            *(key.bind_clause() for key in self.keys),
        ]
        for zone in self.zones:
            policy = ""
            if zone.dynamic:
                grants = "".join(f" {rule};" for rule in zone.update_policy)
                policy = f" update-policy {{{grants} }};"
            zone_file = self.zone_file(zone.name)
            parts.append(f'zone "{zone.name}" {{ type primary; file "{zone_file}";{policy} }};\n')
        return "".join(parts)
