"""Write the dashboards as JSON and docs/monitoring.md's tables, or check they are current.

python -m deploy.grafana.generate          # writes dashboards/*.json and the doc's tables
python -m deploy.grafana.generate --check  # exits 1 when a file is missing or stale
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from deploy.grafana import doc_tables
from deploy.grafana.builder import Dashboard
from deploy.grafana.overview import OVERVIEW

DASHBOARDS_DIR = Path(__file__).resolve().parent / "dashboards"
MONITORING_DOC = doc_tables.MONITORING_DOC
DASHBOARDS: tuple[Dashboard, ...] = (OVERVIEW,)


def render(dashboard: Dashboard) -> str:
    """The file's exact text: stable key order and indentation, so diffs stay readable."""
    return json.dumps(dashboard.to_json(), indent=2, sort_keys=True) + "\n"


def rendered_files() -> dict[Path, str]:
    """Every generated file and its text: the dashboards, and the doc with fresh tables."""
    files = {DASHBOARDS_DIR / f"{d.uid}.json": render(d) for d in DASHBOARDS}
    files[MONITORING_DOC] = doc_tables.render_doc(MONITORING_DOC.read_text(), DASHBOARDS)
    return files


def stale_files() -> list[Path]:
    """Files whose committed text differs from what the code generates now."""
    return [
        path
        for path, text in rendered_files().items()
        if not path.exists() or path.read_text() != text
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if a file is stale")
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_files()
        for path in stale:
            print(f"stale: {path} (run `make dashboards`)", file=sys.stderr)
        return 1 if stale else 0
    DASHBOARDS_DIR.mkdir(parents=True, exist_ok=True)
    for path, text in rendered_files().items():
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
            print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
