"""The slow password hasher never stalls a gevent worker's other requests."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from api.hashers import OffloadedPBKDF2PasswordHasher
from django.contrib.auth.hashers import PBKDF2PasswordHasher

PROJECT = Path(__file__).resolve().parents[1] / "httprequest_lego_provider"

# Under gevent (as gunicorn's gevent worker patches a process), a ticker greenlet counts how
# often it ran while another greenlet hashed a password. A hash on the event loop's own thread
# lets it run 0 times; a hash on a real thread lets it run throughout.
SCRIPT = textwrap.dedent(
    """
    from gevent import monkey
    monkey.patch_all()
    import sys
    import django
    from django.conf import settings
    settings.configure(PASSWORD_HASHERS=[sys.argv[1]])
    django.setup()
    import gevent
    from django.contrib.auth.hashers import get_hasher
    hasher = get_hasher()
    hashing = True
    ticks = 0
    def tick():
        global ticks
        while hashing:
            gevent.sleep(0.001)
            ticks += 1
    ticker = gevent.spawn(tick)
    gevent.sleep(0.01)
    before = ticks
    hasher.encode("a chosen password", "somesalt", 2_000_000)
    during = ticks - before
    hashing = False
    ticker.join()
    print(during)
    """
)


def ticks_while_hashing(hasher: str) -> int:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, hasher],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return int(result.stdout.strip())


def test_offloaded_hasher_lets_other_greenlets_run_while_it_hashes() -> None:
    assert ticks_while_hashing("api.hashers.OffloadedPBKDF2PasswordHasher") > 0


def test_djangos_own_hasher_blocks_the_event_loop_which_is_why_we_offload() -> None:
    """The control: without the offload nothing else runs during the hash."""
    assert ticks_while_hashing("django.contrib.auth.hashers.PBKDF2PasswordHasher") == 0


@pytest.mark.parametrize("password", ["correct horse battery staple", "é ü 日本"])
def test_offloaded_hashes_are_djangos_pbkdf2_hashes(password: str) -> None:
    """Same algorithm name and format: stored hashes stay valid both ways."""
    offloaded, django_own = OffloadedPBKDF2PasswordHasher(), PBKDF2PasswordHasher()
    encoded = offloaded.encode(password, "salt1234")
    assert encoded == django_own.encode(password, "salt1234")
    assert django_own.verify(password, encoded)
    assert offloaded.verify(password, django_own.encode(password, "othersalt"))
