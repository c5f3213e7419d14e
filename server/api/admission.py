"""A request's weight in samples, read from its JSON body: what admission control counts.

Work is counted in samples, the engine's unit: a chat request with ``n=4`` weighs 4, a precise
request with ``samples=8`` weighs 8, a completions request prompts x n. The weight is bounded
by the server's caps (a request past them is refused with 400 later, by validation), and
nonsense weighs 1: weighing never refuses anything itself. The mode it reads also labels the
request's metrics. ``server.api.middleware.admission`` admits or refuses by it.
"""

from __future__ import annotations

from typing import Any

from server.runtime.settings import Settings

MODE_ROUTES = {"/v1/precise": "precise", "/v1/creative": "creative"}


def _positive_int(value: Any, default: int = 1) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return value
    return default


def request_mode(path: str, body: dict[str, Any]) -> str:
    """The mode a request asks for: by route, else by the model name's suffix."""
    if path in MODE_ROUTES:
        return MODE_ROUTES[path]
    model = body.get("model")
    if isinstance(model, str):
        suffix = model.rpartition(":")[2] if ":" in model else ""
        if suffix in ("creative", "precise"):
            return suffix
    return "plain"


def request_weight(path: str, body: dict[str, Any], settings: Settings) -> int:
    """Samples a request will ask the engine for, bounded by the server's caps (a request past
    them is refused with 400 later, by validation)."""
    if request_mode(path, body) == "precise":
        return min(_positive_int(body.get("samples")), settings.max_samples)
    n = _positive_int(body.get("n"))
    prompt = body.get("prompt")
    prompts = len(prompt) if path == "/v1/completions" and isinstance(prompt, list) else 1
    return min(n * max(prompts, 1), settings.max_n)
