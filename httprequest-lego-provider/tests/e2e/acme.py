"""The ACME side of the end-to-end tests: a throwaway CA, pebble, lego and chain checks.

Everything listens on 127.0.0.1 and is addressed by IP; pebble really validates each DNS-01
challenge against the test's BIND server (``PEBBLE_VA_ALWAYS_VALID`` is never set).
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import ssl
import subprocess
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.processes import LOOPBACK, ManagedProcess, free_port, require_tool

LEGO_TIMEOUT = 120  # pebble 2.4 sends no Retry-After: one order takes 1.5-9 s, allow for load


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def make_serving_ca(directory: Path) -> tuple[Path, Path, Path]:
    """Create a throwaway CA and a certificate for IP 127.0.0.1 signed by it.

    Debian's pebble ships no test certificates, and lego must trust pebble's HTTPS endpoint
    (``LEGO_CA_CERTIFICATES``), so each run makes its own.

    Returns:
        The CA certificate, the serving certificate and the serving key (PEM files).
    """
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "e2e throwaway serving CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, LOOPBACK)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(LOOPBACK))]),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_path, cert_path, key_path = (
        directory / "ca.pem",
        directory / "serving.pem",
        directory / "serving.key",
    )
    ca_path.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_key(key_path, key)
    return ca_path, cert_path, key_path


class Pebble:
    """A pebble ACME server on loopback ports, validating DNS-01 against ``dns_server``."""

    def __init__(self, directory: Path, dns_server: str) -> None:
        self.directory = directory
        self.dns_server = dns_server
        self.port = free_port()
        self.management_port = free_port()
        self.ca_file = directory / "ca.pem"
        self.process = ManagedProcess("pebble", directory / "pebble.log")

    @property
    def directory_url(self) -> str:
        """The ACME directory, for lego's ``--server``."""
        return f"https://{LOOPBACK}:{self.port}/dir"

    def start(self, timeout: float = 20.0) -> None:
        """Write pebble's certificates and configuration, start it, wait for its directory."""
        pebble = require_tool("pebble")
        self.ca_file, cert, key = make_serving_ca(self.directory)
        config = self.directory / "pebble-config.json"
        config.write_text(
            json.dumps(
                {
                    "pebble": {
                        "listenAddress": f"{LOOPBACK}:{self.port}",
                        "managementListenAddress": f"{LOOPBACK}:{self.management_port}",
                        "certificate": str(cert),
                        "privateKey": str(key),
                        # Only DNS-01 is used; the other validators still need ports.
                        "httpPort": free_port(),
                        "tlsPort": free_port(),
                        "ocspResponderURL": "",
                        "externalAccountBindingRequired": False,
                    }
                }
            )
        )
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PEBBLE_VA_NOSLEEP": "1",  # validate at once instead of after a random 0-15 s
            "PEBBLE_WFE_NONCEREJECT": "0",  # lego does retry bad nonces; do not spend time on it
            "PEBBLE_AUTHZREUSE": "0",  # every order must be validated afresh
        }
        self.process.start(
            [pebble, "-config", str(config), "-dnsserver", self.dns_server],
            ready=self._answers,
            timeout=timeout,
            cwd=self.directory,
            env=env,
        )

    def _answers(self) -> bool:
        try:
            self.get(self.directory_url)
        except (OSError, urllib.error.URLError):
            return False
        return True

    def stop(self) -> None:
        """Terminate the pebble we started (by its PID) and reap it."""
        self.process.stop(timeout=10)

    def get(self, url: str) -> bytes:
        """GET a pebble URL, trusting only the throwaway CA that signed its certificate."""
        context = ssl.create_default_context(cafile=str(self.ca_file))
        with urllib.request.urlopen(url, context=context, timeout=10) as response:  # noqa: S310
            body: bytes = response.read()
            return body

    def issuing_root(self) -> bytes:
        """Return the root pebble signs certificates under (PEM), from its management API."""
        return self.get(f"https://{LOOPBACK}:{self.management_port}/roots/0")


@dataclass(frozen=True)
class LegoResult:
    """What a lego run printed and where it stored its certificates."""

    returncode: int
    output: str
    path: Path

    def certificate(self, first_domain: str) -> Path:
        """The bundle (leaf then issuer) lego wrote for an order whose first name is given."""
        return self.path / "certificates" / f"{first_domain.replace('*', '_')}.crt"


def run_lego(
    pebble: Pebble,
    dns_resolver: str,
    path: Path,
    domains: Sequence[str],
    httpreq_env: Mapping[str, str],
) -> LegoResult:
    """Obtain a certificate with ``lego --dns httpreq`` against pebble, like an operator would.

    Args:
        pebble: the ACME server.
        dns_resolver: ``IP:port`` of the authoritative test server, so lego never asks the
            machine's resolvers.
        path: lego's account and certificate directory.
        domains: the names on the certificate (wildcards allowed).
        httpreq_env: ``HTTPREQ_*`` variables (endpoint, credentials, mode).
    """
    lego = require_tool("lego")
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(path),
        "LEGO_CA_CERTIFICATES": str(pebble.ca_file),
        **httpreq_env,
    }
    args = [
        lego,
        "--server",
        pebble.directory_url,
        "--accept-tos",
        "--email",
        "e2e@example.com",
        "--dns",
        "httpreq",
        "--dns.resolvers",
        dns_resolver,
        "--dns.disable-cp",
        "--path",
        str(path),
    ]
    for domain in domains:
        args += ["--domains", domain]
    args.append("run")
    try:
        result = subprocess.run(
            args,
            env=env,
            capture_output=True,
            text=True,
            timeout=LEGO_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"lego did not finish in {LEGO_TIMEOUT} s: {exc.output!r}") from exc
    return LegoResult(result.returncode, result.stdout + result.stderr, path)


def verify_certificate(
    result: LegoResult, domains: Sequence[str], root_pem: bytes, server_log: str = ""
) -> None:
    """Check that lego succeeded and its certificate chains to ``root_pem``, naming ``domains``.

    The chain is checked by ``openssl verify`` (an independent verifier); the names and the
    private key by reading the files.

    Raises:
        AssertionError: with lego's output and ``server_log``, openssl's output or the mismatch.
    """
    assert result.returncode == 0, f"{result.output}\n--- provider log ---\n{server_log}"
    bundle = result.certificate(domains[0])
    certificates = x509.load_pem_x509_certificates(bundle.read_bytes())
    leaf, intermediates = certificates[0], certificates[1:]
    workdir = bundle.parent
    (workdir / "root.pem").write_bytes(root_pem)
    (workdir / "leaf.pem").write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    (workdir / "chain.pem").write_bytes(
        b"".join(c.public_bytes(serialization.Encoding.PEM) for c in intermediates)
    )
    openssl = require_tool("openssl")
    check = subprocess.run(
        [openssl, "verify", "-CAfile", "root.pem", "-untrusted", "chain.pem", "leaf.pem"],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert check.returncode == 0, f"chain does not verify: {check.stdout}{check.stderr}"
    names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sorted(names.get_values_for_type(x509.DNSName)) == sorted(domains)
    key = serialization.load_pem_private_key(
        bundle.with_suffix(".key").read_bytes(), password=None
    )
    assert key.public_key() == leaf.public_key()


class LegoRunner:
    """Starts lego runs against one pebble, DNS server and provider, side by side.

    lego 4.9 polls an authorization about every 5 s when the CA sends no Retry-After (pebble
    sends none), so an order takes 5-20 s of mostly waiting; running a module's orders at once
    keeps the suite short and also has the provider serve concurrent clients.
    """

    def __init__(
        self,
        pebble: Pebble,
        dns_resolver: str,
        endpoint: str,
        directory: Path,
        pool: ThreadPoolExecutor,
    ) -> None:
        self.pebble = pebble
        self.dns_resolver = dns_resolver
        self.endpoint = endpoint
        self.directory = directory
        self.pool = pool
        self._runs = 0

    def start(
        self, domains: list[str], username: str, password: str, *, raw: bool = False
    ) -> Future[LegoResult]:
        """Begin ``lego run`` for ``domains`` as ``username``; the future holds its result."""
        env = {
            "HTTPREQ_ENDPOINT": self.endpoint,
            "HTTPREQ_USERNAME": username,
            "HTTPREQ_PASSWORD": password,
            # lego sleeps one polling interval before its (disabled) propagation check.
            "HTTPREQ_POLLING_INTERVAL": "1",
        }
        if raw:
            env["HTTPREQ_MODE"] = "RAW"
        self._runs += 1
        path = self.directory / f"run-{self._runs}"
        return self.pool.submit(run_lego, self.pebble, self.dns_resolver, path, domains, env)
