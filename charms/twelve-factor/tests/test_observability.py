"""Alert rules and dashboards in the shapes the real COS libraries write (recorded fixtures)."""

from __future__ import annotations

import json

import pytest
from testing_support.interop import MODEL, fixture
from twelve_factor.alert_rules import GENERIC_RULES_DIR, labelled_groups, rule_files
from twelve_factor.dashboards import alt_uid, compress, decompress
from twelve_factor.topology import Topology

ROUTER = Topology(
    model=MODEL.name,
    model_uuid=MODEL.uuid,
    application="github-runner-webhook-router",
    unit="github-runner-webhook-router/0",
    charm_name="github-runner-webhook-router",
)


def test_alert_rules_are_labelled_as_the_prometheus_scrape_library_labels_them():
    """The same rule file gives the groups the library (LIBPATCH 44) wrote."""
    recorded = fixture("prometheus_scrape/provider-lp44-two-jobs.json")
    [text] = recorded["scenario"]["alert_rule_files"].values()

    groups = labelled_groups(text, ROUTER)

    assert {"groups": groups} == json.loads(recorded["written"]["app_data"]["alert_rules"])


@pytest.mark.parametrize("patch", ["lp53", "lp61"])
def test_newer_libraries_only_add_their_generic_host_health_group(patch):
    recorded = fixture(f"prometheus_scrape/provider-{patch}-two-jobs.json")
    [text] = recorded["scenario"]["alert_rule_files"].values()
    written = json.loads(recorded["written"]["app_data"]["alert_rules"])["groups"]

    ours = labelled_groups(text, ROUTER)

    assert [g for g in written if "HostHealth" not in g["name"]] == ours


def test_the_base_ships_target_down_and_server_error_ratio_alerts():
    alerts = {
        rule["alert"]
        for path in rule_files([GENERIC_RULES_DIR])
        for group in labelled_groups(path.read_text(), ROUTER)
        for rule in group["rules"]
    }

    assert {"TargetDown", "HighServerErrorRatio"} <= alerts


@pytest.mark.parametrize("patch", ["lp35", "lp44", "lp48"])
def test_dashboard_encoding_and_alt_uid_match_the_grafana_library(patch):
    recorded = fixture(f"grafana_dashboard/provider-{patch}.json")
    templates = json.loads(recorded["written"]["app_data"]["dashboards"])["templates"]
    [(template_id, template)] = templates.items()

    assert alt_uid(ROUTER.charm_name, template_id) == template["dashboard_alt_uid"]
    content = decompress(template["content"])
    assert decompress(compress(content)) == content
    assert json.loads(content) == recorded["written_content_decoded_by_recorder"][template_id]
