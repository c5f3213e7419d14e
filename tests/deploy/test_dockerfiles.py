"""The Dockerfiles pass hadolint at warning level and keep the properties the README promises."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from tests.deploy.conftest import ROOT, venv_tool

DOCKERFILES = [
    ROOT / "docker" / "Dockerfile",
    ROOT / "docker" / "Dockerfile.cpu",
    ROOT / "docker" / "Dockerfile.gateway",
]


def instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", dockerfile.read_text())
    pairs = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            pairs.append((keyword.upper(), rest.strip()))
    return pairs


def final_stage(dockerfile: Path) -> list[tuple[str, str]]:
    """The instructions of the last stage: what the image is."""
    pairs = instructions(dockerfile)
    start = max(i for i, (keyword, _) in enumerate(pairs) if keyword == "FROM")
    return pairs[start:]


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_hadolint_passes_at_warning_level(dockerfile: Path) -> None:
    result = subprocess.run(
        [venv_tool("hadolint"), "--failure-threshold", "warning", "--no-color", str(dockerfile)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_image_runs_quorum_serve_as_a_numeric_non_root_user(dockerfile: Path) -> None:
    stage = final_stage(dockerfile)
    users = [args for keyword, args in stage if keyword == "USER"]
    assert users, "the image must set a USER"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) != 0, f"USER must be a numeric non-root UID, got {uid!r}"
    entrypoints = [args for keyword, args in stage if keyword == "ENTRYPOINT"]
    assert entrypoints and json.loads(entrypoints[-1]) == ["quorum", "serve"]
    assert not [args for keyword, args in stage if keyword == "CMD"], "arguments come from the user"
    health = [args for keyword, args in stage if keyword == "HEALTHCHECK"]
    assert health and "/ready" in health[-1] and "/health" in health[-1]


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_ca_bundle_is_a_build_argument_only(dockerfile: Path) -> None:
    pairs = instructions(dockerfile)
    assert ("ARG", "PIP_CERT") in pairs
    for keyword, args in pairs:
        if keyword in ("ENV", "COPY", "ADD"):
            assert "PIP_CERT" not in args and ".crt" not in args, f"{keyword} {args}"


def test_build_context_ignore_files_keep_only_the_sources() -> None:
    for dockerfile in DOCKERFILES:
        lines = (ROOT / "docker" / f"{dockerfile.name}.dockerignore").read_text().splitlines()
        assert "*" in lines and "!server" in lines and "!decoding" in lines
        # The entry point is the quorum console script: its package must be in the image.
        assert "!quorum" in lines
        assert "COPY quorum /src/quorum" in [f"{k} {a}" for k, a in instructions(dockerfile)]


def test_gateway_image_installs_no_engine_and_no_extra() -> None:
    dockerfile = ROOT / "docker" / "Dockerfile.gateway"
    runs = " ".join(args for keyword, args in instructions(dockerfile) if keyword == "RUN")
    assert "vllm" not in runs.lower() and "torch" not in runs.lower()
    assert '["project"]["dependencies"]' in runs and "optional-dependencies" not in runs
    assert "pip install --no-deps /src" in runs, "Quorum itself adds no dependency"
