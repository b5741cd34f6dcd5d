"""Prometheus recording and alert rules: checked and unit-tested by the real promtool.

promtool comes with Debian's `prometheus` package (`make setup` installs it); a
missing promtool fails these tests rather than skipping them.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from deploy.procs import ROOT, binary

RULES_DIR = ROOT / "deploy" / "prometheus" / "rules"
UNIT_TESTS_DIR = ROOT / "deploy" / "prometheus" / "tests"
RUNBOOK = ROOT / "docs" / "runbook.md"
DURATION_PART = re.compile(r"(\d+)(ms|s|m|h|d|w|y)")
SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}


def rule_files() -> list[Path]:
    return sorted(RULES_DIR.glob("*.yml"))


def unit_test_files() -> list[Path]:
    return sorted(UNIT_TESTS_DIR.glob("*.test.yml"))


def alert_rules() -> list[dict]:
    return [
        rule
        for path in rule_files()
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
        if "alert" in rule
    ]


def seconds(duration: str) -> float:
    """A Prometheus duration such as ``1d4h30m`` in seconds."""
    parts = DURATION_PART.findall(duration)
    assert "".join(n + u for n, u in parts) == duration, f"not a duration: {duration!r}"
    return sum(int(n) * SECONDS[u] for n, u in parts)


def github_anchor(heading: str) -> str:
    slug = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return slug.replace(" ", "-")


def promtool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [binary("promtool"), *args], cwd=ROOT, capture_output=True, text=True, check=False
    )


def test_rule_files_exist_for_recording_and_alerting():
    names = {path.name for path in rule_files()}
    assert {"infer-recording.yml", "infer-alerts.yml"} <= names


def test_promtool_check_rules_accepts_every_rule_file():
    result = promtool("check", "rules", *map(str, rule_files()))
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_unit_tests_pass():
    result = promtool("test", "rules", *map(str, unit_test_files()))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(unit_test_files())


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda rule: rule["alert"])
def test_alert_carries_severity_summary_description_and_runbook(rule):
    assert rule["labels"]["severity"] in {"critical", "warning"}
    for key in ("summary", "description", "runbook_url"):
        assert rule["annotations"].get(key, "").strip(), f"{rule['alert']} lacks {key}"


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda rule: rule["alert"])
def test_alert_runbook_url_points_at_a_heading_of_the_runbook(rule):
    path, _, anchor = rule["annotations"]["runbook_url"].partition("#")
    assert path == "docs/runbook.md"
    headings = [
        line.lstrip("#") for line in RUNBOOK.read_text().splitlines() if line.startswith("#")
    ]
    assert anchor in {github_anchor(h) for h in headings}, f"no heading for #{anchor}"


def firing_and_silent_times(alertname: str) -> list[tuple[set[float], set[float], float]]:
    """Per unit test: the times the alert is expected firing, silent, and the interval."""
    found = []
    for path in unit_test_files():
        document = yaml.safe_load(path.read_text())
        interval = seconds(document.get("evaluation_interval", "1m"))
        for test in document["tests"]:
            checks = [c for c in test.get("alert_rule_test", []) if c["alertname"] == alertname]
            firing = {seconds(c["eval_time"]) for c in checks if c.get("exp_alerts")}
            silent = {seconds(c["eval_time"]) for c in checks if not c.get("exp_alerts")}
            found.append((firing, silent, interval))
    return found


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda rule: rule["alert"])
def test_alert_is_unit_tested_silent_just_before_and_firing_just_after_its_for_window(rule):
    hold = seconds(rule.get("for", "0s"))
    assert hold > 0, f"{rule['alert']} has no for: window"
    both_sides = [
        firing_time
        for firing, silent, interval in firing_and_silent_times(rule["alert"])
        for firing_time in firing
        if firing_time - interval in silent and firing_time >= hold
    ]
    assert both_sides, f"{rule['alert']}: no test checks one evaluation before and at firing"


def test_every_unit_tested_alert_exists():
    known = {rule["alert"] for rule in alert_rules()}
    for path in unit_test_files():
        for test in yaml.safe_load(path.read_text())["tests"]:
            for check in test.get("alert_rule_test", []):
                assert check["alertname"] in known, f"{path.name}: {check['alertname']}"
