"""The user and permission actions: each runs one Django management command in the workload."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import ops
from twelve_factor.workload import PYTHON, SERVICE_USER

APP_DIR = "/django/app"
COMMAND_TIMEOUT = 300.0


class ManagementError(Exception):
    """The action failed; the message is what the operator sees."""


def _name(params: Mapping[str, Any], key: str, *, allow_all: bool = False) -> str:
    """A required name parameter; refused if it could be read as an option (``-x``)."""
    value = str(params.get(key) or "").strip()
    if not value:
        raise ManagementError(f"missing parameter {key}")
    if value.startswith("-") or (value == "*" and not allow_all):
        raise ManagementError(f"invalid {key}: {value!r}")
    return value


def _names(params: Mapping[str, Any], key: str) -> list[str]:
    """A comma-separated list parameter (may be absent)."""
    values = [item.strip() for item in str(params.get(key) or "").split(",") if item.strip()]
    for value in values:
        if value.startswith("-"):
            raise ManagementError(f"invalid entry in {key}: {value!r}")
    return values


def create_user(params: Mapping[str, Any]) -> list[str]:
    """``create_user <username> [<password>]`` (the command generates and prints a password)."""
    command = ["create_user", _name(params, "username")]
    password = str(params.get("password") or "")
    if password:
        # "--" keeps a password that starts with "-" from being read as an option.
        command += ["--", password] if password.startswith("-") else [password]
    return command


def _grant(name: str, params: Mapping[str, Any]) -> list[str]:
    domains = _names(params, "domains")
    subdomains = _names(params, "subdomains")
    if not domains and not subdomains:
        raise ManagementError("give domains, subdomains or both (comma-separated)")
    command = [name, _name(params, "username")]
    if domains:
        command += ["--domains", ",".join(domains)]
    if subdomains:
        command += ["--subdomains", ",".join(subdomains)]
    return command


def allow_domains(params: Mapping[str, Any]) -> list[str]:
    """``allow_domains <username> [--domains a,b] [--subdomains c,d]``."""
    return _grant("allow_domains", params)


def revoke_domains(params: Mapping[str, Any]) -> list[str]:
    """``revoke_domains <username> [--domains a,b] [--subdomains c,d]``."""
    return _grant("revoke_domains", params)


def list_domains(params: Mapping[str, Any]) -> list[str]:
    """``list_domains <username|*>``."""
    return ["list_domains", _name(params, "username", allow_all=True)]


def create_superuser(params: Mapping[str, Any]) -> list[str]:
    """``create_superuser <username> [--email E]`` (prints a generated password)."""
    command = ["create_superuser", _name(params, "username")]
    email = str(params.get("email") or "").strip()
    if email:
        command += ["--email", email]
    return command


def create_acmedns_account(params: Mapping[str, Any]) -> list[str]:
    """``create_acmedns_account <username> <domain> [--delegated] [...]``: prints the account.

    The options are ``--allowfrom a,b`` and ``--server-url U``; the printed account file is
    the only time its key is shown.
    """
    command = ["create_acmedns_account", _name(params, "username"), _name(params, "domain")]
    if params.get("delegated") is True:
        command.append("--delegated")
    allowfrom = _names(params, "allowfrom")
    if allowfrom:
        command += ["--allowfrom", ",".join(allowfrom)]
    server_url = str(params.get("server-url") or "").strip()
    if server_url:
        if server_url.startswith("-"):
            raise ManagementError("invalid server-url: give an http:// or https:// URL")
        command += ["--server-url", server_url]
    return command


def rotate_password(params: Mapping[str, Any]) -> list[str]:
    """``rotate_password <username>`` (prints the new generated password once)."""
    return ["rotate_password", _name(params, "username")]


def account_results(output: str) -> dict[str, str]:
    """The ``create-acmedns-account`` result: the account file, exactly as the command printed it.

    Raises:
        ManagementError: the output is not one JSON object (the file lego would read).
    """
    try:
        account = json.loads(output)
    except json.JSONDecodeError:
        account = None
    if not isinstance(account, dict) or not account:
        raise ManagementError("unexpected output from create_acmedns_account; see juju debug-log")
    return {"account": output}


def password_results(output: str) -> dict[str, str]:
    """The ``rotate-password`` result: only the new password, from the ``password:`` line.

    Raises:
        ManagementError: the command printed no password.
    """
    password = results(output).get("password")
    if password is None:
        raise ManagementError("unexpected output from rotate_password; see juju debug-log")
    return {"password": password}


def results(output: str) -> dict[str, str]:
    """The action results: the command's output, and the password it generated, if any.

    ``password`` is the key the upstream charm's user actions answer with, so scripts written
    for it keep working.
    """
    found = {"result": output}
    for line in output.splitlines():
        key, separator, value = line.partition(":")
        if separator and key.strip() == "password" and value.strip():
            found["password"] = value.strip()
    return found


def run(container: ops.Container, arguments: list[str], environment: Mapping[str, str]) -> str:
    """Run ``manage.py <arguments>`` as the service runs, and return what it printed.

    Args:
        container: the workload container.
        arguments: the management command and its arguments.
        environment: the service's environment (database, secret key).

    Returns:
        The command's standard output.

    Raises:
        ManagementError: the command failed; the message carries its error output.
    """
    try:
        process = container.exec(
            [PYTHON, "manage.py", *arguments],
            environment=dict(environment),
            working_dir=APP_DIR,
            user=SERVICE_USER,
            timeout=COMMAND_TIMEOUT,
        )
        stdout, _ = process.wait_output()
    except ops.pebble.ExecError as exc:
        stderr = exc.stderr if isinstance(exc.stderr, str) else (exc.stderr or b"").decode()
        # The last line is the command's error (CommandError: ...); the lines before it are
        # log records (the audit trail writes one per change).
        lines = stderr.strip().splitlines()
        message = lines[-1].strip() if lines else "(no output)"
        raise ManagementError(f"{arguments[0]} failed (exit {exc.exit_code}): {message}") from exc
    except (ops.pebble.ChangeError, ops.pebble.TimeoutError) as exc:
        raise ManagementError(f"{arguments[0]} did not finish: {exc}") from exc
    return stdout.strip()
