"""Verified against plain voting on the code set, through the harness and the real app: when
most samples are wrong code, the plain vote is wrong and the verified vote is right."""

from __future__ import annotations

import json
from pathlib import Path

from decoding.engine import ChatPrompt, Prompt, SamplingSpec
from evaluation.cli import main
from evaluation.configs import parse_config
from evaluation.items.store import load_items
from evaluation.results import ResultsFile
from evaluation.runner import run
from evaluation.targets import app_client
from tests.evaluation.conftest import scripted_app

CODE_ITEMS = [item for item in load_items(split="dev") if item.kind == "code"][:3]
WRONG = "def nothing():\n    return None\n"


def script(prompt: Prompt, spec: SamplingSpec, index: int) -> str:
    """Three samples in four write the same wrong code; the fourth writes the gold answer."""
    assert isinstance(prompt, ChatPrompt)
    item = next(i for i in CODE_ITEMS if i.question == prompt.messages[-1]["content"])
    return f"```python\n{item.answer if index % 4 == 3 else WRONG}```"


async def test_verified_voting_beats_plain_voting_on_wrong_majorities(tmp_path: Path) -> None:
    path = tmp_path / "results.jsonl"
    configs = [parse_config(s) for s in ("samples=4 name=plain", "samples=4 verify=true name=ver")]
    async with app_client(scripted_app(script, tmp_path / "cache")) as client:
        with ResultsFile(path) as file:
            summary = await run(client, CODE_ITEMS, configs, file, concurrency=2, progress=False)
    assert summary.answered == 2 * len(CODE_ITEMS)
    out = tmp_path / "report"
    assert main(["report", str(path), "--out", str(out)]) == 0
    systems = json.loads((out / "report.json").read_text())["systems"]
    assert systems["plain/server"]["accuracy"]["k"] == 0
    assert systems["ver/server"]["accuracy"]["k"] == len(CODE_ITEMS)
