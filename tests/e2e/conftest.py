"""Real servers on the real vLLM CPU engine: one process per model per test session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from modelprep.embedded import DEFAULT_MODEL_NAME, default_cache_dir
from modelprep.tiny import build_tiny_model
from tests.e2e.server_process import ServerProcess

TINY = "tiny-llama"


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Logs and vLLM's temporary files for this session."""
    return tmp_path_factory.mktemp("e2e")


def _serve(args: list[str], run_dir: Path, name: str) -> Iterator[ServerProcess]:
    server = ServerProcess(args, run_dir / f"{name}.log", env={"TMPDIR": str(run_dir)})
    print(f"\n[e2e] {name} ready in {server.started_s:.1f} s")
    yield server
    code = server.stop()
    assert code == 0, f"{name} did not exit cleanly on SIGTERM ({code}):\n{server.log_tail()}"
    assert server.wait_group_gone(timeout=15.0), f"{name} left engine processes behind"


@pytest.fixture(scope="session")
def tiny_server(run_dir: Path) -> Iterator[ServerProcess]:
    """A server on a tiny random Llama built locally: protocol behaviour, fast."""
    model = build_tiny_model(default_cache_dir() / "test-models" / "tiny-llama")
    yield from _serve(
        ["--model", str(model), "--served-name", TINY, "--max-model-len", "512"], run_dir, TINY
    )


@pytest.fixture(scope="session")
def smol_server(run_dir: Path) -> Iterator[ServerProcess]:
    """A server on the embedded default model (SmolLM2-135M-Instruct), as a user starts it."""
    yield from _serve(["--max-model-len", "1024"], run_dir, DEFAULT_MODEL_NAME)


def _client(server: ServerProcess) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(
        api_key="unused", base_url=f"{server.base_url}/v1", max_retries=0, timeout=300
    ) as client:
        yield client


@pytest.fixture
def tiny(tiny_server: ServerProcess) -> Iterator[openai.OpenAI]:
    """The official client on the tiny-model server."""
    yield from _client(tiny_server)


@pytest.fixture
def smol(smol_server: ServerProcess) -> Iterator[openai.OpenAI]:
    """The official client on the embedded-model server."""
    yield from _client(smol_server)
