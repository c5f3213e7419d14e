"""The opt-in answer-format instruction: where it goes and what it asks for, per format."""

from __future__ import annotations

import pytest

from decoding.engine import ChatPrompt, TextPrompt
from decoding.equivalence import AnswerFormat
from decoding.instruction import answer_instruction, with_answer_instruction


@pytest.mark.parametrize(
    ("fmt", "line"),
    [
        ("auto", "End with: The answer is <answer>."),
        ("number", "End with: The answer is <number>."),
        ("choice", "End with: The answer is <letter>."),
        ("code", None),
        ("json", None),
    ],
)
def test_the_line_per_format(fmt: AnswerFormat, line: str | None) -> None:
    assert answer_instruction(fmt) == line


def test_it_follows_the_last_user_turn_and_leaves_the_rest_alone() -> None:
    chat = ChatPrompt(
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "What is 2+3?"},
            {"role": "assistant", "content": "5"},
            {"role": "user", "content": "And 4+4?"},
        ]
    )
    found = with_answer_instruction(chat, "auto")
    assert isinstance(found, ChatPrompt)
    assert found.messages[3]["content"] == "And 4+4?\nEnd with: The answer is <answer>."
    assert list(found.messages[:3]) == list(chat.messages[:3])
    assert chat.messages[3]["content"] == "And 4+4?", "the client's prompt is not mutated"


def test_raw_prompts_and_block_formats() -> None:
    assert with_answer_instruction(TextPrompt("2+3="), "number") == TextPrompt(
        "2+3=\nEnd with: The answer is <number>."
    )
    code = TextPrompt("Write f.")
    assert with_answer_instruction(code, "code") is code
