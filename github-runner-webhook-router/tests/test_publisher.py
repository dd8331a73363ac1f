"""The publisher's time bound on a warm connection, against real Redis and RabbitMQ.

A proxy in front of the real broker holds each reply (see helpers.SlowProxy); nothing is mocked.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from helpers import AMQP_URL, REDIS_URL, SlowProxy
from kombu.connection import Connection
from webhook_router.broker import flavour_queue
from webhook_router.errors import BrokerUnavailableError
from webhook_router.publisher import Publisher
from webhook_router.watchdog import WATCHDOG_TICK_SECONDS

BROKERS = {
    "redis": (6379, "redis://127.0.0.1:{port}/0", REDIS_URL),
    "rabbitmq": (5672, "amqp://guest:guest@127.0.0.1:{port}//", AMQP_URL),
}


@pytest.mark.parametrize(("port", "template", "direct"), BROKERS.values(), ids=BROKERS.keys())
def test_publish_on_a_warm_connection_ends_at_its_deadline_not_at_the_socket_timeout(
    tmp_path: Path, flavour: str, port: int, template: str, direct: str
) -> None:
    """A copy that waited for another request has less budget left than a socket timeout.

    Budget 2 s: each network wait may take 1 s. Once warm, the broker's replies take 0.8 s;
    a publish due in 0.3 s must fail then, not succeed after 0.8 s.
    """
    proxy = SlowProxy(port, delay=0.0)
    publisher = Publisher(template.format(port=proxy.port), tmp_path, 2.0)
    try:
        publisher.publish(flavour, b'"{}"')  # connect, declare, publish: the connection is warm
        proxy.delay = 0.8
        started = time.monotonic()
        with pytest.raises(BrokerUnavailableError):
            publisher.publish(flavour, b'"{}"', deadline=started + 0.3)
        elapsed = time.monotonic() - started
    finally:
        proxy.close()
        publisher.close()
        with Connection(direct) as admin:
            bound = flavour_queue(flavour)(admin.default_channel)
            bound.delete()
            if direct.startswith("amqp"):
                bound.exchange.delete()

    assert elapsed < 0.3 + WATCHDOG_TICK_SECONDS + 0.3
