"""Builds a tiny random Llama with a real tokenizer and chat template, for protocol tests.

Why: end-to-end tests need a model the real engine loads in seconds, built offline and identically
on every machine (fixed seeds, a built-in training text), not a download. Its output is noise; only
the protocol around it is under test. Shapes respect vLLM's CPU attention (head_dim >= 32).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from modelprep.publish import build_once

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast

TINY_MODEL_VERSION = 1
SEED = 1234
VOCAB_SIZE = 768
MAX_MODEL_LEN = 2048
BOS_TOKEN = "<|endoftext|>"
IM_START = "<|im_start|>"
EOS_TOKEN = "<|im_end|>"
PAD_TOKEN = "<|pad|>"
SPECIAL_TOKENS = (BOS_TOKEN, IM_START, EOS_TOKEN, PAD_TOKEN)
# ChatML, as SmolLM2 and Qwen use, so the tiny model exercises the same prompt path.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

__all__ = ["CHAT_TEMPLATE", "MAX_MODEL_LEN", "build_tiny_model"]

_WORDS = (
    "the a an one two three four five six seven eight nine ten answer question number sum total "
    "is are was be add plus minus times equals what how many much so then therefore because final "
    "model server engine vote sample token text reply user assistant system think step first next "
    "last apple apples box boxes cat dog bird tree river stone light water red green blue small "
    "big left right up down in on of to and or not with for from by at as it this that we you they"
)


def _training_text(seed: int = SEED) -> Iterator[str]:
    """A few KB of English-like lines, arithmetic and chat turns; the same on every run."""
    rng = random.Random(seed)
    vocabulary = _WORDS.split(" ")
    for _ in range(400):
        words = [rng.choice(vocabulary) for _ in range(rng.randint(4, 14))]
        yield " ".join(words).capitalize() + rng.choice((".", "?", "!", ","))
    for _ in range(300):
        a, b = rng.randint(0, 999), rng.randint(0, 999)
        yield f"What is {a} + {b}? {a} + {b} = {a + b}. The answer is {a + b}."
    for _ in range(50):
        question = " ".join(rng.choice(vocabulary) for _ in range(6))
        user = f"{IM_START}user\n{question}?{EOS_TOKEN}\n"
        yield f"{user}{IM_START}assistant\n{question}.{EOS_TOKEN}\n"


def _train_tokenizer() -> PreTrainedTokenizerFast:
    """Train a byte-level BPE offline and wrap it as a transformers fast tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        min_frequency=2,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(_training_text(), trainer)
    return PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=backend,
        bos_token=BOS_TOKEN,
        eos_token=EOS_TOKEN,
        pad_token=PAD_TOKEN,
        model_max_length=MAX_MODEL_LEN,
        chat_template=CHAT_TEMPLATE,
    )


def _write_tiny_model(dest: Path) -> None:
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    tokenizer = _train_tokenizer()
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,  # grouped-query attention, as real models use
        head_dim=32,
        max_position_embeddings=MAX_MODEL_LEN,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
        dtype="float32",
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(SEED)
        model = LlamaForCausalLM(config)  # type: ignore[no-untyped-call]
    # In place: the process-wide default dtype might not be float32.
    model.float()  # type: ignore[no-untyped-call]
    # Only token ids: sampling fields here would become vLLM's defaults (generation_config="auto").
    model.generation_config = GenerationConfig(  # type: ignore[no-untyped-call]
        bos_token_id=config.bos_token_id,
        eos_token_id=config.eos_token_id,
        pad_token_id=config.pad_token_id,
    )
    model.save_pretrained(dest)
    tokenizer.save_pretrained(dest)


def build_tiny_model(dest: Path) -> Path:
    """Build the tiny model into ``dest`` once (atomically) and return ``dest``; a few seconds."""
    meta: dict[str, object] = {"tiny_model_version": TINY_MODEL_VERSION, "seed": SEED}
    return build_once(Path(dest), _write_tiny_model, meta)
