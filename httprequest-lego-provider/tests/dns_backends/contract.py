"""The behaviour every DNS backend must show; each backend's test module subclasses this.

A subclass provides a ``backend`` fixture: a fresh backend that manages the zones in
``CONTRACT_ZONES`` (``example.com``, its delegated subzone ``sub.example.com`` and
``example.co.uk``), all starting empty.
"""

from __future__ import annotations

import base64
import hashlib
import threading

import pytest
from dns_backends import DnsBackend, ZoneNotFoundError

CONTRACT_ZONES = ("example.com", "sub.example.com", "example.co.uk")


def token(seed: str) -> str:
    """Return a realistic challenge value: unpadded base64url of a SHA-256 digest."""
    digest = hashlib.sha256(seed.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


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

    def test_names_in_a_delegated_subzone_use_the_subzone(self, backend: DnsBackend) -> None:
        backend.present("_acme-challenge.host.sub.example.com", token("sub"))
        assert backend.values("_acme-challenge.host.sub.example.com") == {token("sub")}
        assert backend.values("_acme-challenge.host.sub.example.com") != set()

    def test_present_outside_every_zone_raises_zone_not_found(self, backend: DnsBackend) -> None:
        with pytest.raises(ZoneNotFoundError, match="configured for DNS"):
            backend.present("_acme-challenge.example.org", token("x"))

    def test_lookalike_zone_is_not_matched(self, backend: DnsBackend) -> None:
        """``badexample.com`` is not inside ``example.com``."""
        with pytest.raises(ZoneNotFoundError):
            backend.present("_acme-challenge.badexample.com", token("x"))

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
