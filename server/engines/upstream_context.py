"""When the upstream engine may skip its ``/tokenize`` round trip: a safe bound, and a cache.

vLLM's server shortens ``max_tokens`` silently to fit the context, so the upstream engine counts
each prompt with ``/tokenize`` first and answers 400 itself, like the in-process engine. That
round trip is needed only near the limit:

- **Bound.** Every token of the tokenizers vLLM serves spans at least one UTF-8 byte
  (byte-level BPE, SentencePiece with byte fallback, WordPiece), so a message's content adds at
  most one token per byte to what the chat template adds around it, plus one per message for a
  merge across its edges. The template's share is measured once per replica and sequence of
  roles, by counting the same roles with ``"x"`` as every content (at least one token each, so
  the measure is not below the template's share). A prompt whose bound plus ``max_tokens`` fits
  the context cannot overflow it: no round trip.
- **Cache.** Otherwise the exact count is kept by the prompt's digest (a bounded LRU per
  replica), so the rounds of an adaptive precise request and retried prompts count once.
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict

from decoding.engine import ChatPrompt, Prompt, TextPrompt

PLACEHOLDER = "x"
EDGE_SLACK = 1  # tokens per message: a merge across the content's edges
CACHE_SIZE = 1024

Shape = tuple[str, ...]


def shape(prompt: Prompt) -> Shape:
    """What the template's share depends on: the roles in order (a text prompt has none)."""
    if isinstance(prompt, ChatPrompt):
        return tuple(str(m.get("role", "")) for m in prompt.messages)
    return ()


def _contents(prompt: Prompt) -> list[str]:
    if isinstance(prompt, ChatPrompt):
        return [str(m.get("content") or "") for m in prompt.messages]
    return [prompt.text]


def probe(prompt: Prompt) -> Prompt:
    """The same roles with ``"x"`` as every content: its count bounds the template's share."""
    if isinstance(prompt, ChatPrompt):
        return ChatPrompt([{**m, "content": PLACEHOLDER} for m in prompt.messages])
    return TextPrompt(PLACEHOLDER)


def upper_bound(template_tokens: int, prompt: Prompt) -> int:
    """At most this many prompt tokens, given the template's share for the prompt's shape."""
    contents = _contents(prompt)
    content_bytes = sum(len(c.encode("utf-8", "surrogatepass")) for c in contents)
    return template_tokens + content_bytes + EDGE_SLACK * len(contents)


def digest(prompt: Prompt) -> str:
    """A key for the prompt's exact count (roles and contents, nothing else)."""
    payload = {"shape": list(shape(prompt)), "contents": _contents(prompt)}
    text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


class ContextCounts:
    """One replica's template shares by shape, and exact counts by prompt digest (LRU)."""

    def __init__(self, size: int = CACHE_SIZE) -> None:
        self._size = size
        self._templates: dict[Shape, int] = {}
        self._exact: OrderedDict[str, int] = OrderedDict()

    def template(self, prompt_shape: Shape) -> int | None:
        """The template's measured share for this shape, if measured."""
        return self._templates.get(prompt_shape)

    def learn_template(self, prompt_shape: Shape, tokens: int) -> None:
        """Record the probe's count; shapes are few, but kept bounded all the same."""
        if len(self._templates) >= self._size:
            self._templates.pop(next(iter(self._templates)))
        self._templates[prompt_shape] = tokens

    def exact(self, key: str) -> int | None:
        """A remembered exact count."""
        count = self._exact.get(key)
        if count is not None:
            self._exact.move_to_end(key)
        return count

    def remember(self, key: str, count: int) -> None:
        """Keep an exact count, dropping the least recently used past the size."""
        self._exact[key] = count
        self._exact.move_to_end(key)
        while len(self._exact) > self._size:
            self._exact.popitem(last=False)
