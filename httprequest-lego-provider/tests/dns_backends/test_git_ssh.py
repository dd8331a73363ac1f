"""The git backend over SSH to a real local sshd, with strict host key checking.

The contract runs over the default transport (git and one reused OpenSSH connection); the
failure mappings run over both transports, which must report them the same way.
"""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path

import pytest
from dns_backends import BackendConfigError, DnsBackendError, DnsBackendUnavailableError, events
from dns_backends.git import GitBackend, from_env

from tests.dns_backends.contract import DnsBackendContract, ZoneTxt, token
from tests.dns_backends.git_fixtures import (
    SEED_ZONES,
    TEAM_RECORD,
    commit_messages,
    git,
    present_around_a_team_push,
    remote_file,
    ssh_environ,
    zone_file_txt,
)
from tests.sshd import SshServer

BackendOpener = Callable[..., GitBackend]


def unused_port() -> int:
    """Return a local port that nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture(params=["openssh", "libgit2"])
def transport(request: pytest.FixtureRequest) -> str:
    """``DJANGO_GIT_SSH_TRANSPORT`` for the tests that must behave alike with both."""
    value: str = request.param
    return value


@pytest.fixture
def open_backend(sshd: SshServer, remote: Path, tmp_path: Path) -> Iterator[BackendOpener]:
    """Open backends on ``remote`` over ``sshd``; each is closed when the test ends.

    The opener takes the work directory's name under ``tmp_path`` (``work`` by default) and
    environment overrides.
    """
    opened: list[GitBackend] = []

    def open_backend(workdir: str = "work", **overrides: str) -> GitBackend:
        backend = from_env(ssh_environ(sshd, remote, tmp_path / workdir, **overrides))
        opened.append(backend)
        return backend

    yield open_backend
    for backend in opened:
        backend.close()


@pytest.fixture
def backend(open_backend: BackendOpener) -> GitBackend:
    return open_backend()


@pytest.fixture
def zone_txt(remote: Path) -> ZoneTxt:
    """Read a zone's records from its file in the remote (the contract's independent view)."""
    return lambda zone, fqdn: zone_file_txt(remote, zone, fqdn)


class TestGitBackendOverSsh(DnsBackendContract):
    """The shared contract, over ``git+ssh://root@127.0.0.1:<port>/<path>@main``."""


def test_present_over_ssh_writes_the_reference_line_and_commit(
    backend: GitBackend, remote: Path
) -> None:
    name = "_acme-challenge.www.example.com"
    backend.present(name, token("a"))
    assert remote_file(remote, "example.com.domain") == (
        SEED_ZONES["example.com.domain"]
        + f'_acme-challenge.www 600 IN TXT "{token("a")}"\n'.encode()
    )
    assert commit_messages(remote)[0] == f"Add {name} record"


def test_a_push_behind_the_clones_back_is_fetched_and_the_change_re_applied(
    open_backend: BackendOpener, remote: Path, tmp_path: Path, transport: str
) -> None:
    """A stale persistent clone has its push rejected, fetches, re-applies and pushes again.

    Both the other writer's change and ours are kept, ours on top.
    """
    backend = open_backend(DJANGO_GIT_SSH_TRANSPORT=transport)
    zone = present_around_a_team_push(backend, remote, tmp_path / "team")
    assert TEAM_RECORD in zone
    assert token("a").encode() in zone
    assert token("b").encode() in zone
    assert commit_messages(remote)[:3] == [
        "Add _acme-challenge.b.example.com record",
        "DNS team: add a record",
        "Add _acme-challenge.a.example.com record",
    ]


def test_a_lost_push_race_is_reported_as_a_conflict_and_a_retry(
    backend: GitBackend, remote: Path, tmp_path: Path
) -> None:
    """The clone is stale after the DNS team's push: the first push loses, the retry lands."""
    seen: list[tuple[str, str]] = []

    def listen(backend_name: str, event: str) -> None:
        seen.append((backend_name, event))

    events.subscribe(listen)
    try:
        present_around_a_team_push(backend, remote, tmp_path / "team")
    finally:
        events.unsubscribe(listen)
    assert seen == [("git", events.PUSH_CONFLICT), ("git", events.PUSH_RETRY)]


def test_a_push_refused_by_a_hook_raises_with_its_reason_and_publishes_nothing(
    open_backend: BackendOpener, remote: Path, transport: str
) -> None:
    hook = remote / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'zone freeze in effect' >&2\nexit 1\n")
    hook.chmod(0o755)
    backend = open_backend(DJANGO_GIT_SSH_TRANSPORT=transport)
    with pytest.raises(DnsBackendError, match="refused the push") as raised:
        backend.present("_acme-challenge.www.example.com", token("a"))
    assert "zone freeze in effect" in raised.value.public_message
    assert not isinstance(raised.value, DnsBackendUnavailableError)
    assert remote_file(remote, "example.com.domain") == SEED_ZONES["example.com.domain"]
    assert backend.values("_acme-challenge.www.example.com") == set()


def test_a_host_key_that_does_not_match_known_hosts_is_refused(
    open_backend: BackendOpener, sshd: SshServer, remote: Path, transport: str
) -> None:
    _, impostor_public = sshd.keygen(f"impostor-{transport}")
    backend = open_backend(
        DJANGO_GIT_KNOWN_HOSTS=sshd.host_line(impostor_public), DJANGO_GIT_SSH_TRANSPORT=transport
    )
    with pytest.raises(DnsBackendError, match="host key is not in known_hosts"):
        backend.present("_acme-challenge.www.example.com", token("a"))
    assert remote_file(remote, "example.com.domain") == SEED_ZONES["example.com.domain"]


def test_known_hosts_without_this_host_is_refused(
    open_backend: BackendOpener, sshd: SshServer, transport: str
) -> None:
    other_host = sshd.known_hosts.replace("[127.0.0.1]", "[192.0.2.1]")
    backend = open_backend(DJANGO_GIT_KNOWN_HOSTS=other_host, DJANGO_GIT_SSH_TRANSPORT=transport)
    with pytest.raises(DnsBackendError, match="host key"):
        backend.values("_acme-challenge.www.example.com")


def test_hashed_known_hosts_from_ssh_keyscan_are_accepted(
    sshd: SshServer, remote: Path, tmp_path: Path
) -> None:
    """The charm obtains known_hosts with ``ssh-keyscan -H``; hashed names must work."""
    scanned = subprocess.run(
        ["ssh-keyscan", "-H", "-t", "ed25519", "-p", str(sshd.port), "127.0.0.1"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert scanned.startswith("|1|")
    known_hosts_file = tmp_path / "known_hosts"
    known_hosts_file.write_text(scanned)
    environ = ssh_environ(sshd, remote, tmp_path / "work")
    del environ["DJANGO_GIT_KNOWN_HOSTS"]
    environ["DJANGO_GIT_KNOWN_HOSTS_FILE"] = str(known_hosts_file)
    with closing(from_env(environ)) as backend:
        backend.present("_acme-challenge.www.example.com", token("a"))
    assert token("a").encode() in remote_file(remote, "example.com.domain")


def test_a_good_and_a_bad_known_hosts_in_one_process_do_not_mix(
    open_backend: BackendOpener, sshd: SshServer
) -> None:
    """libgit2's known_hosts location is process-wide; each backend must still use its own."""
    _, impostor_public = sshd.keygen("impostor2")
    good = open_backend("good")
    bad = open_backend("bad", DJANGO_GIT_KNOWN_HOSTS=sshd.host_line(impostor_public))
    good.present("_acme-challenge.a.example.com", token("a"))
    with pytest.raises(DnsBackendError, match="host key"):
        bad.present("_acme-challenge.b.example.com", token("b"))
    good.present("_acme-challenge.c.example.com", token("c"))


def test_a_key_the_server_does_not_accept_is_a_clear_error_without_the_key(
    open_backend: BackendOpener, sshd: SshServer, transport: str
) -> None:
    stranger_private, _ = sshd.keygen(f"stranger-{transport}")
    backend = open_backend(DJANGO_GIT_SSH_KEY=stranger_private, DJANGO_GIT_SSH_TRANSPORT=transport)
    with pytest.raises(DnsBackendError, match="refused the SSH key") as raised:
        backend.present("_acme-challenge.www.example.com", token("a"))
    secret_line = stranger_private.splitlines()[1]
    assert secret_line not in str(raised.value)
    assert secret_line not in repr(open_backend("w2").__dict__)


def test_an_unreachable_remote_is_unavailable(
    open_backend: BackendOpener, remote: Path, transport: str
) -> None:
    url = f"git+ssh://root@127.0.0.1:{unused_port()}{remote}@main"
    backend = open_backend(DJANGO_GIT_REPO=url, DJANGO_GIT_SSH_TRANSPORT=transport)
    with pytest.raises(DnsBackendUnavailableError, match="unreachable"):
        backend.present("_acme-challenge.www.example.com", token("a"))


def test_ssh_remote_without_known_hosts_is_a_configuration_error(
    sshd: SshServer, remote: Path, tmp_path: Path
) -> None:
    environ = ssh_environ(sshd, remote, tmp_path / "work")
    del environ["DJANGO_GIT_KNOWN_HOSTS"]
    with pytest.raises(BackendConfigError, match="DJANGO_GIT_KNOWN_HOSTS"):
        from_env(environ)


def test_the_clone_is_kept_between_requests_and_is_shallow(
    backend: GitBackend, tmp_path: Path
) -> None:
    backend.present("_acme-challenge.a.example.com", token("a"))
    clones = list((tmp_path / "work").glob("clone-*.git"))
    assert len(clones) == 1
    assert (clones[0] / "shallow").exists()
    backend.present("_acme-challenge.b.example.com", token("b"))
    assert list((tmp_path / "work").glob("clone-*.git")) == clones


def test_a_missing_branch_is_a_backend_error_naming_it(
    open_backend: BackendOpener, sshd: SshServer, remote: Path, transport: str
) -> None:
    backend = open_backend(
        DJANGO_GIT_REPO=sshd.url(remote, "nope"), DJANGO_GIT_SSH_TRANSPORT=transport
    )
    with pytest.raises(DnsBackendError, match="no branch 'nope'") as raised:
        backend.present("_acme-challenge.www.example.com", token("a"))
    assert not isinstance(raised.value, DnsBackendUnavailableError)


def test_a_missing_repository_is_a_backend_error(
    open_backend: BackendOpener, sshd: SshServer, tmp_path: Path
) -> None:
    backend = open_backend(DJANGO_GIT_REPO=sshd.url(tmp_path / "missing.git"))
    with pytest.raises(DnsBackendError, match="no git repository at") as raised:
        backend.present("_acme-challenge.www.example.com", token("a"))
    assert not isinstance(raised.value, DnsBackendUnavailableError)


def test_without_a_branch_the_remote_head_branch_is_written(
    open_backend: BackendOpener, sshd: SshServer, remote: Path, transport: str
) -> None:
    git("--git-dir", remote, "branch", "dns", "main")
    git("--git-dir", remote, "symbolic-ref", "HEAD", "refs/heads/dns")
    backend = open_backend(
        DJANGO_GIT_REPO=sshd.url(remote, branch=None), DJANGO_GIT_SSH_TRANSPORT=transport
    )
    backend.present("_acme-challenge.www.example.com", token("a"))
    assert token("a").encode() in remote_file(remote, "example.com.domain", branch="dns")
    assert remote_file(remote, "example.com.domain") == SEED_ZONES["example.com.domain"]
