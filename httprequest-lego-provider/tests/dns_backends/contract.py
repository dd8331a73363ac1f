"""The behaviour every DNS backend must show; each backend's test module subclasses this.

A subclass provides a ``backend`` fixture: a fresh backend that manages the zones in
``CONTRACT_ZONES`` (``example.com``, its delegated subzone ``sub.example.com`` and
``example.co.uk``), all starting empty; and a ``zone_txt`` fixture (:data:`ZoneTxt`) that reads
what one zone itself holds from where that zone lives (the zone file in the repository, the
DNS server's copy of the zone), without going through the backend's own zone lookup.
"""

from __future__ import annotations

import base64
import hashlib
import threading
from collections.abc import Callable

import pytest
from dns_backends import DnsBackend, InvalidRecordError, ZoneNotFoundError

CONTRACT_ZONES = ("example.com", "sub.example.com", "example.co.uk")

# ``zone_txt(zone, fqdn)``: the TXT values that the zone ``zone`` holds at ``fqdn``.
ZoneTxt = Callable[[str, str], set[str]]


def token(seed: str) -> str:
    """Return a realistic challenge value: unpadded base64url of a SHA-256 digest."""
    digest = hashlib.sha256(seed.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def account_label(account_url: str) -> str:
    """Return the dns-account-01 label of an ACME account, computed as the draft says.

    Lowercased base32 of the first 10 bytes of SHA-256 of the account URL (SPEC 4.2): what a
    client that solves dns-account-01 puts before ``_acme-challenge``. Written here from the
    draft, not from the code under test, which never sees an account URL.
    """
    digest = hashlib.sha256(account_url.encode()).digest()[:10]
    return base64.b32encode(digest).decode().lower()


def domain_of_length(length: int, zone: str = "example.com") -> str:
    """Return a valid host name of exactly ``length`` characters below ``zone``."""
    labels: list[str] = []
    room = length - len(zone)
    while room > 0:
        size = min(63, room - 1)  # each label brings its dot
        if room - (size + 1) == 1:  # never leave room for only a dot: split more evenly
            size -= 1
        labels.append("a" * size)
        room -= size + 1
    name = ".".join([*labels, zone])
    assert len(name) == length, length
    assert all(labels), length
    return name


class DnsBackendContract:
    """Tests shared by all backends (fixture ``backend`` comes from the subclass)."""

    def test_present_publishes_the_value(self, backend: DnsBackend) -> None:
        backend.present("_acme-challenge.www.example.com", token("a"))
        assert backend.values("_acme-challenge.www.example.com") == {token("a")}

    def test_present_keeps_earlier_values_at_the_same_name(self, backend: DnsBackend) -> None:
        """Apex and wildcard orders need two values at one name at the same time."""
        name = "_acme-challenge.example.com"
        backend.present(name, token("apex"))
        backend.present(name, token("wildcard"))
        assert backend.values(name) == {token("apex"), token("wildcard")}

    def test_present_twice_is_idempotent(self, backend: DnsBackend) -> None:
        name = "_acme-challenge.example.com"
        backend.present(name, token("a"))
        backend.present(name, token("a"))
        assert backend.values(name) == {token("a")}

    def test_cleanup_removes_only_the_given_value(self, backend: DnsBackend) -> None:
        name = "_acme-challenge.example.com"
        backend.present(name, token("apex"))
        backend.present(name, token("wildcard"))
        backend.cleanup(name, token("apex"))
        assert backend.values(name) == {token("wildcard")}
        backend.cleanup(name, token("wildcard"))
        assert backend.values(name) == set()

    def test_cleanup_of_an_absent_value_is_a_no_op(self, backend: DnsBackend) -> None:
        name = "_acme-challenge.example.com"
        backend.present(name, token("kept"))
        backend.cleanup(name, token("never-presented"))
        assert backend.values(name) == {token("kept")}

    def test_names_in_a_multi_label_public_suffix_zone_are_accepted(
        self, backend: DnsBackend
    ) -> None:
        """``example.co.uk`` is a zone; the reference took ``co.uk`` as the zone."""
        backend.present("_acme-challenge.www.example.co.uk", token("uk"))
        assert backend.values("_acme-challenge.www.example.co.uk") == {token("uk")}

    def test_names_in_a_delegated_subzone_use_the_subzone(
        self, backend: DnsBackend, zone_txt: ZoneTxt
    ) -> None:
        """The record goes into the subzone's own data; in the parent it would never be served."""
        name = "_acme-challenge.host.sub.example.com"
        backend.present(name, token("sub"))
        assert zone_txt("sub.example.com", name) == {token("sub")}
        assert zone_txt("example.com", name) == set()

    def test_present_outside_every_zone_raises_zone_not_found(self, backend: DnsBackend) -> None:
        with pytest.raises(ZoneNotFoundError, match="configured for DNS"):
            backend.present("_acme-challenge.example.org", token("x"))

    def test_lookalike_zone_is_not_matched(self, backend: DnsBackend) -> None:
        """``badexample.com`` is not inside ``example.com``."""
        with pytest.raises(ZoneNotFoundError):
            backend.present("_acme-challenge.badexample.com", token("x"))

    @pytest.mark.parametrize("call", ["present", "cleanup"])
    def test_a_name_longer_than_dns_allows_is_refused_as_invalid(
        self, backend: DnsBackend, call: str
    ) -> None:
        """Valid alone (240 characters), the name is 256 with the challenge label: a 400."""
        name = "_acme-challenge." + domain_of_length(240)
        with pytest.raises(InvalidRecordError):
            getattr(backend, call)(name, token("long"))

    def test_dns_account_01_names_hold_their_values_in_the_names_zone(
        self, backend: DnsBackend, zone_txt: ZoneTxt
    ) -> None:
        """``_<label>._acme-challenge.<name>`` is one more label, below ``<name>``'s zone."""
        name = f"_{account_label('https://ca.example/acct/1')}._acme-challenge.www.example.com"
        backend.present(name, token("account"))
        assert backend.values(name) == {token("account")}
        assert zone_txt("example.com", name) == {token("account")}
        assert backend.values("_acme-challenge.www.example.com") == set()
        backend.cleanup(name, token("account"))
        assert backend.values(name) == set()
        assert zone_txt("example.com", name) == set()

    def test_dns_account_01_names_of_two_accounts_and_dns_01_coexist(
        self, backend: DnsBackend
    ) -> None:
        """Independent systems (one ACME account each) validate one name at the same time."""
        first, second = (
            f"_{account_label(url)}._acme-challenge.example.co.uk"
            for url in ("https://ca.example/acct/1", "https://ca.example/acct/2")
        )
        plain = "_acme-challenge.example.co.uk"
        backend.present(first, token("first"))
        backend.present(second, token("second"))
        backend.present(plain, token("plain"))
        backend.cleanup(first, token("first"))
        assert backend.values(first) == set()
        assert backend.values(second) == {token("second")}
        assert backend.values(plain) == {token("plain")}

    def test_dns_account_01_names_in_a_delegated_subzone_use_the_subzone(
        self, backend: DnsBackend, zone_txt: ZoneTxt
    ) -> None:
        name = (
            f"_{account_label('https://ca.example/acct/3')}._acme-challenge.host.sub.example.com"
        )
        backend.present(name, token("sub"))
        assert zone_txt("sub.example.com", name) == {token("sub")}
        assert zone_txt("example.com", name) == set()

    def test_a_dns_account_01_name_of_the_longest_length_dns_holds_is_published(
        self, backend: DnsBackend, zone_txt: ZoneTxt
    ) -> None:
        """A 219-character name makes a 253-character record: the most the API lets through."""
        name = f"_{account_label('https://ca.example/acct/4')}._acme-challenge." + (
            domain_of_length(219)
        )
        assert len(name) == 253
        backend.present(name, token("longest"))
        assert zone_txt("example.com", name) == {token("longest")}
        backend.cleanup(name, token("longest"))
        assert zone_txt("example.com", name) == set()

    def test_replace_adds_the_value_and_removes_only_the_old_ones(
        self, backend: DnsBackend
    ) -> None:
        """acme-dns's update: the newest value in, the oldest out; another client's value stays."""
        name = "_acme-challenge.www.example.com"
        for seed in ("old1", "old2", "other"):
            backend.present(name, token(seed))
        backend.replace(name, token("new"), [token("old1"), token("old2")])
        assert backend.values(name) == {token("new"), token("other")}

    def test_replace_keeps_the_new_value_when_it_is_among_the_old_ones(
        self, backend: DnsBackend
    ) -> None:
        name = "_acme-challenge.www.example.com"
        backend.present(name, token("again"))
        backend.replace(name, token("again"), [token("again"), token("absent")])
        assert backend.values(name) == {token("again")}

    def test_replace_outside_every_zone_raises_zone_not_found(self, backend: DnsBackend) -> None:
        with pytest.raises(ZoneNotFoundError):
            backend.replace("_acme-challenge.example.org", token("n"), [token("o")])

    def test_concurrent_presents_are_all_kept(self, backend: DnsBackend) -> None:
        names = [f"_acme-challenge.h{i}.example.com" for i in range(16)]
        errors: list[BaseException] = []

        def present(name: str) -> None:
            try:
                backend.present(name, token(name))
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=present, args=(n,)) for n in names]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        for name in names:
            assert backend.values(name) == {token(name)}
