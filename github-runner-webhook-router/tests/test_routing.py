"""Routing table semantics and the YAML routing table format."""

from __future__ import annotations

import pytest
from webhook_router.errors import ConfigError
from webhook_router.routing import RoutingTable, parse_flavours, parse_label_list

TABLE = """
- small: [x64, small]
- large: [x64, large, jammy]
- arm: [ARM64]
- gpu: [x64, large, gpu]
"""


def table(default: str = "small", default_labels: str = "self-hosted,linux") -> RoutingTable:
    return RoutingTable(
        flavours=parse_flavours(TABLE, "FLASK_FLAVOURS"),
        default_flavour=default,
        default_labels=parse_label_list(default_labels),
    )


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        (["self-hosted", "linux", "x64", "small"], "small"),
        (["x64"], "small"),  # subset of several flavours: the first listed wins
        (["large"], "large"),
        (["x64", "large"], "large"),  # small lacks "large"; large is listed before gpu
        (["x64", "large", "gpu"], "gpu"),
        (["jammy", "large", "x64"], "large"),
        (["arm64"], "arm"),  # configured upper case, asked lower case
        (["SELF-HOSTED", "Linux", "X64", "Small"], "small"),  # job labels in any case
        (["self-hosted", "linux"], "small"),  # only default labels: default flavour
        ([], "small"),
        (["self-hosted"], "small"),
        (["x64", "small", "large"], None),  # no flavour has all three
        (["gpu", "jammy"], None),
        (["ubuntu-latest"], None),
        (["self-hosted", "windows"], None),
    ],
)
def test_route_picks_first_flavour_whose_labels_include_the_jobs(
    labels: list[str], expected: str | None
) -> None:
    assert table().route(labels) == expected


def test_route_sends_default_label_only_jobs_to_the_configured_default_flavour() -> None:
    assert table(default="arm").route(["self-hosted", "linux"]) == "arm"


def test_route_keeps_labels_that_are_not_configured_defaults() -> None:
    routing = table(default_labels="self-hosted")
    assert routing.route(["self-hosted", "linux"]) is None
    assert routing.route(["self-hosted"]) == "small"


def test_route_with_no_default_labels_routes_every_label() -> None:
    assert table(default_labels="").route(["self-hosted"]) is None


def test_parse_flavours_keeps_order_and_lowercases_labels() -> None:
    flavours = parse_flavours(TABLE, "FLASK_FLAVOURS")
    assert [flavour.name for flavour in flavours] == ["small", "large", "arm", "gpu"]
    assert flavours[2].labels == frozenset({"arm64"})


def test_parse_label_list_ignores_blanks_and_case() -> None:
    assert parse_label_list(" Self-Hosted, ,LINUX ,") == frozenset({"self-hosted", "linux"})


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("- a: [x]\n- a: [y]", "more than once"),
        ("small: [x64]", "non-empty YAML list"),
        ("[]", "non-empty YAML list"),
        ("'just text'", "non-empty YAML list"),
        ("- small: [x64]\n  large: [x64]", "exactly one key"),
        ("- small", "exactly one key"),
        ("- small: x64", "list of non-empty strings"),
        ("- small: [x64, 2]", "list of non-empty strings"),
        ("- small: [x64, '']", "list of non-empty strings"),
        ("- small: null", "list of non-empty strings"),
        ("- 'bad name!': [x64]", "flavour name"),
        ("- 12: [x64]", "flavour name"),
        ("- small: [x64", "not valid YAML"),
    ],
)
def test_parse_flavours_rejects_malformed_tables_naming_the_variable(
    text: str, problem: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_flavours(text, "FLASK_FLAVOURS")
    assert caught.value.message.startswith("FLASK_FLAVOURS")
    assert problem in caught.value.message
