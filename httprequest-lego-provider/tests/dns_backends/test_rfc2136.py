"""The RFC 2136 backend against a real BIND 9 server started for this module."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import dns.message
import dns.name
import dns.query
import dns.tsig
import dns.zone
import pytest
from api.errors import backend_status
from dns_backends import BackendConfigError, DnsBackendError, DnsBackendUnavailableError
from dns_backends.base import ZoneNotFoundError
from dns_backends.rfc2136 import Rfc2136Backend, from_env
from dns_backends.rfc2136.settings import Rfc2136Settings, parse_server

from tests.dns_backends.contract import CONTRACT_ZONES, DnsBackendContract, ZoneTxt, token
from tests.dnsinfra import LOOPBACK, NamedServer, TsigKey, example_zones, free_port

UPDATE_KEY = TsigKey("provider-key")
# May only write the one name below: shows how a server-side policy refusal is reported.
LIMITED_KEY = TsigKey("limited-key", algorithm="hmac-sha512")
LIMITED_NAME = "_acme-challenge.limited.example.com"

POLICY = (
    f"grant {UPDATE_KEY.name} zonesub TXT",
    f"grant {LIMITED_KEY.name} name {LIMITED_NAME}. TXT",
)
ZONES = example_zones(POLICY)
assert {z.name for z in ZONES} == set(CONTRACT_ZONES)


@pytest.fixture(scope="module")
def named(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NamedServer]:
    server = NamedServer(tmp_path_factory.mktemp("named"), ZONES, keys=(UPDATE_KEY, LIMITED_KEY))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def clean_named(named: NamedServer) -> NamedServer:
    """The module's server with every TXT record removed (the contract expects empty zones)."""
    named.clear_txt_records(UPDATE_KEY)
    return named


def make_backend(
    named: NamedServer,
    key: TsigKey = UPDATE_KEY,
    zones: tuple[str, ...] | None = None,
    port: int | None = None,
    timeout: float = 5.0,
) -> Rfc2136Backend:
    return Rfc2136Backend(
        Rfc2136Settings(
            server=LOOPBACK,
            port=named.port if port is None else port,
            key=key.dnspython(),
            zones=None if zones is None else frozenset(zones),
            timeout=timeout,
        )
    )


class TestRfc2136Backend(DnsBackendContract):
    """The shared contract, with zones discovered from the server and with zones configured."""

    @pytest.fixture(params=["discovered-zones", "configured-zones"])
    def backend(self, request: pytest.FixtureRequest, clean_named: NamedServer) -> Rfc2136Backend:
        zones = CONTRACT_ZONES if request.param == "configured-zones" else None
        return make_backend(clean_named, zones=zones)

    @pytest.fixture
    def zone_txt(self, clean_named: NamedServer) -> ZoneTxt:
        """Read a zone's own data by AXFR: occluded records below a delegation included."""

        def zone_txt(zone: str, fqdn: str) -> set[str]:
            xfr = dns.query.xfr(
                LOOPBACK, f"{zone}.", port=clean_named.port, timeout=5, relativize=False
            )
            contents = dns.zone.from_xfr(xfr, relativize=False)
            rdataset = contents.get_rdataset(f"{fqdn}.", "TXT")
            if rdataset is None:
                return set()
            return {b"".join(rdata.strings).decode() for rdata in rdataset}

        return zone_txt


def test_present_is_visible_on_the_server_with_the_configured_ttl(
    clean_named: NamedServer,
) -> None:
    backend = Rfc2136Backend(
        Rfc2136Settings(LOOPBACK, clean_named.port, UPDATE_KEY.dnspython(), ttl=123)
    )
    backend.present("_acme-challenge.www.example.com", token("ttl"))
    assert clean_named.txt("_acme-challenge.www.example.com") == {token("ttl")}
    query = dns.message.make_query("_acme-challenge.www.example.com.", "TXT")
    answer = dns.query.tcp(query, LOOPBACK, port=clean_named.port, timeout=5).answer
    assert answer[0].ttl == 123


def test_name_in_the_subzone_is_written_to_the_subzone_not_the_parent(
    clean_named: NamedServer,
) -> None:
    """The parent only holds the delegation; a record written there would never be served."""
    make_backend(clean_named).present("_acme-challenge.host.sub.example.com", token("s"))
    xfr = dns.zone.from_xfr(dns.query.xfr(LOOPBACK, "sub.example.com.", port=clean_named.port))
    assert xfr.get_rdataset("_acme-challenge.host", "TXT") is not None


def test_name_delegated_to_other_servers_raises_zone_not_found(named: NamedServer) -> None:
    with pytest.raises(ZoneNotFoundError, match="configured for DNS"):
        make_backend(named).present("_acme-challenge.www.elsewhere.example.com", token("x"))


def test_unknown_key_name_is_reported_as_badkey(named: NamedServer) -> None:
    stranger = TsigKey("unknown-key")
    with pytest.raises(DnsBackendError, match="does not know the TSIG key unknown-key") as info:
        make_backend(named, key=stranger).present("_acme-challenge.example.com", token("x"))
    assert backend_status(info.value) == 502


def test_wrong_secret_is_reported_as_badsig(named: NamedServer) -> None:
    forged = TsigKey(UPDATE_KEY.name)  # same name, fresh random secret
    with pytest.raises(
        DnsBackendError, match=r"rejected the TSIG secret of provider-key \(BADSIG\)"
    ):
        make_backend(named, key=forged).present("_acme-challenge.example.com", token("x"))


def test_update_refused_by_policy_names_the_record(clean_named: NamedServer) -> None:
    limited = make_backend(clean_named, key=LIMITED_KEY)
    limited.present(LIMITED_NAME, token("allowed"))  # the grant works ...
    with pytest.raises(
        DnsBackendError, match=r"refused the update of _acme-challenge\.www"
    ) as info:
        limited.present("_acme-challenge.www.example.com", token("x"))  # ... only for its name
    assert backend_status(info.value) == 502
    assert clean_named.txt(LIMITED_NAME) == {token("allowed")}


def test_configured_zone_the_server_does_not_serve_is_reported_as_notauth(
    named: NamedServer,
) -> None:
    backend = make_backend(named, zones=("example.org",))
    with pytest.raises(DnsBackendError, match=r"not authoritative for example\.org"):
        backend.present("_acme-challenge.example.org", token("x"))


def test_name_outside_the_configured_zones_raises_zone_not_found_without_asking(
    named: NamedServer,
) -> None:
    backend = make_backend(named, zones=("example.co.uk",))
    with pytest.raises(ZoneNotFoundError):
        backend.present("_acme-challenge.www.example.com", token("x"))


def test_values_outside_every_served_zone_raises_zone_not_found(named: NamedServer) -> None:
    with pytest.raises(ZoneNotFoundError):
        make_backend(named).values("_acme-challenge.example.org")


def test_server_down_is_unavailable_at_once() -> None:
    """Nothing listens on the port: the connection is refused, no need to wait the timeout."""
    backend = Rfc2136Backend(
        Rfc2136Settings(LOOPBACK, free_port(), UPDATE_KEY.dnspython(), timeout=5)
    )
    started = time.monotonic()
    with pytest.raises(DnsBackendUnavailableError, match="unreachable") as info:
        backend.present("_acme-challenge.example.com", token("x"))
    assert time.monotonic() - started < 1
    assert backend_status(info.value) == 503


def test_silent_server_is_unavailable_after_the_timeout() -> None:
    """A server that accepts connections but never answers fails within the timeout."""
    with socket.socket() as silent:
        silent.bind((LOOPBACK, 0))
        silent.listen(8)
        backend = Rfc2136Backend(
            Rfc2136Settings(LOOPBACK, silent.getsockname()[1], UPDATE_KEY.dnspython(), timeout=0.3)
        )
        started = time.monotonic()
        with pytest.raises(DnsBackendUnavailableError, match=r"did not answer within 0\.3 s"):
            backend.present("_acme-challenge.example.com", token("x"))
        assert time.monotonic() - started < 2


def test_concurrent_present_and_cleanup_at_one_name_keep_the_other_values(
    clean_named: NamedServer,
) -> None:
    """Many threads on one backend object, all at one name: each change touches one value."""
    backend = make_backend(clean_named)
    name = "_acme-challenge.busy.example.com"
    kept = [token(f"kept-{i}") for i in range(8)]
    churned = [token(f"churn-{i}") for i in range(8)]
    for value in churned:
        backend.present(name, value)
    errors: list[BaseException] = []

    def work(present: str, remove: str) -> None:
        try:
            backend.present(name, present)
            backend.cleanup(name, remove)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [
        threading.Thread(target=work, args=pair) for pair in zip(kept, churned, strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert clean_named.txt(name) == set(kept)


class TestFromEnv:
    BASE = {
        "DJANGO_RFC2136_SERVER": "127.0.0.1:5353",
        "DJANGO_RFC2136_KEY_NAME": "provider-key",
        "DJANGO_RFC2136_KEY_SECRET": UPDATE_KEY.secret,
    }

    def test_defaults(self) -> None:
        settings = from_env(self.BASE).settings
        assert (settings.server, settings.port) == ("127.0.0.1", 5353)
        assert settings.key.algorithm == dns.tsig.HMAC_SHA256
        assert settings.key.name == dns.name.from_text("provider-key")
        assert (settings.zones, settings.timeout, settings.ttl) == (None, 5.0, 60)

    def test_all_variables(self) -> None:
        settings = from_env(
            self.BASE
            | {
                "DJANGO_RFC2136_KEY_ALGORITHM": "HMAC-SHA512",
                "DJANGO_RFC2136_ZONES": "Example.com., sub.example.com,",
                "DJANGO_RFC2136_TIMEOUT": "2.5",
                "DJANGO_RFC2136_TTL": "300",
            }
        ).settings
        assert settings.key.algorithm == dns.tsig.HMAC_SHA512
        assert settings.zones == frozenset({"example.com", "sub.example.com"})
        assert (settings.timeout, settings.ttl) == (2.5, 300)

    @pytest.mark.parametrize(
        ("raw", "expected"),
        [
            ("127.0.0.1", ("127.0.0.1", 53)),
            ("10.0.0.1:53", ("10.0.0.1", 53)),
            ("::1", ("::1", 53)),
            ("[::1]:5353", ("::1", 5353)),
            ("[2001:db8::1]", ("2001:db8::1", 53)),
        ],
    )
    def test_server_accepts_ip_literals(self, raw: str, expected: tuple[str, int]) -> None:
        assert parse_server(raw) == expected

    @pytest.mark.parametrize(
        ("variable", "value", "message"),
        [
            ("DJANGO_RFC2136_SERVER", "", "DJANGO_RFC2136_SERVER is required"),
            ("DJANGO_RFC2136_SERVER", "ns1.example.com:53", "not a host name"),
            ("DJANGO_RFC2136_SERVER", "localhost", "not a host name"),
            ("DJANGO_RFC2136_SERVER", "127.0.0.1:0", "invalid port"),
            ("DJANGO_RFC2136_SERVER", "127.0.0.1:99999", "invalid port"),
            ("DJANGO_RFC2136_SERVER", "[::1", "not \\[IPv6\\]:port"),
            ("DJANGO_RFC2136_KEY_NAME", "", "DJANGO_RFC2136_KEY_NAME is required"),
            ("DJANGO_RFC2136_KEY_NAME", "a..b", "DJANGO_RFC2136_KEY_NAME='a..b' is not a valid"),
            ("DJANGO_RFC2136_KEY_SECRET", "", "DJANGO_RFC2136_KEY_SECRET is required"),
            ("DJANGO_RFC2136_KEY_SECRET", "not base64!", "DJANGO_RFC2136_KEY_SECRET must be"),
            (
                "DJANGO_RFC2136_KEY_ALGORITHM",
                "gss-tsig",
                "DJANGO_RFC2136_KEY_ALGORITHM='gss-tsig'",
            ),
            ("DJANGO_RFC2136_KEY_ALGORITHM", "sha256", "is not supported"),
            ("DJANGO_RFC2136_ZONES", "example.com,a..b", "DJANGO_RFC2136_ZONES='a..b'"),
            ("DJANGO_RFC2136_TIMEOUT", "0", "DJANGO_RFC2136_TIMEOUT='0'"),
            ("DJANGO_RFC2136_TIMEOUT", "soon", "DJANGO_RFC2136_TIMEOUT='soon'"),
            ("DJANGO_RFC2136_TTL", "-1", "DJANGO_RFC2136_TTL='-1'"),
            ("DJANGO_RFC2136_TTL", "1.5", "DJANGO_RFC2136_TTL='1.5'"),
        ],
    )
    def test_invalid_values_name_the_variable(
        self, variable: str, value: str, message: str
    ) -> None:
        with pytest.raises(BackendConfigError, match=message):
            from_env(self.BASE | {variable: value})

    def test_backend_built_from_env_updates_the_server(self, clean_named: NamedServer) -> None:
        backend = from_env(self.BASE | {"DJANGO_RFC2136_SERVER": clean_named.address})
        backend.present("_acme-challenge.env.example.co.uk", token("env"))
        assert clean_named.txt("_acme-challenge.env.example.co.uk") == {token("env")}


def test_replace_is_one_update_message(clean_named: NamedServer) -> None:
    """BIND bumps the zone's serial once per UPDATE it applies: one here, for three changes."""
    backend = make_backend(clean_named)
    name = "_acme-challenge.www.example.com"
    backend.present(name, token("old1"))
    backend.present(name, token("old2"))
    before = clean_named.soa_serial("example.com")
    backend.replace(name, token("new"), [token("old1"), token("old2")])
    assert clean_named.soa_serial("example.com") == before + 1
    assert clean_named.txt(name) == {token("new")}
