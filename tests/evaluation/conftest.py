"""The evaluation harness's end-to-end tests run the real app on a scripted engine."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from server.engines.scripted import Script


def scripted_app(script: Script, cache_dir: Path) -> Any:
    """The real app (routes, validation, precise service) on a scripted engine: no model."""
    from server.api.app import create_app
    from server.engines.scripted import ScriptedEngine
    from server.runtime.settings import Settings

    settings = Settings(served_name="scripted-model", cache_dir=cache_dir, max_samples=64)
    return create_app(settings, ScriptedEngine(script))
