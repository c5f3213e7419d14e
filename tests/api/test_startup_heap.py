"""What start-up allocated is frozen out of the collector's full passes (as vLLM's server does):
a full collection over vLLM's and torch's heap stops the event loop for 0.3-3 s."""

from __future__ import annotations

import gc
from pathlib import Path

from server.engines.scripted import ScriptedEngine
from tests.inprocess import make_settings, serving


async def test_the_startup_heap_is_frozen_once_ready(tmp_path: Path) -> None:
    gc.unfreeze()  # whatever an earlier test's app froze
    assert gc.get_freeze_count() == 0
    async with serving(make_settings(tmp_path), ScriptedEngine()) as (_, http, _client):
        assert (await http.get("/ready")).status_code == 200
        assert gc.get_freeze_count() > 0
