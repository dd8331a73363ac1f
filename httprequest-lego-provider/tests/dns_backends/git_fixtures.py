"""Real git repositories for the git backend's tests, made and read with the git command line.

Using the git CLI (not pygit2) to seed and inspect the remote keeps the tests independent of
the code under test. ``present_in_process`` is the entry point of spawned worker processes.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import dns.name
import dns.rdatatype
import dns.zone
from dns_backends.git import GitBackend, from_env

from tests.dns_backends.contract import token
from tests.sshd import SshServer

# Zone files as a DNS team writes them: comments, directives, tabs, trailing blanks, CRLF.
SEED_ZONES: dict[str, bytes] = {
    "example.com.domain": (
        b"; example.com - maintained by the DNS team, do not reorder\n"
        b"$TTL 3600\n"
        b"@\tIN\tSOA\tns1.example.com. hostmaster.example.com. (\n"
        b"\t\t2024010101 ; serial\n"
        b"\t\t7200 3600 1209600 3600 )\n"
        b"\tIN\tNS\tns1.example.com.\n"
        b"www    IN A 192.0.2.10   \n"
        b";   keep this comment exactly as it is  \n"
        b'_acme-challenge.legacy 600 IN TXT "dns-team-own-value"\n'
    ),
    "sub.example.com.domain": b"; delegated subzone\n@ 3600 IN NS ns1.sub.example.com.\n",
    "example.co.uk.domain": b"; example.co.uk\r\nwww IN CNAME example.co.uk.\r\n",
    "README.md": b"Zone files of the DNS team.\n",
}

GIT_IDENTITY = ["-c", "user.name=DNS team", "-c", "user.email=dns@example.com"]
# The record the DNS team adds in ``push_behind_the_back`` in these tests.
TEAM_RECORD = b"new IN A 192.0.2.7\n"


def git(*args: str | Path, cwd: Path | None = None) -> bytes:
    """Run the git CLI and return its output (raise with its stderr on failure)."""
    result = subprocess.run(
        ["git", *GIT_IDENTITY, *map(str, args)], cwd=cwd, capture_output=True, check=False
    )
    if result.returncode != 0:
        raise AssertionError(f"git {args} failed: {result.stderr.decode()}")
    return result.stdout


def make_remote(path: Path, files: Mapping[str, bytes] = SEED_ZONES) -> Path:
    """Create a bare repository at ``path`` whose ``main`` holds ``files`` in one commit."""
    git("init", "-q", "--bare", "-b", "main", path)
    seed = path.with_name(f"{path.name}-seed")
    git("init", "-q", "-b", "main", seed)
    for name, content in files.items():
        (seed / name).parent.mkdir(parents=True, exist_ok=True)
        (seed / name).write_bytes(content)
    git("add", "-A", cwd=seed)
    git("commit", "-q", "-m", "DNS team: initial zones", cwd=seed)
    git("push", "-q", path, "main", cwd=seed)
    return path


def remote_file(remote: Path, name: str, branch: str = "main") -> bytes:
    """Return a file's bytes at the tip of the remote's branch."""
    return git("--git-dir", remote, "show", f"{branch}:{name}")


def zone_file_txt(remote: Path, zone: str, fqdn: str) -> set[str]:
    """Return the TXT values ``<zone>.domain`` at the remote's tip holds at ``fqdn``.

    The file is read with the git CLI and parsed by dnspython's zone parser, as BIND would load
    it (with a default TTL, which the deployment's header provides), not by the backend.
    """
    text = "$TTL 3600\n" + remote_file(remote, f"{zone}.domain").decode()
    parsed = dns.zone.from_text(text, origin=f"{zone}.", check_origin=False, relativize=False)
    rdataset = parsed.get_rdataset(dns.name.from_text(f"{fqdn}."), dns.rdatatype.TXT)
    if rdataset is None:
        return set()
    return {b"".join(rdata.strings).decode() for rdata in rdataset}


def commit_messages(remote: Path, branch: str = "main") -> list[str]:
    """Return the commit messages of the branch, newest first."""
    log = git("--git-dir", remote, "log", "--format=%B%x00", branch).decode()
    return [message.strip() for message in log.split("\x00") if message.strip()]


def push_behind_the_back(remote: Path, workspace: Path, name: str, line: bytes) -> None:
    """Append ``line`` to file ``name`` from another clone, as the DNS team would."""
    git("clone", "-q", remote, workspace)
    with (workspace / name).open("ab") as handle:
        handle.write(line)
    git("commit", "-q", "-am", "DNS team: add a record", cwd=workspace)
    git("push", "-q", "origin", "main", cwd=workspace)


def present_around_a_team_push(backend: GitBackend, remote: Path, workspace: Path) -> bytes:
    """Present ``token("a")``, let the DNS team push a record, present ``token("b")``.

    Returns the zone file at the remote's tip afterwards, for the test to check what was kept.
    """
    backend.present("_acme-challenge.a.example.com", token("a"))
    push_behind_the_back(remote, workspace, "example.com.domain", TEAM_RECORD)
    backend.present("_acme-challenge.b.example.com", token("b"))
    return remote_file(remote, "example.com.domain")


def local_environ(remote: Path, workdir: Path, url: str | None = None) -> dict[str, str]:
    """The environment of a backend on a bare repository of this machine (``main`` by default)."""
    return {"DJANGO_GIT_REPO": url or f"file://{remote}@main", "DJANGO_GIT_WORKDIR": str(workdir)}


def ssh_environ(sshd: SshServer, remote: Path, workdir: Path, **overrides: str) -> dict[str, str]:
    """The environment of a backend on ``remote`` through ``sshd``, with ``overrides`` applied."""
    environ = {
        "DJANGO_GIT_REPO": sshd.url(remote),
        "DJANGO_GIT_SSH_KEY": sshd.client_key,
        "DJANGO_GIT_KNOWN_HOSTS": sshd.known_hosts,
        "DJANGO_GIT_WORKDIR": str(workdir),
    }
    environ.update(overrides)
    return environ


def present_in_process(environ: dict[str, str], names: list[str]) -> list[str]:
    """Present ``token(name)`` at each name from threads of one fresh backend.

    Runs in a spawned process; returns the errors (empty on success) as text, because
    exceptions with custom constructors do not travel back through pickling.
    """
    backend = from_env(environ)
    try:
        with ThreadPoolExecutor(max_workers=len(names)) as pool:
            futures = [pool.submit(backend.present, name, token(name)) for name in names]
        return [repr(future.exception()) for future in futures if future.exception()]
    finally:
        backend.close()
