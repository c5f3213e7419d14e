"""The adaptive replay's engine steps end when no sample runs, pruned ones included."""

from __future__ import annotations

from decoding.pruning import PruneSpec
from evaluation.rules import replay_adaptive
from tests.evaluation.test_replay import CASES, WINDOW, recorded


def test_a_vote_whose_long_samples_are_pruned_ends_with_its_last_unpruned_sample() -> None:
    # Three confident samples end at 10, 14, 18; five weak ones (40 to 56 tokens) are pruned at
    # step 14, when the second finisher calibrates the threshold.
    replay = replay_adaptive(recorded(CASES["weak-tail"]), None, prune=PruneSpec(2), window=WINDOW)
    assert replay.pruned == 5
    assert replay.steps == 18
    assert replay.tokens == 10 + 14 + 18 + 5 * 14


def test_without_pruning_the_vote_ends_with_its_longest_sample() -> None:
    replay = replay_adaptive(recorded(CASES["weak-tail"]), None, window=WINDOW)
    assert (replay.pruned, replay.steps) == (0, 56)
