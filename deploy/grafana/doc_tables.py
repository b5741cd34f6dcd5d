"""The tables of docs/monitoring.md, made from the dashboards and rules themselves.

Each table sits between ``<!-- NAME:begin -->`` and ``<!-- NAME:end -->`` markers in
the document, so the prose around it is written by hand and the tables cannot drift
from the panels and rules they describe.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from deploy.grafana.builder import Dashboard

ROOT = Path(__file__).resolve().parents[2]
MONITORING_DOC = ROOT / "docs" / "monitoring.md"
RULES_DIR = ROOT / "deploy" / "prometheus" / "rules"
URGENCY = {
    "critical": "page: act now",
    "warning": "ticket: look within the working day",
}


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _untemplated(text: str) -> str:
    """An alert annotation with its Go-template parts as readable placeholders."""
    text = re.sub(r"\{\{\s*\$labels\.(\w+)\s*\}\}", r"{\1}", text)
    return re.sub(r"\{\{\s*\$value[^}]*\}\}", "{value}", text)


def _code(text: str) -> str:
    return f"`{_cell(text)}`"


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def panels_table(dashboard: Dashboard) -> str:
    rows = [
        (
            _cell(f"{row.title}: {panel.title}"),
            _cell(panel.description),
            "<br>".join(_code(q.expr) for q in panel.queries),
            _cell(panel.worry),
        )
        for row in dashboard.rows
        for panel in row.panels
    ]
    return _table(("panel", "what it shows", "query", "when to worry"), rows)


def _rules() -> list[dict]:
    return [
        rule
        for path in sorted(RULES_DIR.glob("*.yml"))
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
    ]


def alerts_table() -> str:
    rows = [
        (
            f"[{rule['alert']}](runbook.md#{rule['alert'].lower()})",
            _cell(_untemplated(rule["annotations"]["summary"])),
            _code(rule["expr"]),
            _cell(
                f"fires after {rule['for']}; {rule['labels']['severity']}, "
                f"{URGENCY[rule['labels']['severity']]}"
            ),
        )
        for rule in _rules()
        if "alert" in rule
    ]
    return _table(("alert", "what it shows", "query", "when to worry"), rows)


def recording_table() -> str:
    rows = [(_code(rule["record"]), _code(rule["expr"])) for rule in _rules() if "record" in rule]
    return _table(("recorded series", "expression"), rows)


def render_doc(text: str, dashboards: tuple[Dashboard, ...]) -> str:
    """``text`` with every marked table replaced by its current content."""
    tables = {f"panels-{d.uid}": panels_table(d) for d in dashboards}
    tables |= {"alerts": alerts_table(), "recording-rules": recording_table()}
    for name, table in tables.items():
        pattern = re.compile(rf"(<!-- {name}:begin -->\n).*?(<!-- {name}:end -->)", re.S)
        if not pattern.search(text):
            raise ValueError(f"docs/monitoring.md lacks the markers for {name}")
        text = pattern.sub(lambda m, t=table: m.group(1) + t + "\n" + m.group(2), text)
    return text
