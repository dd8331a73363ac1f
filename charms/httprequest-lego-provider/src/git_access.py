"""Give the workload SSH access to the DNS repository: the private key and known host keys.

The files are written in the workload container, readable by the service user only (0600 in a
0700 directory), before the service (re)starts. The service finds them through
``DJANGO_GIT_SSH_KEY_FILE`` and ``DJANGO_GIT_KNOWN_HOSTS_FILE``, so the key never appears in
the Pebble plan.
"""

from __future__ import annotations

import hashlib
import logging

import ops
from provider_config import GitHost, ProviderConfig
from twelve_factor import WorkloadError
from twelve_factor.workload import SERVICE_USER

logger = logging.getLogger(__name__)

DATA_ROOT = "/var/lib/httprequest-lego-provider"
SSH_DIR = f"{DATA_ROOT}/.ssh"
SSH_KEY_FILE = f"{SSH_DIR}/id_git"
KNOWN_HOSTS_FILE = f"{SSH_DIR}/known_hosts"
DATA_DIR = f"{DATA_ROOT}/data"
KEYSCAN_TIMEOUT_SECONDS = 10
PRIVATE = 0o600
PRIVATE_DIR = 0o700


def prepare(container: ops.Container, config: ProviderConfig, *, refresh: bool) -> dict[str, str]:
    """Write the key and known_hosts (when refreshing or missing) and describe them.

    Only what is configured is written: an SSH repository needs both (the service says so if
    one is missing), a local or https one neither.

    Args:
        container: the workload container, reachable.
        config: the validated configuration.
        refresh: rewrite the files even if they exist (new pod, new config).

    Returns:
        The environment that points the service at the files.

    Raises:
        WorkloadError: the repository host's keys could not be scanned.
    """
    for directory in (SSH_DIR, DATA_DIR):
        container.make_dir(
            directory,
            make_parents=True,
            permissions=PRIVATE_DIR,
            user=SERVICE_USER,
            group=SERVICE_USER,
        )
    environment = {"DJANGO_DNS_BACKEND": "git", "DJANGO_DATA_DIR": DATA_DIR}
    files: list[str] = []
    if config.git_ssh_key is not None:
        if refresh or not container.exists(SSH_KEY_FILE):
            key = config.git_ssh_key.replace("\r\n", "\n").strip() + "\n"
            _push_private(container, SSH_KEY_FILE, key)
        environment["DJANGO_GIT_SSH_KEY_FILE"] = SSH_KEY_FILE
        files.append(SSH_KEY_FILE)
    known_hosts = config.git_known_hosts
    if known_hosts is not None or config.git_host is not None:
        if refresh or not container.exists(KNOWN_HOSTS_FILE):
            if known_hosts is None and config.git_host is not None:
                known_hosts = scan_host_keys(container, config.git_host)
            _push_private(container, KNOWN_HOSTS_FILE, (known_hosts or "").strip() + "\n")
        environment["DJANGO_GIT_KNOWN_HOSTS_FILE"] = KNOWN_HOSTS_FILE
        files.append(KNOWN_HOSTS_FILE)
    if files:
        # The service reads the files once at start: a digest of their content in the
        # environment changes the Pebble layer, so a new key or host key restarts it.
        environment["DJANGO_GIT_CREDENTIALS_SHA256"] = _digest(container, *files)
    return environment


def _digest(container: ops.Container, *paths: str) -> str:
    digest = hashlib.sha256()
    for path in paths:
        with container.pull(path) as file:
            digest.update(file.read().encode())
        digest.update(b"\0")
    return digest.hexdigest()


def _push_private(container: ops.Container, path: str, content: str) -> None:
    container.push(path, content, permissions=PRIVATE, user=SERVICE_USER, group=SERVICE_USER)


def keyscan_command(host: GitHost) -> list[str]:
    """``ssh-keyscan`` of the repository host (on its port, when the URL gives one)."""
    command = ["ssh-keyscan", "-T", str(KEYSCAN_TIMEOUT_SECONDS)]
    if host.port is not None:
        command += ["-p", str(host.port)]
    return [*command, host.host]


def scan_host_keys(container: ops.Container, git_host: GitHost) -> str:
    """Ask the repository host for its keys, from inside the workload (same network view).

    Raises:
        WorkloadError: the scan failed or found no key.
    """
    host = git_host.host
    try:
        process = container.exec(
            keyscan_command(git_host),
            user=SERVICE_USER,
            timeout=KEYSCAN_TIMEOUT_SECONDS * 3,
        )
        stdout, _ = process.wait_output()
    except (ops.pebble.ExecError, ops.pebble.ChangeError, ops.pebble.TimeoutError) as exc:
        logger.error("ssh-keyscan of %s failed: %s", host, exc)
        raise WorkloadError(f"ssh-keyscan of {host} failed; set git-known-hosts") from exc
    keys = "\n".join(line for line in stdout.splitlines() if line and not line.startswith("#"))
    if not keys:
        raise WorkloadError(f"ssh-keyscan found no key for {host}; set git-known-hosts")
    return keys
