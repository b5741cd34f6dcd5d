"""A small model of the Grafana dashboard JSON this project needs, and nothing more.

Panels are laid out in rows of two (or of a given width) automatically, ids are
assigned in order, and every query goes to the dashboard's ``$datasource``
variable, so one file works against any Prometheus Grafana knows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
GRID_WIDTH = 24
SCHEMA_VERSION = 39


@dataclass(frozen=True)
class Query:
    """One PromQL target of a panel; ``legend`` is Grafana's legendFormat."""

    expr: str
    legend: str = ""


@dataclass(frozen=True)
class Panel:
    """A time series (default) or stat panel: its title, queries and display unit."""

    title: str
    description: str
    queries: tuple[Query, ...]
    unit: str = "short"
    kind: str = "timeseries"
    width: int = 12
    height: int = 8
    stacked: bool = False
    max_value: float | None = None
    threshold: float | None = None
    worry: str = ""  # docs/monitoring.md's "when to worry"; not part of the JSON

    def to_json(self, panel_id: int, x: int, y: int) -> dict[str, Any]:
        defaults: dict[str, Any] = {"unit": self.unit}
        if self.max_value is not None:
            defaults["max"] = self.max_value
        if self.kind == "timeseries":
            defaults["custom"] = {"stacking": {"mode": "normal" if self.stacked else "none"}}
        if self.threshold is not None:
            defaults["thresholds"] = {
                "mode": "absolute",
                "steps": [
                    {"color": "green", "value": None},
                    {"color": "red", "value": self.threshold},
                ],
            }
            if self.kind == "timeseries":
                defaults["custom"]["thresholdsStyle"] = {"mode": "line"}
        return {
            "id": panel_id,
            "type": self.kind,
            "title": self.title,
            "description": self.description,
            "datasource": DATASOURCE,
            "gridPos": {"h": self.height, "w": self.width, "x": x, "y": y},
            "fieldConfig": {"defaults": defaults, "overrides": []},
            "options": _options(self.kind),
            "targets": [
                {
                    "datasource": DATASOURCE,
                    "refId": chr(ord("A") + i),
                    "expr": q.expr,
                    "legendFormat": q.legend or "__auto",
                    "range": True,
                }
                for i, q in enumerate(self.queries)
            ],
        }


def _options(kind: str) -> dict[str, Any]:
    if kind == "stat":
        return {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "colorMode": "value",
            "graphMode": "area",
            "textMode": "value_and_name",
        }
    return {
        "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
        "tooltip": {"mode": "multi", "sort": "desc"},
    }


@dataclass(frozen=True)
class Row:
    """A titled group of panels."""

    title: str
    panels: tuple[Panel, ...]


@dataclass(frozen=True)
class Variable:
    """A query variable: the values of ``source_label`` on ``selector``, with "All" as .*."""

    name: str
    label: str
    selector: str
    source_label: str

    @property
    def query(self) -> str:
        return f"label_values({self.selector}, {self.source_label})"

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "label": self.label,
            "type": "query",
            "datasource": DATASOURCE,
            "definition": self.query,
            "query": {"query": self.query, "refId": self.name},
            "includeAll": True,
            "multi": True,
            "allValue": ".*",
            "refresh": 2,
            "sort": 1,
            "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
            "hide": 0,
            "regex": "",
            "options": [],
        }


@dataclass
class Dashboard:
    """A whole dashboard: rows of panels and the variables its queries use."""

    uid: str
    title: str
    description: str
    rows: list[Row]
    variables: list[Variable] = field(default_factory=list)
    tags: tuple[str, ...] = ("infer",)

    def to_json(self) -> dict[str, Any]:
        return {
            "uid": self.uid,
            "title": self.title,
            "description": self.description,
            "tags": list(self.tags),
            "timezone": "browser",
            "editable": False,
            "graphTooltip": 1,
            "refresh": "30s",
            "schemaVersion": SCHEMA_VERSION,
            "version": 1,
            "time": {"from": "now-1h", "to": "now"},
            "templating": {
                "list": [_datasource_variable()] + [v.to_json() for v in self.variables]
            },
            "annotations": {"list": []},
            "panels": self._layout(),
        }

    def _layout(self) -> list[dict[str, Any]]:
        panels: list[dict[str, Any]] = []
        y = 0
        for row in self.rows:
            panels.append(
                {
                    "id": len(panels) + 1,
                    "type": "row",
                    "title": row.title,
                    "collapsed": False,
                    "panels": [],
                    "gridPos": {"h": 1, "w": GRID_WIDTH, "x": 0, "y": y},
                }
            )
            y += 1
            x, line_height = 0, 0
            for panel in row.panels:
                if x + panel.width > GRID_WIDTH:
                    x, y, line_height = 0, y + line_height, 0
                panels.append(panel.to_json(len(panels) + 1, x, y))
                x += panel.width
                line_height = max(line_height, panel.height)
            y += line_height
        return panels


def _datasource_variable() -> dict[str, Any]:
    return {
        "name": "datasource",
        "label": "Data source",
        "type": "datasource",
        "query": "prometheus",
        "current": {},
        "hide": 0,
        "refresh": 1,
        "regex": "",
        "options": [],
    }
