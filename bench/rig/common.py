"""Options every scenario shares, and the model and folders they resolve to."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from bench.rig.systems import Setup, run_dir

TINY = "tiny"
TINY_NAME = "tiny-llama"
CHAT = "/v1/chat/completions"
PRECISE = "/v1/precise"


def add_common(parser: argparse.ArgumentParser) -> None:
    """Model, folders, time budget, output."""
    parser.add_argument(
        "--model",
        default=None,
        help="Hugging Face model folder; 'tiny' for the tiny random Llama (smoke runs); "
        "default: the embedded SmolLM2-135M-Instruct",
    )
    parser.add_argument("--served-name", default=None, help="model name (default: from --model)")
    parser.add_argument("--max-model-len", type=int, default=1024)
    parser.add_argument(
        "--budget-s",
        type=float,
        default=3600.0,
        help="time budget for the measurements; past it no new round starts (default 3600)",
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    parser.add_argument("--logs", type=Path, default=None, help="folder for server logs")
    parser.add_argument(
        "--switch-pause",
        type=float,
        default=1.5,
        help="seconds to wait before a request to another engine than the last (default 1.5)",
    )
    parser.add_argument(
        "--quorum-arg",
        action="append",
        default=[],
        help="extra flag for every started `quorum serve` (repeat: --quorum-arg=--deterministic)",
    )


def served_name(args: Any) -> str:
    """The model name the servers answer to, without preparing the model (a server the user
    runs needs only the name)."""
    from modelprep.embedded import DEFAULT_MODEL_NAME

    if args.served_name:
        return str(args.served_name)
    if args.model == TINY:
        return TINY_NAME
    return DEFAULT_MODEL_NAME if args.model is None else Path(args.model).name


def setup_from(args: Any) -> Setup:
    """Resolve the model (preparing the embedded or tiny one if needed) and a run folder."""
    from modelprep import default_cache_dir, prepare_embedded_model

    cache = default_cache_dir()
    if args.model == TINY:
        from modelprep.tiny import build_tiny_model

        model = build_tiny_model(cache / "test-models" / "tiny-llama")
    elif args.model is None:
        model = prepare_embedded_model(cache)
    else:
        model = Path(args.model)
    return Setup(
        model_dir=model,
        served_name=served_name(args),
        max_model_len=args.max_model_len,
        run_dir=run_dir(args.logs),
        cache_dir=cache,
        quorum_args=tuple(args.quorum_arg),
    )


def chat_body(model: str, prompt: str, max_tokens: int, **extra: Any) -> dict[str, Any]:
    """An OpenAI chat request; temperature 0 unless ``extra`` says otherwise."""
    body: dict[str, Any] = {
        "model": model,
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": max_tokens,
        "temperature": 0.0,
    }
    body.update(extra)
    return body


def precise_body(prompt: str, samples: int, max_tokens: int, **extra: Any) -> dict[str, Any]:
    """A ``/v1/precise`` request."""
    body: dict[str, Any] = {
        "messages": [{"role": "user", "content": prompt}],
        "samples": samples,
        "max_tokens": max_tokens,
    }
    body.update(extra)
    return body


def message_text(payload: dict[str, Any] | None) -> str | None:
    """The first choice's text of a chat completion (None if there is none)."""
    if not isinstance(payload, dict):
        return None
    choices = payload.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        return None
    message = choices[0].get("message")
    content = message.get("content") if isinstance(message, dict) else None
    return content if isinstance(content, str) else None
