"""``GET /v1/models``: the served model and its mode aliases."""

from __future__ import annotations

from fastapi import APIRouter, Request

from server.api.deps import state
from server.wire.common import ModelCard, ModelList

router = APIRouter(prefix="/v1", tags=["openai"])


@router.get("/models", response_model=ModelList)
async def list_models(request: Request) -> ModelList:
    """The served model and its mode aliases."""
    current = state(request)
    name = current.settings.model_name
    return ModelList(
        data=[
            ModelCard(
                id=model_id, created=current.created, determinism=current.engine.info.determinism
            )
            for model_id in (name, f"{name}:creative", f"{name}:precise")
        ]
    )
