"""Request handling on any engine, with no HTTP framework: plan, then serve.

A route makes a ``Plan`` (``plan``: every cap checked before the response starts), and
``serve`` runs it: a whole response as a wire model, or a stream as SSE event strings.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from decoding.engine import Engine
from decoding.judge import Judge
from server.serving import chat, completions, precise
from server.serving.plan import Mode, Plan, RequestBody, plan, resolve_mode, route_mode
from server.wire.chat import ChatCompletion
from server.wire.completions import Completion
from server.wire.precise import PreciseAnswer

Served = PreciseAnswer | ChatCompletion | Completion | AsyncIterator[str]

__all__ = ["Mode", "Plan", "RequestBody", "Served", "plan", "resolve_mode", "route_mode", "serve"]


async def serve(the_plan: Plan, engine: Engine, judge: Judge | None = None) -> Served:
    """Run a plan on the engine: whole, or as SSE events (primed where the engine can fail
    before any output, so such failures still get an error status); precise mode judges its
    answers with ``judge`` (the server's bounded pool; None: in process, trusted input only)."""
    if the_plan.mode == "precise":
        if the_plan.stream:
            return precise.stream(engine, the_plan, judge)
        return await precise.complete(engine, the_plan, judge)
    if the_plan.surface == "completions":
        if the_plan.stream:
            return await completions.stream(engine, the_plan)
        return await completions.complete(engine, the_plan)
    if the_plan.stream:
        return await chat.stream(engine, the_plan)
    return await chat.complete(engine, the_plan)
