"""The git backend against a real bare repository on this machine (``file://`` and plain path)."""

from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path

import pytest
from api.errors import backend_status
from dns_backends import DnsBackendError, InvalidRecordError, ZoneNotFoundError
from dns_backends.git import GitBackend, from_env

from tests.dns_backends.contract import DnsBackendContract, ZoneTxt, token
from tests.dns_backends.git_fixtures import (
    SEED_ZONES,
    TEAM_RECORD,
    commit_messages,
    git,
    local_environ,
    make_remote,
    present_around_a_team_push,
    remote_file,
    zone_file_txt,
)


def local_backend(remote: Path, workdir: Path, url: str | None = None) -> GitBackend:
    return from_env(local_environ(remote, workdir, url))


@pytest.fixture
def backend(remote: Path, tmp_path: Path) -> Iterator[GitBackend]:
    backend = local_backend(remote, tmp_path / "work")
    yield backend
    backend.close()


@pytest.fixture
def zone_txt(remote: Path) -> ZoneTxt:
    """Read a zone's records from its file in the remote (the contract's independent view)."""
    return lambda zone, fqdn: zone_file_txt(remote, zone, fqdn)


class TestGitBackend(DnsBackendContract):
    """The shared contract, over a ``file://`` remote seeded with the contract's zones."""


def test_present_appends_the_reference_line_to_the_zone_file(
    backend: GitBackend, remote: Path
) -> None:
    backend.present("_acme-challenge.www.example.com", token("a"))
    assert remote_file(remote, "example.com.domain") == (
        SEED_ZONES["example.com.domain"]
        + f'_acme-challenge.www 600 IN TXT "{token("a")}"\n'.encode()
    )


def test_present_at_a_subzone_name_writes_the_subzone_file_only(
    backend: GitBackend, remote: Path
) -> None:
    backend.present("_acme-challenge.host.sub.example.com", token("s"))
    assert remote_file(remote, "sub.example.com.domain").endswith(
        f'_acme-challenge.host 600 IN TXT "{token("s")}"\n'.encode()
    )
    assert remote_file(remote, "example.com.domain") == SEED_ZONES["example.com.domain"]


def replace_zone_file(
    remote: Path, workspace: Path, name: str, make: Callable[[Path], object]
) -> None:
    """As the DNS team might: replace file ``name`` by what ``make`` creates there, and push."""
    git("clone", "-q", remote, workspace)
    (workspace / name).unlink()
    make(workspace / name)
    git("add", "-A", cwd=workspace)
    git("commit", "-q", "-m", "DNS team: restructure", cwd=workspace)
    git("push", "-q", "origin", "main", cwd=workspace)


def _directory(path: Path) -> None:
    path.mkdir()
    (path / "zone").write_text("; moved\n")


@pytest.mark.parametrize(
    ("make", "kind"),
    [
        (lambda path: path.symlink_to("example.com.domain"), "a symbolic link"),
        (lambda path: path.symlink_to("/etc/bind/zones/sub.example.com"), "a symbolic link"),
        (_directory, "a directory"),
    ],
    ids=["link-to-the-parent-zone", "link-outside", "directory"],
)
def test_a_zone_file_that_is_not_a_regular_file_is_refused_naming_it(
    backend: GitBackend,
    remote: Path,
    tmp_path: Path,
    make: Callable[[Path], object],
    kind: str,
) -> None:
    """Never written through (the link's text replaced) nor skipped for the parent zone."""
    replace_zone_file(remote, tmp_path / "team", "sub.example.com.domain", make)
    tip = git("--git-dir", remote, "rev-parse", "main")
    message = rf"the zone file sub\.example\.com\.domain in the git repository is {kind}"
    for call in (backend.present, backend.cleanup):
        with pytest.raises(DnsBackendError, match=message) as raised:
            call("_acme-challenge.host.sub.example.com", token("s"))
        assert backend_status(raised.value) == 502
    assert git("--git-dir", remote, "rev-parse", "main") == tip
    backend.present("_acme-challenge.www.example.com", token("w"))  # other zones still work
    assert remote_file(remote, "example.com.domain").endswith(
        f'_acme-challenge.www 600 IN TXT "{token("w")}"\n'.encode()
    )


def test_a_batch_with_a_refused_zone_file_still_publishes_its_other_changes(
    backend: GitBackend, remote: Path, tmp_path: Path
) -> None:
    replace_zone_file(
        remote, tmp_path / "team", "sub.example.com.domain", lambda p: p.symlink_to("x")
    )
    errors: dict[str, BaseException | None] = {}

    def present(name: str) -> None:
        try:
            backend.present(name, token(name))
            errors[name] = None
        except DnsBackendError as exc:
            errors[name] = exc

    names = ["_acme-challenge.host.sub.example.com"] + [
        f"_acme-challenge.h{i}.example.com" for i in range(6)
    ]
    threads = [threading.Thread(target=present, args=(name,)) for name in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert isinstance(errors.pop(names[0]), DnsBackendError)
    assert errors == dict.fromkeys(names[1:])
    zone = remote_file(remote, "example.com.domain")
    for name in names[1:]:
        assert token(name).encode() in zone


def test_cleanup_restores_every_zone_file_byte_for_byte(backend: GitBackend, remote: Path) -> None:
    """Comments, tabs, trailing blanks and CRLF line ends of the DNS team all survive."""
    names = [
        "_acme-challenge.example.com",
        "_acme-challenge.www.example.co.uk",
        "_acme-challenge.sub.example.com",
    ]
    for name in names:
        backend.present(name, token(name))
        backend.present(name, token(f"{name}-wildcard"))
    for name in names:
        backend.cleanup(name, token(name))
        backend.cleanup(name, token(f"{name}-wildcard"))
    for file_name, content in SEED_ZONES.items():
        assert remote_file(remote, file_name) == content


def test_each_change_is_one_commit_with_a_message_naming_the_record(
    backend: GitBackend, remote: Path
) -> None:
    name = "_acme-challenge.www.example.com"
    backend.present(name, token("a"))
    backend.cleanup(name, token("a"))
    assert commit_messages(remote) == [
        f"Remove {name} record",
        f"Add {name} record",
        "DNS team: initial zones",
    ]


def test_no_op_changes_make_no_commit(backend: GitBackend, remote: Path) -> None:
    name = "_acme-challenge.www.example.com"
    backend.present(name, token("a"))
    backend.present(name, token("a"))
    backend.cleanup(name, token("never-presented"))
    assert len(commit_messages(remote)) == 2


def test_cleanup_leaves_the_dns_teams_own_record_at_the_same_name(
    backend: GitBackend, remote: Path
) -> None:
    name = "_acme-challenge.legacy.example.com"
    backend.present(name, token("ours"))
    assert backend.values(name) == {"dns-team-own-value", token("ours")}
    backend.cleanup(name, token("ours"))
    assert backend.values(name) == {"dns-team-own-value"}
    assert remote_file(remote, "example.com.domain") == SEED_ZONES["example.com.domain"]


def test_missing_zone_file_raises_zone_not_found_and_commits_nothing(
    backend: GitBackend, remote: Path
) -> None:
    with pytest.raises(ZoneNotFoundError, match="is this site configured for DNS"):
        backend.present("_acme-challenge.www.example.net", token("x"))
    assert len(commit_messages(remote)) == 1


def test_a_file_that_is_not_a_zone_file_is_not_a_zone(backend: GitBackend) -> None:
    """``README.md`` at the root does not make ``md`` or ``README.md`` a zone."""
    with pytest.raises(ZoneNotFoundError):
        backend.present("_acme-challenge.readme.md", token("x"))


@pytest.mark.parametrize(
    ("fqdn", "value"),
    [
        ("_acme-challenge.example.com", 'x" \n@ IN NS evil.example.org.\n; "' + "a" * 10),
        ("_acme-challenge.example.com", "a" * 42),
        ("_acme-challenge.example.com", "a" * 44),
        ("_acme-challenge.example.com", "a" * 10240),
        ("_acme-challenge.example.com", "a" * 42 + "="),
        ("_acme-challenge.exa mple.com", token("x")),
        ("_acme-challenge.example.com\n@ IN NS evil.", token("x")),
        ("_acme-challenge..example.com", token("x")),
        ('_acme-challenge".example.com', token("x")),
        ("example", token("x")),
    ],
)
def test_invalid_names_and_values_are_refused_before_any_write(
    backend: GitBackend, remote: Path, fqdn: str, value: str
) -> None:
    """Refused as the request's fault (a 400), never a crash (a 500)."""
    with pytest.raises(InvalidRecordError, match="refusing"):
        backend.present(fqdn, value)
    with pytest.raises(InvalidRecordError, match="refusing"):
        backend.cleanup(fqdn, value)
    assert len(commit_messages(remote)) == 1


def test_names_are_compared_case_insensitively_and_without_the_trailing_dot(
    backend: GitBackend,
) -> None:
    backend.present("_ACME-Challenge.WWW.Example.COM.", token("a"))
    assert backend.values("_acme-challenge.www.example.com") == {token("a")}


def test_a_commit_pushed_by_someone_else_is_kept(
    backend: GitBackend, remote: Path, tmp_path: Path
) -> None:
    zone = present_around_a_team_push(backend, remote, tmp_path / "team")
    assert TEAM_RECORD in zone
    assert token("a").encode() in zone
    assert token("b").encode() in zone


def test_plain_path_remote_uses_the_remote_head_branch(remote: Path, tmp_path: Path) -> None:
    with closing(local_backend(remote, tmp_path / "work", url=str(remote))) as backend:
        backend.present("_acme-challenge.example.com", token("a"))
    assert token("a").encode() in remote_file(remote, "example.com.domain")


def test_configured_branch_is_the_one_written(remote: Path, tmp_path: Path) -> None:
    git("--git-dir", remote, "branch", "dns", "main")
    with closing(local_backend(remote, tmp_path / "work", url=f"{remote}@dns")) as backend:
        backend.present("_acme-challenge.example.com", token("a"))
    assert token("a").encode() in remote_file(remote, "example.com.domain", branch="dns")
    assert remote_file(remote, "example.com.domain") == SEED_ZONES["example.com.domain"]


def test_missing_branch_is_a_backend_error(remote: Path, tmp_path: Path) -> None:
    with (
        closing(local_backend(remote, tmp_path / "work", url=f"{remote}@nope")) as backend,
        pytest.raises(DnsBackendError, match="no branch 'nope'"),
    ):
        backend.present("_acme-challenge.example.com", token("a"))


def test_removed_remote_is_a_backend_error_and_nothing_claims_success(
    backend: GitBackend, remote: Path
) -> None:
    backend.present("_acme-challenge.a.example.com", token("a"))
    git("--git-dir", remote, "config", "core.bare", "true")  # still a repository here
    renamed = remote.rename(remote.with_name("moved.git"))
    with pytest.raises(DnsBackendError, match="disappeared"):
        backend.present("_acme-challenge.b.example.com", token("b"))
    assert token("b").encode() not in remote_file(renamed, "example.com.domain")


def test_locked_remote_branch_is_a_backend_error_and_nothing_claims_success(
    backend: GitBackend, remote: Path
) -> None:
    """A stale ``main.lock`` (a crashed git) makes git refuse the update; so do we."""
    (remote / "refs" / "heads" / "main.lock").write_text("")
    with pytest.raises(DnsBackendError, match="refused"):
        backend.present("_acme-challenge.a.example.com", token("a"))
    assert remote_file(remote, "example.com.domain") == SEED_ZONES["example.com.domain"]


def test_a_branch_lock_held_briefly_by_another_writer_is_waited_for(
    backend: GitBackend, remote: Path
) -> None:
    """Another host's git holds ``main.lock`` for a moment while it updates: we retry."""
    backend.present("_acme-challenge.warm.example.com", token("warm"))
    lock = remote / "refs" / "heads" / "main.lock"
    lock.write_text("")
    releaser = threading.Timer(0.2, lock.unlink)
    releaser.start()
    try:
        backend.present("_acme-challenge.a.example.com", token("a"))
    finally:
        releaser.join()
    assert f'_acme-challenge.a 600 IN TXT "{token("a")}"'.encode() in remote_file(
        remote, "example.com.domain"
    )


def test_a_non_bare_remote_is_refused(tmp_path: Path) -> None:
    git("init", "-q", "-b", "main", tmp_path / "checkout")
    with (
        closing(local_backend(tmp_path / "checkout", tmp_path / "work")) as backend,
        pytest.raises(DnsBackendError, match="must be bare"),
    ):
        backend.present("_acme-challenge.example.com", token("a"))


def test_values_outside_every_zone_are_empty(backend: GitBackend) -> None:
    assert backend.values("_acme-challenge.example.org") == set()


def present_in_forked_child(backend: GitBackend, name: str) -> None:
    """Run in a child forked from a process that already used ``backend`` (gunicorn preload)."""
    backend.present(name, token(name))


def test_a_backend_used_before_fork_works_in_the_forked_children(
    backend: GitBackend, remote: Path
) -> None:
    """Workers forked by gunicorn --preload may inherit a backend the master already used.

    Each child must open its own repository and lock file instead of sharing the parent's.
    """
    backend.present("_acme-challenge.parent.example.com", token("parent"))
    context = multiprocessing.get_context("fork")
    names = [f"_acme-challenge.child{i}.example.com" for i in range(3)]
    children = [
        context.Process(target=present_in_forked_child, args=(backend, name)) for name in names
    ]
    for child in children:
        child.start()
    for child in children:
        child.join(timeout=60)
    assert [child.exitcode for child in children] == [0, 0, 0]
    backend.present("_acme-challenge.parent2.example.com", token("parent2"))
    zone = remote_file(remote, "example.com.domain")
    assert all(token(name).encode() in zone for name in [*names, "parent", "parent2"])


def test_an_unusable_workdir_is_a_backend_error_naming_the_variable(
    remote: Path, tmp_path: Path
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    backend = local_backend(remote, blocker / "work")
    with pytest.raises(DnsBackendError, match="DJANGO_GIT_WORKDIR"):
        backend.present("_acme-challenge.example.com", token("a"))


def test_a_directory_named_like_a_zone_file_is_refused_not_taken_for_a_zone(
    tmp_path: Path,
) -> None:
    """Not skipped either: skipping a subzone's entry would put its records in the parent."""
    remote = make_remote(tmp_path / "odd.git", {"example.org.domain/README": b"not a zone\n"})
    with (
        closing(local_backend(remote, tmp_path / "work")) as backend,
        pytest.raises(DnsBackendError, match=r"example\.org\.domain .* is a directory"),
    ):
        backend.present("_acme-challenge.example.org", token("a"))


def test_replace_is_one_commit_holding_the_addition_and_the_removals(
    backend: GitBackend, remote: Path
) -> None:
    """One push for an acme-dns update however many old values it withdraws."""
    name = "_acme-challenge.www.example.com"
    backend.present(name, token("old1"))
    backend.present(name, token("old2"))
    before = len(commit_messages(remote))
    backend.replace(name, token("new"), [token("old1"), token("old2")])
    messages = commit_messages(remote)
    assert len(messages) == before + 1
    assert messages[0].splitlines().count(f"Remove {name} record") == 2
    assert f"Add {name} record" in messages[0]
    assert zone_file_txt(remote, "example.com", name) == {token("new")}
