"""One table of configuration values, run through the charm and through the real service.

Each charm's ``tests/config_table.json`` lists option values with what the service does with
them (``service_accepts``) or, for the charm's own options, the charm's refusal
(``charm_refuses``). For every row the charm runs in ``ops.testing``; the service's config check
that the charm runs in the workload is answered by **running that very check against the
service's source** with the environment the charm built (files the charm wrote in the container
are read from the test container's filesystem). So the test proves: the charm passes the value
on, the real service accepts exactly the rows marked accepted, and a refused value blocks the
unit with the service's own message (no unit reports active with a service that cannot start).
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, ClassVar

import pytest
from ops import testing

from testing_support.subject import CharmUnderTest

REFUSAL_SUFFIX = " (fix the matching charm option)"


def load_table(path: Path) -> list[Any]:
    """The rows of a config table, as pytest parameters named after the rows."""
    rows = json.loads(path.read_text())
    return [pytest.param(row, id=row["name"]) for row in rows]


def run_real_check(
    subject: CharmUnderTest, command: list[str], environment: dict[str, str], root: Path
) -> subprocess.CompletedProcess[str]:
    """Run the charm's check command against the service's source, as the workload would.

    Paths in the environment that the charm created in the container are mapped to the test
    container's filesystem (``root``).
    """
    mapped = {}
    for name, value in environment.items():
        inside = root / value.lstrip("/")
        mapped[name] = str(inside) if value.startswith("/") and inside.exists() else value
    mapped["PATH"] = os.environ.get("PATH", "/usr/bin:/bin")
    return subprocess.run(  # noqa: S603 (the charm's own constant program)
        [sys.executable, *command[1:]],
        cwd=subject.workload_source,
        env=mapped,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


class ConfigTableContract:
    """The table test; a charm's ``tests/test_config_table.py`` sets the two attributes."""

    subject: ClassVar[CharmUnderTest]
    check_command: ClassVar[tuple[str, ...]]

    def check_row(self, row: dict[str, Any]) -> None:
        """Run one row through the charm and the real service (see the module docstring)."""
        config = self.config_of(row)
        ctx, first = self.run_charm(config, testing.Exec(self.check_command))
        if "charm_refuses" in row:
            assert first.unit_status == testing.BlockedStatus(row["charm_refuses"])
            assert first.get_container(self.subject.container).plan.services == {}
            return
        [call] = [
            c
            for c in ctx.exec_history[self.subject.container]
            if tuple(c.command) == self.check_command
        ]
        root = first.get_container(self.subject.container).get_filesystem(ctx)
        real = run_real_check(self.subject, list(call.command), dict(call.environment), root)
        assert real.returncode in (0, 2), real.stderr
        assert (real.returncode == 0) == row["service_accepts"], real.stderr

        answer = testing.Exec(self.check_command, return_code=real.returncode, stderr=real.stderr)
        _, out = self.run_charm(config, answer)

        services = out.get_container(self.subject.container).plan.services
        if row["service_accepts"]:
            assert out.unit_status == testing.ActiveStatus()
            assert services
            return
        message = real.stderr.strip().splitlines()[-1]
        assert row["message"] in message
        assert out.unit_status == testing.BlockedStatus(message + REFUSAL_SUFFIX)
        assert services == {}

    def config_of(self, row: dict[str, Any]) -> dict[str, Any]:
        """The ready state's configuration with the row's values (``null``: option unset)."""
        config = dict(self.subject.ready_state().config)
        for option, value in row["config"].items():
            if value is None:
                config.pop(option, None)
            else:
                config[option] = value
        return config

    def run_charm(
        self, config: dict[str, Any], check: testing.Exec
    ) -> tuple[testing.Context[Any], testing.State]:
        """config-changed on a ready unit whose configuration check answers ``check``."""
        ctx = testing.Context(self.subject.charm)
        state = self.subject.ready_state()
        workload = state.get_container(self.subject.container)
        execs = {e for e in workload.execs if e.command_prefix != self.check_command} | {check}
        workload = dataclasses.replace(workload, execs=frozenset(execs))
        state = dataclasses.replace(state, config=config, containers=frozenset({workload}))
        return ctx, ctx.run(ctx.on.config_changed(), state)
