"""The request deadline: its setting, its arithmetic, and the rfc2136 backend drawing from it.

The rfc2136 cases use a local TCP listener that accepts connections and never answers (a DNS
server that hangs), so only the deadline can end the wait.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from api.errors import backend_status
from django.core.exceptions import ImproperlyConfigured
from dns_backends import Deadline, DeadlineExceededError
from dns_backends.deadline import DEFAULT_DEADLINE_SECONDS
from dns_backends.rfc2136 import Rfc2136Backend
from dns_backends.rfc2136.settings import Rfc2136Settings
from httprequest_lego_provider.environment import ProviderEnvironment

from tests.dns_backends.contract import token
from tests.dnsinfra import LOOPBACK, TsigKey

KEY = TsigKey("deadline-key")


def environment(**variables: str) -> ProviderEnvironment:
    return ProviderEnvironment.from_env({"DJANGO_SECRET_KEY": "k", **variables})


def test_the_request_deadline_defaults_well_inside_legos_30_seconds() -> None:
    assert environment().request_deadline == DEFAULT_DEADLINE_SECONDS == 20


def test_the_request_deadline_can_be_configured() -> None:
    assert environment(DJANGO_REQUEST_DEADLINE="7.5").request_deadline == 7.5


@pytest.mark.parametrize("raw", ["0", "-1", "soon", "301", "nan"])
def test_a_bad_request_deadline_stops_the_start_naming_the_variable(raw: str) -> None:
    with pytest.raises(ImproperlyConfigured, match=f"DJANGO_REQUEST_DEADLINE='{raw}'"):
        environment(DJANGO_REQUEST_DEADLINE=raw)


def test_an_expired_deadline_refuses_the_next_step_with_a_503_to_retry() -> None:
    deadline = Deadline.after(0)
    assert deadline.remaining() == 0
    with pytest.raises(DeadlineExceededError) as raised:
        deadline.check("pushing to the git remote")
    assert backend_status(raised.value) == 503
    assert raised.value.public_message == (
        "the request's deadline of 0 s ran out while pushing to the git remote: try again "
        "(presenting or cleaning up again is safe)"
    )


def test_a_running_deadline_gives_each_step_what_is_left() -> None:
    deadline = Deadline.after(60)
    first = deadline.check("a step")
    assert 0 < first <= 60
    assert deadline.check("the next step") <= first


@pytest.fixture
def hanging_server() -> Iterator[int]:
    """A TCP port that accepts connections (the kernel's backlog) and never answers."""
    with socket.socket() as listener:
        listener.bind((LOOPBACK, 0))
        listener.listen(8)
        yield listener.getsockname()[1]


@pytest.mark.parametrize("zones", [None, frozenset({"example.com"})], ids=["discover", "listed"])
@pytest.mark.parametrize("call", ["present", "cleanup"])
def test_a_dns_server_that_never_answers_ends_at_the_deadline_not_its_timeout(
    hanging_server: int, zones: frozenset[str] | None, call: str
) -> None:
    """The server's own timeout (60 s here) is longer: the deadline ends the wait, a 503."""
    backend = Rfc2136Backend(
        Rfc2136Settings(LOOPBACK, hanging_server, KEY.dnspython(), zones=zones, timeout=60)
    )
    with pytest.raises(DeadlineExceededError, match="ran out while waiting for the DNS server"):
        getattr(backend, call)("_acme-challenge.www.example.com", token("x"), Deadline.after(0.3))


def test_no_query_is_sent_once_the_deadline_has_passed(hanging_server: int) -> None:
    backend = Rfc2136Backend(Rfc2136Settings(LOOPBACK, hanging_server, KEY.dnspython()))
    with pytest.raises(DeadlineExceededError, match="ran out while connecting"):
        backend.present("_acme-challenge.www.example.com", token("x"), Deadline.after(0))
