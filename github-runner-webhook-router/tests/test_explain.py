"""The explain command: the flavour, the rule that chose it, or why none, from the environment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import FIXTURES, AppFactory, Poster, Reader, job_body
from webhook_router.explain import main

ROOT = Path(__file__).parent.parent
TABLE = "- small: [x64, small]\n- large: [x64, large, jammy]\n- arm: [ARM64]"
ENV = {"FLASK_FLAVOURS": TABLE}


def run(capsys: pytest.CaptureFixture[str], *argv: str, **env: str) -> tuple[int, str, str]:
    code = main(list(argv), {**ENV, **env})
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_explains_the_first_matching_item_and_the_labels_routed_on(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run(capsys, "--labels", "self-hosted,linux,X64,large")

    assert code == 0
    assert out.splitlines() == [
        "labels: self-hosted, linux, X64, large",
        "routed on: large, x64",
        "flavour: large",
        "rule: item 2 of FLASK_FLAVOURS, large: [jammy, large, x64], is the first that has"
        " every routed label",
    ]


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        (
            "self-hosted,linux",
            {
                "flavour": "arm",
                "position": None,
                "reason": None,
                "routed_labels": [],
                "rule": "no labels left once the default labels (linux, self-hosted) are"
                " removed: the default flavour arm",
            },
        ),
        (
            "x64,gpu",
            {
                "flavour": None,
                "position": None,
                "reason": "unknown_label",
                "routed_labels": ["gpu", "x64"],
                "rule": "unknown_label: no flavour lists gpu",
            },
        ),
        (
            "small,large",
            {
                "flavour": None,
                "position": None,
                "reason": "no_flavour_has_all_labels",
                "routed_labels": ["large", "small"],
                "rule": "no_flavour_has_all_labels: every label is some flavour's, none has all:"
                " small lacks large; large lacks small; arm lacks large, small",
            },
        ),
        (
            "X64",
            {
                "flavour": "small",
                "position": 1,
                "reason": None,
                "routed_labels": ["x64"],
                "rule": "item 1 of FLASK_FLAVOURS, small: [small, x64], is the first that has"
                " every routed label",
            },
        ),
    ],
)
def test_json_output_gives_flavour_rule_and_bounded_reason(
    capsys: pytest.CaptureFixture[str], labels: str, expected: dict[str, object]
) -> None:
    code, out, _ = run(capsys, "--labels", labels, "--json", FLASK_DEFAULT_FLAVOUR="arm")

    assert code == 0
    document = json.loads(out)
    assert {key: document[key] for key in expected} == expected
    assert document["repository"] is None


def test_explains_a_stored_payload_with_its_repository_against_the_allow_list(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    stored = tmp_path / "delivery.json"
    stored.write_bytes(job_body(["self-hosted", "jammy", "X64"]))

    code, out, _ = run(
        capsys, "--payload", str(stored), "--json", FLASK_ALLOWED_REPOSITORIES="octo-org"
    )

    assert code == 0
    document = json.loads(out)
    assert document["flavour"] == "large"
    assert document["repository"] == "Codertocat/Hello-World"
    assert document["repository_allowed"] is False
    assert document["action"] == "queued"


def test_explains_a_recorded_github_payload_as_text(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run(capsys, "--payload", str(FIXTURES / "workflow_job.waiting.json"))

    assert code == 0
    assert "flavour: (none: answered 200, not queued)" in out
    assert "rule: unknown_label: no flavour lists k8s" in out
    assert "repository: lineville/elastic-machines-testing (allowed)" in out
    assert "action: waiting (only queued jobs are published to the flavour)" in out


def test_invalid_configuration_exits_1_naming_the_variable(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, _, err = run(capsys, "--labels", "x64", FLASK_DEFAULT_FLAVOUR="medium")

    assert code == 1
    assert "FLASK_DEFAULT_FLAVOUR:" in err


@pytest.mark.parametrize("content", [b"not json", b'{"action": "queued"}', None])
def test_unreadable_or_invalid_payload_exits_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, content: bytes | None
) -> None:
    stored = tmp_path / "delivery.json"
    if content is not None:
        stored.write_bytes(content)

    code, out, err = run(capsys, "--payload", str(stored))

    assert code == 2
    assert out == ""
    assert err


@pytest.mark.parametrize(
    "labels",
    [["self-hosted", "x64"], ["X64", "LARGE"], ["arm64"], ["gpu"], ["small", "large"], []],
)
def test_explain_names_the_queue_the_router_publishes_to(
    make_app: AppFactory,
    post: Poster,
    read_queue: Reader,
    capsys: pytest.CaptureFixture[str],
    flavour: str,
    labels: list[str],
) -> None:
    """Same configuration, same labels: explain's flavour is where the job lands (or nowhere)."""
    table = f"- {flavour}: [x64, small]\n- {flavour}-large: [x64, large]\n- {flavour}-arm: [arm64]"
    app = make_app(FLASK_FLAVOURS=table)
    post(app.test_client(), job_body(labels))

    code = main(["--labels", ",".join(labels), "--json"], {"FLASK_FLAVOURS": table})
    explained = json.loads(capsys.readouterr().out)["flavour"]

    assert code == 0
    landed = [
        name
        for name in (flavour, f"{flavour}-large", f"{flavour}-arm")
        if read_queue(app, name, wait=0.05)
    ]
    assert landed == ([explained] if explained else [])


def test_runs_as_a_module_with_the_services_environment() -> None:
    env = {
        key: value for key, value in os.environ.items() if not key.startswith(("FLASK_", "MONGO"))
    }
    env["FLASK_FLAVOURS"] = TABLE
    result = subprocess.run(
        [sys.executable, "-m", "webhook_router.explain", "--labels", "arm64", "--json"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["flavour"] == "arm"


def test_reads_the_payload_from_stdin_for_callers_without_a_file() -> None:
    """The charm action passes the stored body on stdin to the workload's command."""
    env = {
        key: value for key, value in os.environ.items() if not key.startswith(("FLASK_", "MONGO"))
    }
    env["FLASK_FLAVOURS"] = TABLE
    result = subprocess.run(
        [sys.executable, "-m", "webhook_router.explain", "--payload", "-", "--json"],
        cwd=ROOT,
        env=env,
        input=job_body(["self-hosted", "arm64"]),
        capture_output=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["flavour"] == "arm"
