"""The CPU image, built and run for real with podman (scripts/container_smoke.sh).

Slow (minutes: a build of the engine's 2.5 GB and a model load), so it is marked ``container``:
``-m 'not container'`` deselects it. Skipped only where podman cannot run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from tests.deploy.conftest import ROOT

SCRIPT = ROOT / "scripts" / "container_smoke.sh"
SKIPPED = 77  # the script's "podman cannot run here"


def podman_unavailable() -> str | None:
    """Why podman cannot run here, or None."""
    if not sys.platform.startswith("linux"):
        return "podman containers need Linux"
    if shutil.which("podman"):
        return None
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return "podman is not installed, and installing it needs root and apt-get"
    return None


@pytest.mark.container
@pytest.mark.timeout(3600)
def test_cpu_image_builds_runs_and_answers(capsys: pytest.CaptureFixture[str]) -> None:
    reason = podman_unavailable()
    if reason:
        pytest.skip(reason)
    result = subprocess.run(
        ["bash", str(SCRIPT)], capture_output=True, text=True, timeout=3500, check=False
    )
    output = result.stdout + result.stderr
    if result.returncode == SKIPPED:
        pytest.skip(output.strip().splitlines()[-1])
    assert result.returncode == 0, output[-6000:]
    with capsys.disabled():
        print("\n" + "\n".join(f"[container] {line}" for line in result.stdout.splitlines()))
