"""The provider's configuration table, run through the charm and the real service (issue 10).

The service side is real: ``httprequest_lego_provider.environment`` and the git backend's
settings from the Django project folder, run as the charm runs them in the workload (see
``testing_support.config_table``).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from config_check import COMMAND
from testing_support.config_table import ConfigTableContract, load_table

from tests.states import PROVIDER

TABLE = load_table(Path(__file__).with_name("config_table.json"))


class TestProviderConfigTable(ConfigTableContract):
    subject = PROVIDER
    check_command = COMMAND

    @pytest.mark.parametrize("row", TABLE)
    def test_the_charm_accepts_exactly_what_the_service_accepts(self, row):
        self.check_row(row)
