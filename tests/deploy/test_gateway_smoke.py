"""The gateway image, built and run for real with podman in front of a real vLLM server
(scripts/gateway_smoke.sh): under its size limit, no engine inside, serving only --upstream.

Marked ``container`` like the CPU image's smoke test (``-m 'not container'`` deselects it);
skipped only where podman cannot run.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.deploy.conftest import ROOT
from tests.deploy.test_container_smoke import SKIPPED, podman_unavailable

SCRIPT = ROOT / "scripts" / "gateway_smoke.sh"


@pytest.mark.container
@pytest.mark.timeout(1800)
def test_gateway_image_is_small_and_serves_through_vllm(capsys: pytest.CaptureFixture[str]) -> None:
    reason = podman_unavailable()
    if reason:
        pytest.skip(reason)
    result = subprocess.run(
        ["bash", str(SCRIPT)],
        capture_output=True,
        text=True,
        timeout=1700,
        check=False,
        env={**os.environ, "QUORUM_SMOKE_PYTHON": sys.executable},
    )
    output = result.stdout + result.stderr
    if result.returncode == SKIPPED:
        pytest.skip(output.strip().splitlines()[-1])
    failures = [line for line in output.splitlines() if "FAIL:" in line]
    assert result.returncode == 0, "\n".join([*failures, output[-5000:]])
    assert "image size:" in result.stdout and "ready after:" in result.stdout
    with capsys.disabled():
        print("\n" + "\n".join(f"[gateway] {line}" for line in result.stdout.splitlines()))
