"""The git backend under gevent (gunicorn's gevent worker) leaves the event loop to others.

Each test runs the backend in a fresh Python process that gevent monkey-patched first, as
gunicorn's gevent worker patches its process, against real bare repositories on this machine
(a ``post-receive`` hook makes a local one go through ``git receive-pack``) and the real sshd of
``tests/sshd.py`` with both SSH transports. What they check:

- while a push waits for the remote's hook, another greenlet keeps running: the hook waits for
  that greenlet to release it (giving up, and saying so, after a few seconds);
- no copy of the worker is forked for the ``git`` and ``ssh`` commands (``posix_spawn`` instead
  of gevent's fork in Python, the cost of which grows with the worker's memory);
- the request's deadline still stops a held push, its hook included, and the retry publishes
  the change once; concurrent greenlets' changes are all published.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from tests.dns_backends.contract import token
from tests.dns_backends.git_fixtures import (
    commit_messages,
    git,
    local_environ,
    remote_file,
    ssh_environ,
    zone_file_txt,
)
from tests.dns_backends.test_git_deadline import HeldHook, wait_for_receive_packs_to_end
from tests.sshd import SshServer

PROJECT = Path(__file__).resolve().parents[2] / "httprequest_lego_provider"
NAME = "_acme-challenge.www.example.com"
# How long a hook waits for the ticker greenlet before giving up: well under libgit2's ~12 s
# stall limit over SSH, far above the few milliseconds a free event loop needs.
RELEASE_WAIT_SECONDS = 5
PROCESS_TIMEOUT_SECONDS = 120

SCRIPT = textwrap.dedent(
    """
    from gevent import monkey
    monkey.patch_all()
    import json, os, sys
    import gevent
    from dns_backends import Deadline, DnsBackendError
    from dns_backends.git import from_env

    job = json.loads(sys.argv[1])
    forks = 0
    def count_fork():
        global forks
        forks += 1
    os.register_at_fork(before=count_fork)

    def release_when_started(started, release):
        while not os.path.exists(started):
            gevent.sleep(0.002)
        open(release, "w").close()

    backend = from_env(job["environ"])
    report = {}
    try:
        if job["warm"] is not None:
            backend.present("_acme-challenge.warm.example.com", job["warm"])  # clone, connect
        if job["mode"] == "release":
            ticker = gevent.spawn(release_when_started, job["started"], job["release"])
            before = forks
            backend.present(job["name"], job["value"])
            report["forks"] = forks - before
            ticker.kill()
        elif job["mode"] == "deadline":
            open(job["arm"], "w").close()
            try:
                backend.present(job["name"], job["value"], Deadline.after(job["seconds"]))
                report["error"] = None
            except DnsBackendError as exc:
                report["error"] = exc.public_message
        elif job["mode"] == "concurrent":
            greenlets = [
                gevent.spawn(backend.present, name, value) for name, value in job["records"]
            ]
            gevent.joinall(greenlets)
            report["errors"] = [repr(g.exception) for g in greenlets if g.exception]
    finally:
        backend.close()
    print(json.dumps(report))
    """
)


def run_under_gevent(job: dict[str, Any], env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run the script's ``job`` in a gevent-patched process; return what it reported."""
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, json.dumps(job)],
        cwd=PROJECT,
        env=env,
        capture_output=True,
        text=True,
        timeout=PROCESS_TIMEOUT_SECONDS,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    report: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    report["log"] = result.stderr
    return report


def install_releasable_hook(remote: Path, directory: Path) -> dict[str, str]:
    """A ``pre-receive`` hook that waits until released; it records whether it was.

    Returns the paths the script's ticker watches (``started``) and creates (``release``), and
    where the hook writes ``released`` or ``gave up``.
    """
    paths = {name: str(directory / name) for name in ("started", "release", "outcome")}
    hook = remote / "hooks" / "pre-receive"
    hook.write_text(
        "#!/bin/sh\n"
        "cat > /dev/null\n"
        f"touch '{paths['started']}'\n"
        "i=0\n"
        f"while [ ! -e '{paths['release']}' ]; do\n"
        f"  i=$((i + 1)); if [ $i -gt {RELEASE_WAIT_SECONDS * 50} ]; then\n"
        f"    echo 'gave up' > '{paths['outcome']}'; exit 0; fi\n"
        "  sleep 0.02\n"
        "done\n"
        f"echo released > '{paths['outcome']}'\n"
    )
    hook.chmod(0o755)
    return paths


def environ_for(
    kind: str, remote: Path, work: Path, sshd: SshServer | None = None
) -> dict[str, str]:
    if kind == "local-with-hook":
        return local_environ(remote, work)
    assert sshd is not None
    return ssh_environ(sshd, remote, work, DJANGO_GIT_SSH_TRANSPORT=kind)


KINDS = ["local-with-hook", "openssh", "libgit2"]


@pytest.fixture
def sshd_if_needed(request: pytest.FixtureRequest, kind: str) -> SshServer | None:
    """The session's sshd for the SSH kinds (started only when an SSH kind runs)."""
    if kind == "local-with-hook":
        return None
    server: SshServer = request.getfixturevalue("sshd")
    return server


@pytest.mark.parametrize("kind", KINDS)
def test_other_greenlets_run_while_a_push_waits_for_the_remotes_hook(
    kind: str, remote: Path, tmp_path: Path, sshd_if_needed: SshServer | None
) -> None:
    """The hook is released by a greenlet of the pushing process: only a free loop can."""
    paths = install_releasable_hook(remote, tmp_path)
    report = run_under_gevent(
        {
            "mode": "release",
            "environ": environ_for(kind, remote, tmp_path / "work", sshd_if_needed),
            "warm": token("warm"),
            "name": NAME,
            "value": token(kind),
            **paths,
        }
    )
    assert Path(paths["outcome"]).read_text().strip() == "released"
    assert zone_file_txt(remote, "example.com", NAME) == {token(kind)}
    assert report["forks"] == 0, "a copy of the worker was forked to run git"


@pytest.mark.parametrize("kind", KINDS)
def test_the_deadline_stops_a_held_push_under_gevent_and_the_retry_publishes_once(
    kind: str, remote: Path, tmp_path: Path, sshd_if_needed: SshServer | None
) -> None:
    """A 503 to retry; the hook is stopped (local) or the remote moves the branch whole or not."""
    environ = environ_for(kind, remote, tmp_path / "work", sshd_if_needed)
    hook = HeldHook(remote, "pre-receive", tmp_path)
    (remote / "hooks" / "pre-receive").rename(remote / "hooks" / "held")
    arm = tmp_path / "arm"
    # The held hook only becomes active once the warm-up present is done.
    gate = remote / "hooks" / "pre-receive"
    gate.write_text(f"#!/bin/sh\n[ -e '{arm}' ] || exit 0\nexec '{remote}/hooks/held'\n")
    gate.chmod(0o755)
    before_warm = git("--git-dir", remote, "rev-parse", "main")
    report = run_under_gevent(
        {
            "mode": "deadline",
            "environ": environ,
            "warm": token("warm"),
            "name": NAME,
            "value": token("held"),
            "seconds": 1.5,
            "arm": str(arm),
        }
    )
    assert report["error"] is not None
    assert "ran out" in report["error"], report["log"]
    assert "try again" in report["error"]
    warmed = git("--git-dir", remote, "rev-parse", "main")
    assert warmed != before_warm
    if kind == "local-with-hook":
        hook.wait_until_gone()  # stopped with the push
    hook.release()
    wait_for_receive_packs_to_end(remote)
    if git("--git-dir", remote, "rev-parse", "main") == warmed:
        assert zone_file_txt(remote, "example.com", NAME) == set()
    else:
        assert kind != "local-with-hook", "a push stopped in its pre-receive hook landed"
        assert commit_messages(remote)[0] == f"Add {NAME} record"
    arm.unlink()
    run_under_gevent(
        {
            "mode": "concurrent",
            "environ": environ,
            "warm": token("warm"),
            "records": [[NAME, token("held")]],
        }
    )
    assert remote_file(remote, "example.com.domain").count(token("held").encode()) == 1


@pytest.mark.parametrize("kind", KINDS)
def test_concurrent_greenlets_changes_are_all_published(
    kind: str, remote: Path, tmp_path: Path, sshd_if_needed: SshServer | None
) -> None:
    """Group commit with gevent's locks: every greenlet returns only once its record is in."""
    hook = remote / "hooks" / "post-receive"
    hook.write_text("#!/bin/sh\ncat > /dev/null\nsleep 0.05\n")
    hook.chmod(0o755)
    records = [[f"_acme-challenge.g{i}.example.com", token(f"g{i}")] for i in range(8)]
    report = run_under_gevent(
        {
            "mode": "concurrent",
            "environ": environ_for(kind, remote, tmp_path / "work", sshd_if_needed),
            "warm": token("warm"),
            "records": records,
        }
    )
    assert report["errors"] == []
    for name, value in records:
        assert zone_file_txt(remote, "example.com", name) == {value}


def test_a_missing_git_command_is_a_clear_error_under_gevent(remote: Path, tmp_path: Path) -> None:
    """The command is looked up on the environment's PATH, as subprocess does with threads."""
    hook = remote / "hooks" / "post-receive"
    hook.write_text("#!/bin/sh\ncat > /dev/null\n")
    hook.chmod(0o755)
    report = run_under_gevent(
        {
            "mode": "deadline",
            "environ": local_environ(remote, tmp_path / "work"),
            "warm": None,
            "name": NAME,
            "value": token("no-git"),
            "seconds": 20,
            "arm": str(tmp_path / "arm"),
        },
        env={**os.environ, "PATH": "/nonexistent"},
    )
    assert report["error"] is not None
    assert "git command is not installed" in report["error"]
    assert zone_file_txt(remote, "example.com", NAME) == set()
