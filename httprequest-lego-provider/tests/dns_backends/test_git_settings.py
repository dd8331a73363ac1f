"""Reading ``DJANGO_GIT_*``: the URL forms of ``DJANGO_GIT_REPO`` and the SSH material."""

from __future__ import annotations

from pathlib import Path

import pytest
from dns_backends import BackendConfigError
from dns_backends.git.settings import RemoteSpec, parse_repo_url, settings_from_env

KEY = (
    "-----BEGIN OPENSSH PRIVATE KEY-----\n"
    "c2VjcmV0LWtleS1ieXRlcw==\n"
    "-----END OPENSSH PRIVATE KEY-----"
)
KNOWN_HOSTS = "git.example.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample\n"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            "git+ssh://git@git.example.com/srv/dns.git@main",
            RemoteSpec("ssh", "ssh://git@git.example.com/srv/dns.git", "main",
                       "git.example.com", None, "git", "/srv/dns.git"),
        ),
        (
            "git+ssh://deploy@git.example.com:2222/srv/dns.git",
            RemoteSpec("ssh", "ssh://deploy@git.example.com:2222/srv/dns.git", None,
                       "git.example.com", 2222, "deploy", "/srv/dns.git"),
        ),
        (
            "ssh://git@10.0.0.5/org/zones@release/2024",
            RemoteSpec("ssh", "ssh://git@10.0.0.5/org/zones", "release/2024",
                       "10.0.0.5", None, "git", "/org/zones"),
        ),
        (
            "ssh://git@[2001:db8::1]:22/zones.git",
            RemoteSpec("ssh", "ssh://git@[2001:db8::1]:22/zones.git", None,
                       "2001:db8::1", 22, "git", "/zones.git"),
        ),
        (
            "git+ssh://git.example.com/zones.git",
            RemoteSpec("ssh", "ssh://git@git.example.com/zones.git", None,
                       "git.example.com", None, "git", "/zones.git"),
        ),
        (
            "file:///srv/git/dns.git@dns",
            RemoteSpec("local", "/srv/git/dns.git", "dns", path="/srv/git/dns.git"),
        ),
        (
            "/srv/git/dns.git",
            RemoteSpec("local", "/srv/git/dns.git", None, path="/srv/git/dns.git"),
        ),
        (
            "  /srv/git/dns.git@main\n",
            RemoteSpec("local", "/srv/git/dns.git", "main", path="/srv/git/dns.git"),
        ),
        (
            "https://bot:s3cret@git.example.com/org/dns.git@main",
            RemoteSpec("https", "https://bot:s3cret@git.example.com/org/dns.git", "main",
                       "git.example.com", None, "", "/org/dns.git"),
        ),
    ],
)  # fmt: skip
def test_repo_url_forms_are_parsed(raw: str, expected: RemoteSpec) -> None:
    assert parse_repo_url(raw) == expected


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("git@github.com:org/dns.git", "expected one of"),
        ("relative/path.git", "expected one of"),
        ("http://git.example.com/dns.git", "unsupported scheme 'http'"),
        ("ftp://git.example.com/dns.git", "unsupported scheme"),
        ("git+ssh://git@git.example.com", "needs a host and a path"),
        ("git+ssh://git@git.example.com/", "needs a host and a path"),
        ("git+ssh:///srv/dns.git", "needs a host and a path"),
        ("git+ssh://git@git.example.com:99999/dns.git", "port"),
        ("file://srv/dns.git", "absolute path"),
        ("/srv/dns.git@bad..branch", "not a valid branch name"),
        ("/srv/dns.git@", "not a valid branch name"),
        ("https:///dns.git", "needs a host and a path"),
    ],
)
def test_invalid_repo_urls_are_refused_with_a_reason(raw: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_repo_url(raw)


def test_display_form_hides_credentials() -> None:
    remote = parse_repo_url("https://bot:s3cret@git.example.com/org/dns.git@main")
    assert remote.display == "https://git.example.com/org/dns.git"
    assert "s3cret" not in repr(remote)


# The service's data directory, as its environment passes it to the backend.
DATA_DIR = Path("/var/lib/provider")


def ssh_environ(**overrides: str) -> dict[str, str]:
    environ = {
        "DJANGO_GIT_REPO": "git+ssh://git@git.example.com/dns.git@main",
        "DJANGO_GIT_SSH_KEY": KEY,
        "DJANGO_GIT_KNOWN_HOSTS": KNOWN_HOSTS,
    }
    environ.update(overrides)
    return {name: value for name, value in environ.items() if value}


def test_ssh_settings_are_read_with_defaults() -> None:
    settings = settings_from_env(ssh_environ(), data_dir=DATA_DIR)
    assert settings.remote.kind == "ssh"
    assert settings.ssh_key == KEY + "\n"
    assert settings.known_hosts == KNOWN_HOSTS
    assert settings.workdir == Path("/var/lib/provider/git-workdir")
    assert settings.author_name == "httprequest-lego-provider"
    assert settings.ssh_transport == "openssh"
    assert KEY not in repr(settings)


@pytest.mark.parametrize(
    ("raw", "expected"), [("openssh", "openssh"), ("libgit2", "libgit2"), (" LibGit2 ", "libgit2")]
)
def test_the_ssh_transport_can_be_chosen(raw: str, expected: str) -> None:
    settings = settings_from_env(ssh_environ(DJANGO_GIT_SSH_TRANSPORT=raw), data_dir=DATA_DIR)
    assert settings.ssh_transport == expected


def test_key_and_known_hosts_can_come_from_files(tmp_path: Path) -> None:
    (tmp_path / "id").write_text(KEY)
    (tmp_path / "known_hosts").write_text(KNOWN_HOSTS)
    settings = settings_from_env(
        ssh_environ(
            DJANGO_GIT_SSH_KEY="",
            DJANGO_GIT_KNOWN_HOSTS="",
            DJANGO_GIT_SSH_KEY_FILE=str(tmp_path / "id"),
            DJANGO_GIT_KNOWN_HOSTS_FILE=str(tmp_path / "known_hosts"),
        ),
        data_dir=DATA_DIR,
    )
    assert settings.ssh_key == KEY + "\n"
    assert settings.known_hosts == KNOWN_HOSTS


def test_workdir_author_and_identity_can_be_configured() -> None:
    settings = settings_from_env(
        ssh_environ(
            DJANGO_GIT_WORKDIR="/srv/work",
            DJANGO_GIT_AUTHOR_NAME="ACME bot",
            DJANGO_GIT_AUTHOR_EMAIL="acme@example.com",
        ),
        data_dir=DATA_DIR,
    )
    assert settings.workdir == Path("/srv/work")
    assert (settings.author_name, settings.author_email) == ("ACME bot", "acme@example.com")


def test_local_remote_needs_no_ssh_material() -> None:
    settings = settings_from_env({"DJANGO_GIT_REPO": "/srv/dns.git"}, data_dir=DATA_DIR)
    assert settings.ssh_key is None
    assert settings.known_hosts is None


@pytest.mark.parametrize(
    ("overrides", "variable"),
    [
        ({"DJANGO_GIT_REPO": ""}, "DJANGO_GIT_REPO is not set"),
        ({"DJANGO_GIT_REPO": "git@host:dns.git"}, "DJANGO_GIT_REPO is invalid"),
        ({"DJANGO_GIT_SSH_KEY": ""}, "DJANGO_GIT_SSH_KEY"),
        ({"DJANGO_GIT_SSH_KEY": "ssh-ed25519 AAAA public-not-private"}, "DJANGO_GIT_SSH_KEY"),
        ({"DJANGO_GIT_SSH_KEY_FILE": "/nonexistent/id"}, "set only one of DJANGO_GIT_SSH_KEY"),
        (
            {"DJANGO_GIT_SSH_KEY": "", "DJANGO_GIT_SSH_KEY_FILE": "/nonexistent/id"},
            "DJANGO_GIT_SSH_KEY_FILE='/nonexistent/id' cannot be read",
        ),
        ({"DJANGO_GIT_KNOWN_HOSTS": ""}, "DJANGO_GIT_KNOWN_HOSTS"),
        ({"DJANGO_GIT_KNOWN_HOSTS": "  \n"}, "DJANGO_GIT_KNOWN_HOSTS"),
        (
            {"DJANGO_GIT_KNOWN_HOSTS": "", "DJANGO_GIT_KNOWN_HOSTS_FILE": "/nonexistent/kh"},
            "DJANGO_GIT_KNOWN_HOSTS_FILE",
        ),
        ({"DJANGO_GIT_SSH_TRANSPORT": "paramiko"}, "DJANGO_GIT_SSH_TRANSPORT='paramiko'"),
    ],
)
def test_bad_configuration_names_the_variable(overrides: dict[str, str], variable: str) -> None:
    with pytest.raises(BackendConfigError, match=variable) as raised:
        settings_from_env(ssh_environ(**overrides), data_dir=DATA_DIR)
    assert "c2VjcmV0" not in str(raised.value)
