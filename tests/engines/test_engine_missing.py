"""A slim install (no vLLM, no torch, no transformers: the gateway image) asked for the in-process
engine says which extra to install, in one line, with exit code 2; asked to serve through
upstreams it needs none of them."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from server.engines.factory import ENGINE_MISSING, engine_missing
from server.runtime.settings import Settings

# What the base install leaves out (the cpu/cuda and models extras bring them).
ENGINE_ONLY = ("vllm", "torch", "transformers", "tokenizers", "gguf", "accelerate", "safetensors")


def run_slim(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """``quorum <args>`` in a child where the engine-only packages cannot be imported."""
    code = textwrap.dedent(
        f"""
        import sys
        for name in {ENGINE_ONLY!r}:
            sys.modules[name] = None  # import fails, find_spec answers None: as if absent
        from quorum.cli import main
        code = main({args!r})
        loaded = sorted(n for n in {ENGINE_ONLY!r} if sys.modules.get(n) is not None)
        print("loaded:", loaded)
        sys.exit(code)
        """
    )
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parents[2],
        env={"PATH": "/usr/bin:/bin", "QUORUM_CACHE_DIR": str(tmp_path), "HOME": str(tmp_path)},
        check=False,
    )


def test_in_process_engine_without_vllm_is_one_line_naming_the_extra(tmp_path: Path) -> None:
    result = run_slim(["serve", "--port", "0"], tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == [f"quorum serve: {ENGINE_MISSING}"]
    assert "quorum[cpu]" in result.stderr and "--upstream" in result.stderr
    assert result.stdout.strip() == "loaded: []", "nothing heavy was imported on the way"


def test_a_model_flag_does_not_change_the_answer(tmp_path: Path) -> None:
    result = run_slim(["serve", "--model", str(tmp_path), "--served-name", "m"], tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == [f"quorum serve: {ENGINE_MISSING}"]


@pytest.mark.parametrize(
    ("overrides", "vllm_installed", "expected"),
    [
        ({}, False, ENGINE_MISSING),
        ({}, True, None),
        ({"upstreams": ["http://127.0.0.1:9/v1"]}, False, None),
        ({"upstreams": ["http://127.0.0.1:9/v1"]}, True, None),
        ({"test_engine": "scripted"}, False, None),
    ],
    ids=["slim", "full", "slim-upstream", "full-upstream", "slim-scripted"],
)
def test_engine_missing_only_when_the_in_process_engine_is_asked_for(
    overrides: dict[str, object],
    vllm_installed: bool,
    expected: str | None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if vllm_installed:
        if importlib.util.find_spec("vllm") is None:
            pytest.skip("vLLM is not installed here")
    else:
        monkeypatch.setitem(sys.modules, "vllm", None)
    settings = Settings(cache_dir=tmp_path, **overrides)  # type: ignore[arg-type]
    assert engine_missing(settings) == expected
