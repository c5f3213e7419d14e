"""An opt-in line that asks the model to state its answer the way extraction reads it best.

Small models often end without a marked answer, and extraction then guesses (the result of the
last equation, the last number). Asking for "The answer is ..." — the marker extraction trusts
most after ``\\boxed{}`` — turns a guess into a reading. The instruction is appended to the last
user message (or to a raw prompt), so the conversation otherwise stays the client's.
"""

from __future__ import annotations

from decoding.engine import ChatPrompt, Prompt, TextPrompt
from decoding.equivalence import AnswerFormat

_WHAT: dict[AnswerFormat, str] = {
    "auto": "<answer>",
    "number": "<number>",
    "math": "<answer>",
    "choice": "<letter>",
    "text": "<answer>",
}


def answer_instruction(answer_format: AnswerFormat) -> str | None:
    """The line for a format, or None where extraction reads a block (code, JSON), not a line."""
    what = _WHAT.get(answer_format)
    return None if what is None else f"End with: The answer is {what}."


def with_answer_instruction(prompt: Prompt, answer_format: AnswerFormat) -> Prompt:
    """The prompt with the instruction on its own line after the last user turn."""
    line = answer_instruction(answer_format)
    if line is None:
        return prompt
    if isinstance(prompt, TextPrompt):
        return TextPrompt(f"{prompt.text}\n{line}")
    messages = [dict(m) for m in prompt.messages]
    for message in reversed(messages):
        if message.get("role") == "user":
            message["content"] = f"{message.get('content') or ''}\n{line}"
            break
    else:
        messages.append({"role": "user", "content": line})
    return ChatPrompt(messages=messages)
