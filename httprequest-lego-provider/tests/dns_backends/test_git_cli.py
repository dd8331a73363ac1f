"""The git command line helpers: environment, verdicts of ``git push``, remote messages."""

from __future__ import annotations

from pathlib import Path

import pytest
from dns_backends import DnsBackendError
from dns_backends.git.transport.cli import (
    GitTransferError,
    PushRefusedError,
    PushRejectedError,
    git_environment,
    head_branch,
    push_compare_and_swap,
    refusal_reason,
)

from tests.dns_backends.git_fixtures import git, make_remote


def test_the_environment_cannot_point_git_at_another_repository(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GIT_DIR", "/elsewhere.git")
    monkeypatch.setenv("GIT_SSH_COMMAND", "ssh -o StrictHostKeyChecking=no")
    monkeypatch.setenv("GIT_CONFIG_PARAMETERS", "'core.hookspath'='/tmp'")
    environ = git_environment({"GIT_SSH_COMMAND": "ssh -i key"})
    assert "GIT_DIR" not in environ
    assert "GIT_CONFIG_PARAMETERS" not in environ
    assert environ["GIT_SSH_COMMAND"] == "ssh -i key"
    assert environ["LC_ALL"] == "C"


@pytest.mark.parametrize(
    ("summary", "stderr", "expected"),
    [
        (
            "[remote rejected] (pre-receive hook declined)",
            "remote: zone freeze in effect        \nerror: failed to push some refs to 'x'\n",
            "pre-receive hook declined: zone freeze in effect",
        ),
        (
            "[remote rejected] (hook declined)",
            "remote: line one\nremote: \nremote: line\x1b[31m two\r\n",
            "hook declined: line one; line two",
        ),
        ("[remote rejected] (failed to update ref)", "", "failed to update ref"),
    ],
)
def test_a_refusal_reason_is_one_short_clean_line(
    summary: str, stderr: str, expected: str
) -> None:
    assert refusal_reason(summary, stderr) == expected
    assert "\n" not in refusal_reason(summary, stderr)
    assert len(refusal_reason(summary, "remote: " + "x" * 1000)) <= 200


def test_head_branch_reads_the_symref_line() -> None:
    output = "ref: refs/heads/trunk\tHEAD\n0123456789abcdef0123456789abcdef01234567\tHEAD\n"
    assert head_branch(output) == "trunk"
    assert head_branch("0123\tHEAD\n") is None


def commit_on(repo: Path, parent: str, message: str) -> str:
    tree = git("--git-dir", repo, "rev-parse", f"{parent}^{{tree}}").decode().strip()
    return (
        git("--git-dir", repo, "commit-tree", "-p", parent, "-m", message, tree).decode().strip()
    )


def test_push_compare_and_swap_moves_the_branch_only_from_the_expected_commit(
    tmp_path: Path,
) -> None:
    remote = make_remote(tmp_path / "zones.git")
    base = git("--git-dir", remote, "rev-parse", "main").decode().strip()
    first, second = commit_on(remote, base, "first"), commit_on(remote, base, "second")
    environ = git_environment()
    push_compare_and_swap(str(remote), str(remote), "refs/heads/main", base, first, env=environ)
    with pytest.raises(PushRejectedError):
        push_compare_and_swap(
            str(remote), str(remote), "refs/heads/main", base, second, env=environ
        )
    assert git("--git-dir", remote, "rev-parse", "main").decode().strip() == first


def test_push_compare_and_swap_reports_a_refusal_and_a_missing_remote(tmp_path: Path) -> None:
    remote = make_remote(tmp_path / "zones.git")
    base = git("--git-dir", remote, "rev-parse", "main").decode().strip()
    commit = commit_on(remote, base, "refused")
    hook = remote / "hooks" / "update"
    hook.write_text('#!/bin/sh\necho "no changes to $1" >&2\nexit 1\n')
    hook.chmod(0o755)
    with pytest.raises(PushRefusedError, match="hook declined: no changes to refs/heads/main"):
        push_compare_and_swap(
            str(remote), str(remote), "refs/heads/main", base, commit, env=git_environment()
        )
    with pytest.raises(GitTransferError, match="does not appear to be a git repository"):
        push_compare_and_swap(
            str(remote),
            str(tmp_path / "nowhere.git"),
            "refs/heads/main",
            base,
            commit,
            env=git_environment(),
        )


def test_a_missing_git_command_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(DnsBackendError, match="git command is not installed"):
        push_compare_and_swap("/x", "/y", "refs/heads/main", "a", "b", env=git_environment())
