"""Which engine a server runs, from its settings: remote upstreams, the paced test engine, or
vLLM in this process (the default). Heavy imports happen only for the engine chosen."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from decoding.engine import ManagedEngine
from modelprep import prepare_embedded_model
from server.engines.paced import engine_for_tests
from server.runtime.settings import Settings


def model_folder(settings: Settings) -> Path:
    """The model folder to load: the user's, or the embedded default, prepared if missing."""
    if settings.model is not None:
        return Path(settings.model)
    return prepare_embedded_model(settings.cache_dir)


# A gateway-only install (no engine extra) serves with --upstream; say so in one line.
ENGINE_MISSING = (
    "the in-process engine needs vLLM: pip install 'quorum[cpu]' (or 'quorum[cuda]' on NVIDIA "
    "GPUs), or serve with --upstream URL"
)


def engine_missing(settings: Settings) -> str | None:
    """Why the engine these settings ask for cannot run in this install, or None: a slim
    install has no vLLM, and should say which extra to add instead of a traceback."""
    if settings.upstreams or settings.test_engine != "none":
        return None
    return ENGINE_MISSING if importlib.util.find_spec("vllm") is None else None


def build_engine(settings: Settings) -> ManagedEngine:
    """The engine these settings ask for (not started: the app's lifespan starts it)."""
    if settings.upstreams:
        from server.engines.upstream import UpstreamEngine

        return UpstreamEngine(settings)
    if (paced := engine_for_tests(settings)) is not None:
        return paced  # hidden test setting QUORUM_TEST_ENGINE=scripted: no model
    from server.engines.vllm_engine import VllmEngine

    return VllmEngine(settings, model_folder(settings))
