"""The router's configuration table, run through the charm and the real service (issue 10).

The service side is real: ``webhook_router.settings`` from the rock root, run as the charm runs
it in the workload (see ``testing_support.config_table``).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from config_check import COMMAND
from testing_support.config_table import ConfigTableContract, load_table

from tests.states import ROUTER

TABLE = load_table(Path(__file__).with_name("config_table.json"))


class TestRouterConfigTable(ConfigTableContract):
    subject = ROUTER
    check_command = COMMAND

    @pytest.mark.parametrize("row", TABLE)
    def test_the_charm_accepts_exactly_what_the_service_accepts(self, row):
        self.check_row(row)
