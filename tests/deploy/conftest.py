"""Deployment artefacts: Dockerfiles, compose file, Kubernetes manifests, container smoke test."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# The linters come with the dev extra, so they sit next to the interpreter running the tests.
VENV_BIN = Path(sys.executable).parent


def pytest_configure(config: pytest.Config) -> None:
    """Register the marker that lets the slow container test be deselected (-m 'not container')."""
    config.addinivalue_line(
        "markers",
        "container: builds the CPU image with podman and runs it (minutes; -m 'not container')",
    )


def venv_tool(name: str) -> str:
    """The path of a dev-extra command-line tool, or a failure that says how to install it."""
    path = VENV_BIN / name
    if path.is_file():
        return str(path)
    found = shutil.which(name)
    if found:
        return found
    pytest.fail(f"{name} is missing: install the dev extra (pip install -e '.[dev]')")
