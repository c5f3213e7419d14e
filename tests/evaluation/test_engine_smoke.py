"""CI smoke: ``quorum eval`` run + report in-process on the real vLLM engine with a tiny model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evaluation.cli import main

pytestmark = pytest.mark.engine


def tiny_model() -> Path:
    """The tiny random Llama the e2e tests use (built locally in seconds)."""
    from modelprep import build_tiny_model, default_cache_dir

    return build_tiny_model(default_cache_dir() / "test-models" / "tiny-llama")


def test_run_and_report_on_the_real_engine(tmp_path: Path) -> None:
    out = tmp_path / "eval"
    code = main(
        [
            "all", "--in-process", "--model", str(tiny_model()), "--max-model-len", "512",
            "--limit", "3", "--no-progress",
            "--config", "samples=1 max_tokens=16 name=g",
            "--config", "samples=4 max_tokens=16 name=v4",
            "--out", str(out),
        ]
    )  # fmt: skip
    assert code == 0
    report = json.loads((out / "report.json").read_text())
    assert report["receipts"][0]["engine"] != "scripted"
    assert {c: v["items"] for c, v in report["configs"].items()} == {"g": 3, "v4": 3}
    assert report["systems"]["v4/majority@4"]["accuracy"]["n"] == 3
    assert all((out / name).exists() for name in report["plots"])
