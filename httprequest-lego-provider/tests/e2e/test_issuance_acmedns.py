"""Certificates issued by pebble to lego through the provider's acme-dns API, with BIND serving.

Debian builds its ``lego`` without the ``acme-dns`` provider (its client library, goacmedns, is
not packaged: see the "nodns list" in the package's changelog), so lego drives the ACME order and
its ``exec`` provider hands each challenge to a hook that does what lego's ``acme-dns`` provider
does, with ``pyacmedns``, the client library of acme-dns's author: read the account from the
``ACME_DNS_STORAGE_PATH`` file (keyed by domain, written beforehand from the output of
``create_acmedns_account``) and ``POST /update`` to ``ACME_DNS_API_BASE``; nothing on cleanup.

The provider writes through its rfc2136 backend to a real ``named``; pebble validates against
that server. Two styles: **direct** (the account writes ``_acme-challenge.www.example.com`` in
a zone the provider manages) and **delegated** (it writes ``<uuid>.acme-dns.example.net``;
``_acme-challenge.www.example.net``, a name the provider's key may not update, is a CNAME to
it, added once with the customer's own key).

lego's exec provider solves one challenge after the other, so the two values of an order are
validated one at a time; both stay published afterwards (acme-dns has no delete), which the
tests check. That two values at one name are served together is checked by the unit tests.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import dns.query
import dns.rcode
import dns.update
import pytest

from tests.dnsinfra import LOOPBACK, NamedServer, TsigKey, Zone, example_zones
from tests.e2e.acme import LEGO_TIMEOUT, LegoResult, Pebble, verify_certificate
from tests.processes import require_tool, running
from tests.provider_server import ProviderServer

pytestmark = pytest.mark.e2e

PROVIDER_KEY = TsigKey("lego-provider")
CUSTOMER_KEY = TsigKey("customer")
DELEGATION_ZONE = "acme-dns.example.net"
CUSTOMER_ZONE = "example.net"
DIRECT_NAME = "www.example.com"
DELEGATED_NAME = f"www.{CUSTOMER_ZONE}"
VALUE = "LHDhK3oGRvkiefQnx7OOczTY5Tic_xZ6HcMOc_gmtoM"

Storage = dict[str, dict[str, str]]


@pytest.fixture(scope="module")
def named(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NamedServer]:
    """The example zones, which the provider's key may update (TXT), and the customer's zone.

    In ``example.net`` the provider may write TXT records below the delegation name only; the
    customer's key writes the CNAME. BIND (``recursion no``) follows a CNAME within a zone
    only, so the delegation name lives in the customer's zone here, as a resolver would see
    it across zones.
    """
    provider_policy = (f"grant {PROVIDER_KEY.name} zonesub TXT",)
    customer_policy = (
        f"grant {PROVIDER_KEY.name} subdomain {DELEGATION_ZONE}. TXT",
        f"grant {CUSTOMER_KEY.name} zonesub CNAME",
    )
    zones = (*example_zones(provider_policy), Zone(CUSTOMER_ZONE, update_policy=customer_policy))
    directory = tmp_path_factory.mktemp("named")
    with running(NamedServer(directory, zones, keys=(PROVIDER_KEY, CUSTOMER_KEY))) as server:
        yield server


@pytest.fixture(scope="module")
def backend_env(named: NamedServer) -> dict[str, str]:
    """The rfc2136 backend and the delegation zone it serves."""
    return {
        "DJANGO_DNS_BACKEND": "rfc2136",
        "DJANGO_RFC2136_SERVER": named.address,
        "DJANGO_RFC2136_KEY_NAME": PROVIDER_KEY.name,
        "DJANGO_RFC2136_KEY_ALGORITHM": PROVIDER_KEY.algorithm,
        "DJANGO_RFC2136_KEY_SECRET": PROVIDER_KEY.secret,
        "DJANGO_ACMEDNS_ZONE": DELEGATION_ZONE,
    }


@pytest.fixture(scope="module")
def acme_user(provider: ProviderServer) -> str:
    provider.create_user("acme", domains=f"{DIRECT_NAME},{DELEGATED_NAME},example.com")
    return "acme"


def create_account(
    provider: ProviderServer, domain: str, *options: str, user: str = "acme"
) -> Storage:
    """Run the management command as an operator would; its output is lego's account file."""
    out = provider.manage(
        "create_acmedns_account", user, domain, "--server-url", provider.url, *options
    )
    storage: Storage = json.loads(out)
    return storage


def add_customer_cname(named: NamedServer, name: str, target: str) -> None:
    """What the customer does once: point the challenge name at the account's fulldomain."""
    update = dns.update.UpdateMessage(f"{CUSTOMER_ZONE}.", keyring=CUSTOMER_KEY.dnspython())
    update.add(f"{name}.", 60, "CNAME", f"{target}.")
    response = dns.query.tcp(update, LOOPBACK, port=named.port, timeout=5)
    assert response.rcode() == dns.rcode.NOERROR, dns.rcode.to_text(response.rcode())


# What lego's acme-dns provider does with (domain, token, keyAuth) on present: fetch the account
# by domain, derive the value as lego does, update; on cleanup nothing (acme-dns has no delete).
# RAW mode hands the hook the domain itself, as lego hands it to its acme-dns provider.
HOOK = """#!{python}
import base64
import hashlib
import os
import sys

from pyacmedns import Client, Storage

# RAW mode: <hook> present -- <domain> <token> <keyAuth>
action, domain, token, key_authorization = [arg for arg in sys.argv[1:] if arg != "--"]
if action == "present":
    account = Storage(os.environ["ACME_DNS_STORAGE_PATH"]).fetch(domain)
    if account is None:
        sys.exit(f"no acme-dns account for {{domain}} in the storage file")
    digest = hashlib.sha256(key_authorization.encode()).digest()
    value = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    Client(os.environ["ACME_DNS_API_BASE"]).update_txt_record(account, value)
"""


def run_lego_acmedns(
    pebble: Pebble, dns_resolver: str, path: Path, domains: Sequence[str], api_base: str,
    storage: Storage,
) -> LegoResult:  # fmt: skip
    """``lego run`` for ``domains``, each challenge answered through ``/update``."""
    path.mkdir(parents=True, exist_ok=True)
    storage_path = path / "acme-dns-accounts.json"
    storage_path.write_text(json.dumps(storage))
    storage_path.chmod(0o600)
    hook = path / "acme-dns-hook"
    hook.write_text(HOOK.format(python=sys.executable))
    hook.chmod(0o700)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(path),
        "LEGO_CA_CERTIFICATES": str(pebble.ca_file),
        "ACME_DNS_API_BASE": api_base,
        "ACME_DNS_STORAGE_PATH": str(storage_path),
        "EXEC_PATH": str(hook),
        "EXEC_MODE": "RAW",
        # The exec provider solves one challenge at a time; do not wait a minute between them.
        "EXEC_SEQUENCE_INTERVAL": "1",
        "EXEC_POLLING_INTERVAL": "1",
    }
    args = [
        require_tool("lego"), "--server", pebble.directory_url, "--accept-tos",
        "--email", "e2e@example.com", "--dns", "exec", "--dns.resolvers", dns_resolver,
        "--dns.disable-cp", "--path", str(path),
    ]  # fmt: skip
    for domain in domains:
        args += ["--domains", domain]
    args.append("run")
    try:
        result = subprocess.run(
            args, env=env, capture_output=True, text=True, timeout=LEGO_TIMEOUT, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"lego did not finish in {LEGO_TIMEOUT} s: {exc.output!r}") from exc
    return LegoResult(result.returncode, result.stdout + result.stderr, path)


@pytest.fixture(scope="module")
def accounts(
    provider: ProviderServer, named: NamedServer, acme_user: str
) -> Mapping[str, Storage]:
    direct = create_account(provider, DIRECT_NAME, "--allowfrom", "127.0.0.0/8")
    delegated = create_account(provider, DELEGATED_NAME, "--delegated")
    add_customer_cname(
        named, f"_acme-challenge.{DELEGATED_NAME}", delegated[DELEGATED_NAME]["fulldomain"]
    )
    return {"direct": direct, "delegated": delegated}


@pytest.fixture(scope="module")
def orders(
    pebble: Pebble,
    named: NamedServer,
    provider: ProviderServer,
    accounts: Mapping[str, Storage],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, Future[LegoResult]]]:
    """Both orders at once, each for a name and its wildcard (two values per account)."""
    directory = tmp_path_factory.mktemp("lego")
    names = {"direct": DIRECT_NAME, "delegated": DELEGATED_NAME}
    with ThreadPoolExecutor(max_workers=2) as pool:
        yield {
            style: pool.submit(
                run_lego_acmedns, pebble, named.address, directory / style,
                [name, f"*.{name}"], provider.url, accounts[style],
            )
            for style, name in names.items()
        }  # fmt: skip


@pytest.mark.parametrize("style", ["direct", "delegated"])
def test_lego_obtains_a_certificate_for_a_name_and_its_wildcard(
    orders: dict[str, Future[LegoResult]],
    accounts: Mapping[str, Storage],
    named: NamedServer,
    provider: ProviderServer,
    pebble_root: bytes,
    style: str,
) -> None:
    """Both values of the order sit at the account's fulldomain, as acme-dns keeps them."""
    name = DIRECT_NAME if style == "direct" else DELEGATED_NAME
    result = orders[style].result()
    verify_certificate(result, [name, f"*.{name}"], pebble_root, provider.log())
    fulldomain = accounts[style][name]["fulldomain"]
    assert len(named.txt(fulldomain)) == 2  # acme-dns has no cleanup: the two values stay
    assert named.txt(f"_acme-challenge.{name}") == named.txt(fulldomain)  # (via the CNAME)


def post_update(
    provider: ProviderServer, account: Mapping[str, str], subdomain: str
) -> tuple[int, object]:
    """POST /update as goacmedns does; return the status and the JSON body."""
    request = urllib.request.Request(  # noqa: S310 - a loopback http URL we built
        f"{provider.url}/update",
        data=json.dumps({"subdomain": subdomain, "txt": VALUE}).encode(),
        headers={
            "Content-Type": "application/json",
            "X-Api-User": account["username"],
            "X-Api-Key": account["password"],
        },
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_refused_updates_answer_acme_dns_401_and_write_nothing_to_the_zone(
    provider: ProviderServer, named: NamedServer, acme_user: str
) -> None:
    """A wrong key, another account's subdomain, an address outside allowfrom."""
    mine = create_account(provider, "example.com", "--delegated")["example.com"]
    theirs = create_account(provider, "example.com", "--delegated")["example.com"]
    elsewhere = create_account(provider, "example.com", "--allowfrom", "192.0.2.0/24")
    elsewhere_account = elsewhere["example.com"]
    wrong_key = {**mine, "password": "A" * 43}
    forbidden = (401, {"error": "forbidden"})
    assert post_update(provider, wrong_key, mine["subdomain"]) == forbidden
    assert post_update(provider, mine, theirs["subdomain"]) == forbidden
    assert post_update(provider, elsewhere_account, elsewhere_account["subdomain"]) == forbidden
    # acme-dns compares the subdomain as a string: the same UUID in upper case is not it.
    assert post_update(provider, mine, mine["subdomain"].upper()) == forbidden
    for account in (mine, theirs, elsewhere_account):
        assert named.txt(account["fulldomain"]) == set(), account["fulldomain"]
    # The same accounts do write when the request is right: the refusals were the checks.
    assert post_update(provider, mine, mine["subdomain"]) == (200, {"txt": VALUE})
    assert named.txt(mine["fulldomain"]) == {VALUE}


def admin_request(
    provider: ProviderServer, credentials: tuple[str, str], method: str, path: str
) -> tuple[int, object]:
    """A staff request to the admin API with basic auth; the status and the JSON body."""
    token = base64.b64encode(":".join(credentials).encode()).decode()
    request = urllib.request.Request(  # noqa: S310 - a loopback http URL we built
        f"{provider.url}{path}", headers={"Authorization": f"Basic {token}"}, method=method
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
            body = response.read()
            return response.status, json.loads(body) if body else None
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_deleting_a_user_withdraws_their_values_from_the_zone(
    provider: ProviderServer, named: NamedServer
) -> None:
    """``DELETE /api/v1/users/<id>/``: the cascade to the accounts withdraws from BIND first."""
    provider.create_user("leaver", domains="example.com")
    accounts = [
        create_account(provider, "example.com", *style, user="leaver")["example.com"]
        for style in ((), ("--delegated",))
    ]
    for account in accounts:
        assert post_update(provider, account, account["subdomain"]) == (200, {"txt": VALUE})
        assert named.txt(account["fulldomain"]) == {VALUE}
    out = provider.manage("create_superuser", "root-e2e")
    admin = ("root-e2e", next(x for x in out.splitlines() if x.startswith("password: "))[10:])
    status, users = admin_request(provider, admin, "GET", "/api/v1/users/?username=leaver")
    assert status == 200
    assert isinstance(users, list)
    assert admin_request(provider, admin, "DELETE", f"/api/v1/users/{users[0]['id']}/")[0] == 204
    for account in accounts:
        assert named.txt(account["fulldomain"]) == set(), account["fulldomain"]
        assert post_update(provider, account, account["subdomain"])[0] == 401


def test_revoking_the_grant_withdraws_the_values_from_the_zone(
    provider: ProviderServer, named: NamedServer
) -> None:
    """``revoke_domains``, as an operator runs it: nothing would withdraw them afterwards."""
    provider.create_user("revoked", domains="example.com")
    account = create_account(provider, "example.com", "--delegated", user="revoked")
    entry = account["example.com"]
    assert post_update(provider, entry, entry["subdomain"]) == (200, {"txt": VALUE})
    assert named.txt(entry["fulldomain"]) == {VALUE}
    provider.manage("revoke_domains", "revoked", "--domains", "example.com")
    assert named.txt(entry["fulldomain"]) == set()
    assert post_update(provider, entry, entry["subdomain"])[0] == 401


def test_health_answers_200(provider: ProviderServer) -> None:
    with urllib.request.urlopen(f"{provider.url}/health", timeout=10) as response:  # noqa: S310
        assert (response.status, response.read()) == (200, b"")
