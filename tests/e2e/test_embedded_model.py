"""The embedded SmolLM2-135M-Instruct, as a user gets it: short arithmetic at temperature 0."""

from __future__ import annotations

import httpx
import openai
import pytest

from server.embedded_model import DEFAULT_MODEL_NAME
from tests.e2e.server_process import ServerProcess

pytestmark = pytest.mark.engine
QUESTION = [{"role": "user", "content": "What is 2+3?"}]


def test_greedy_answer_is_correct(smol: openai.OpenAI) -> None:
    result = smol.chat.completions.create(
        model=DEFAULT_MODEL_NAME, messages=QUESTION, temperature=0, max_tokens=24
    )
    assert "5" in (result.choices[0].message.content or "")


def test_streamed_greedy_answer_equals_the_whole_one(smol: openai.OpenAI) -> None:
    whole = smol.chat.completions.create(
        model=DEFAULT_MODEL_NAME, messages=QUESTION, temperature=0, max_tokens=24
    )
    stream = smol.chat.completions.create(
        model=DEFAULT_MODEL_NAME, messages=QUESTION, temperature=0, max_tokens=24, stream=True
    )
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == whole.choices[0].message.content


def test_creative_mode_writes_real_text(smol_server: ServerProcess) -> None:
    response = httpx.post(
        f"{smol_server.base_url}/v1/creative",
        json={
            "messages": [{"role": "user", "content": "Write one line about the sea."}],
            "max_tokens": 24,
            "seed": 1,
        },
        timeout=120,
    )
    assert response.status_code == 200
    text = response.json()["choices"][0]["message"]["content"]
    assert len(text.split()) >= 3
