"""PNG plots of a report (matplotlib, Agg backend, no display needed).

- ``accuracy_vs_n.png``: each vote rule's accuracy at N = 1, 2, 4, 8, 16, with Wilson 95%
  intervals, and greedy as a band.
- ``samples_used.png``: accuracy against mean samples used: fixed N and each adaptive rule.
- ``precision_coverage.png``: the abstention curve of the default vote (min_agreement swept).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

PLOTTED_RULES = (
    "majority",
    "majority-fallback",
    "logprob",
    "cisc",
    "top90",
    "greedy+vote",
    "deepconf-lowest-group",
    "deepconf-tail",
)


def _errors(entries: list[Mapping[str, Any]]) -> tuple[list[float], list[list[float]]]:
    values = [e["rate"] for e in entries]
    low = [max(0.0, v - e["ci95"][0]) for v, e in zip(values, entries, strict=True)]
    high = [max(0.0, e["ci95"][1] - v) for v, e in zip(values, entries, strict=True)]
    return values, [low, high]


def _greedy_band(axes: Any, report: Mapping[str, Any]) -> None:
    greedy = report["baselines"]["greedy"]
    if greedy is None or greedy not in report["systems"]:
        return
    accuracy = report["systems"][greedy]["accuracy"]
    if accuracy["rate"] is None:
        return
    axes.axhline(
        accuracy["rate"], color="grey", linestyle="--", label=f"{greedy} (1 greedy sample)"
    )
    axes.axhspan(*accuracy["ci95"], color="grey", alpha=0.15)


def accuracy_vs_n(report: Mapping[str, Any], path: Path) -> None:
    """Accuracy against N per (config, rule), with intervals."""
    figure, axes = plt.subplots(figsize=(8, 5))
    series: dict[str, list[tuple[int, Mapping[str, Any]]]] = {}
    for system in report["systems"].values():
        if (
            system["rule"] in PLOTTED_RULES
            and system["n"]
            and system["accuracy"]["rate"] is not None
        ):
            label = f"{system['config']} {system['rule']}"
            caps = report["configs"][system["config"]]["samples_per_item"]
            if caps > 1:
                series.setdefault(label, []).append((system["n"], system["accuracy"]))
    for offset, (label, points) in enumerate(sorted(series.items())):
        points.sort(key=lambda p: p[0])
        ns = [n * (1 + 0.02 * offset) for n, _ in points]
        values, errors = _errors([a for _, a in points])
        axes.errorbar(ns, values, yerr=errors, marker="o", capsize=3, label=label)
    _greedy_band(axes, report)
    axes.set_xscale("log", base=2)
    ticks = sorted({n for points in series.values() for n, _ in points})
    axes.set_xticks(ticks, [str(n) for n in ticks])
    axes.set_xlabel("samples voted (N)")
    axes.set_ylabel("accuracy (Wilson 95%)")
    axes.set_title("Accuracy vs samples")
    axes.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def samples_used(report: Mapping[str, Any], path: Path) -> None:
    """Accuracy against mean samples used: fixed-N majority as a line, adaptive rules as marks."""
    figure, axes = plt.subplots(figsize=(8, 5))
    for config, cost in report["configs"].items():
        if cost["samples_per_item"] <= 1:
            continue
        systems = [s for s in report["systems"].values() if s["config"] == config]
        fixed = sorted((s for s in systems if s["rule"] == "majority"), key=lambda s: s["n"])
        if fixed:
            values, errors = _errors([s["accuracy"] for s in fixed])
            used = [s["samples_used"] for s in fixed]
            axes.errorbar(
                used,
                values,
                yerr=errors,
                marker="o",
                capsize=3,
                label=f"{config} majority, fixed N",
            )
        for system in systems:
            if system["rule"].startswith("adaptive") and system["accuracy"]["rate"] is not None:
                values, errors = _errors([system["accuracy"]])
                axes.errorbar(
                    [system["samples_used"]],
                    values,
                    yerr=errors,
                    marker="s",
                    capsize=3,
                    linestyle="none",
                    label=f"{config} {system['rule']}",
                )
    _greedy_band(axes, report)
    axes.set_xlabel("mean samples used per item")
    axes.set_ylabel("accuracy (Wilson 95%)")
    axes.set_title("Samples used per rule")
    axes.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def precision_coverage(report: Mapping[str, Any], path: Path) -> None:
    """Precision against coverage as min_agreement rises, per multi-sample config."""
    figure, axes = plt.subplots(figsize=(6, 5))
    for config, curve in report["abstention"].items():
        points = [p for p in curve if p["precision"]["rate"] is not None]
        coverage = [p["coverage"]["rate"] for p in points]
        values, errors = _errors([p["precision"] for p in points])
        axes.errorbar(coverage, values, yerr=errors, marker="o", capsize=3, label=config)
        for point, x, y in zip(points, coverage, values, strict=True):
            axes.annotate(
                f"{point['min_agreement']:g}",
                (x, y),
                fontsize="x-small",
                textcoords="offset points",
                xytext=(3, 3),
            )
    axes.set_xlabel("coverage (answered share)")
    axes.set_ylabel("precision (right among answered)")
    axes.set_xlim(0, 1.02)
    axes.set_title("Abstention: precision vs coverage (labels: min_agreement)")
    axes.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def write_plots(report: Mapping[str, Any], out: Path) -> list[str]:
    """Write the three plots into ``out``; return their file names."""
    plots = {
        "accuracy_vs_n.png": accuracy_vs_n,
        "samples_used.png": samples_used,
        "precision_coverage.png": precision_coverage,
    }
    for name, draw in plots.items():
        draw(report, out / name)
    return list(plots)
