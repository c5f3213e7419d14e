"""DeepConf's token and trace confidences, in tables: direction, windows, tails, fallbacks."""

from __future__ import annotations

import math

import pytest

from decoding.confidence import (
    ConfidenceSpec,
    WindowConfidence,
    token_confidence,
    trace_confidence,
)
from decoding.samples import TokenLogprob


def tok(*top: float, logprob: float | None = None) -> TokenLogprob:
    """A token whose top-k alternatives have these logprobs (the first is the sampled one)."""
    first = top[0] if top else (logprob if logprob is not None else 0.0)
    return TokenLogprob(token="t", logprob=first, top=tuple(("t", lp) for lp in top))


@pytest.mark.parametrize(
    ("token", "expected"),
    [
        (tok(-0.01, -9.0, -11.0), (0.01 + 9.0 + 11.0) / 3),  # peaked: surer
        (tok(-1.1, -1.1, -1.1), 1.1),  # flat over three: unsure
        (tok(logprob=-0.25), 0.25),  # no alternatives: -logprob of the sampled token
        (tok(-0.0), 0.0),
    ],
)
def test_token_confidence(token: TokenLogprob, expected: float) -> None:
    assert math.isclose(token_confidence(token), expected)


def test_a_peaked_token_is_surer_than_a_flat_one() -> None:
    assert token_confidence(tok(-0.01, -9.0, -11.0)) > token_confidence(tok(-1.1, -1.1, -1.1))


def scores(*values: float) -> list[TokenLogprob]:
    """Tokens whose confidences are exactly these values (one alternative each)."""
    return [tok(-v) for v in values]


@pytest.mark.parametrize(
    ("values", "window", "tail", "mean", "lowest", "tail_mean"),
    [
        ([4, 4, 1, 1, 4, 4], 2, 2, 3.0, 1.0, 4.0),  # the weak stretch in the middle
        ([4, 4, 1, 1, 4, 4], 3, 3, 3.0, 2.0, 3.0),
        ([2, 4], 5, 5, 3.0, 3.0, 3.0),  # shorter than a window: the whole trace
        ([5], 1, 1, 5.0, 5.0, 5.0),
        ([1, 9, 9, 9], 2, 1, 7.0, 5.0, 9.0),  # the first token alone is not a group
    ],
)
def test_trace_confidence(
    values: list[float], window: int, tail: int, mean: float, lowest: float, tail_mean: float
) -> None:
    found = trace_confidence(scores(*values), window, tail)
    assert found is not None
    assert math.isclose(found.mean, mean)
    assert math.isclose(found.lowest_group, lowest)
    assert math.isclose(found.tail, tail_mean)


def test_no_tokens_no_confidence() -> None:
    assert trace_confidence([]) is None


def test_the_running_window_matches_the_finished_trace() -> None:
    values = [3.0, 1.0, 2.0, 5.0, 5.0, 0.5, 4.0]
    follow = WindowConfidence(3)
    seen = [follow.push(v) for v in values]
    assert math.isclose(seen[-1], (5.0 + 0.5 + 4.0) / 3)
    full = trace_confidence(scores(*values), window=3)
    assert full is not None
    assert math.isclose(full.lowest_group, min(seen[2:]))


@pytest.mark.parametrize("fields", [{"top_k": -1}, {"window": 0}, {"tail": 0}])
def test_bad_confidence_specs_are_refused(fields: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        ConfidenceSpec(**fields)
