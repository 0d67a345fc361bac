"""The statistics against known values (R's binom.test, published Wilson intervals)."""

from __future__ import annotations

import pytest

from llmroute import stats


@pytest.mark.parametrize("successes,n,low,high", [
    (8, 10, 0.4902, 0.9433),
    (0, 10, 0.0, 0.2775),
    (10, 10, 0.7225, 1.0),
    (50, 100, 0.4038, 0.5962),
    (1, 2, 0.0945, 0.9055),
])
def test_wilson_interval_known_values(successes, n, low, high):
    got = stats.wilson_interval(successes, n)
    assert got[0] == pytest.approx(low, abs=5e-4)
    assert got[1] == pytest.approx(high, abs=5e-4)


def test_wilson_interval_of_nothing_is_everything_and_bad_counts_raise():
    assert stats.wilson_interval(0, 0) == (0.0, 1.0)
    with pytest.raises(ValueError):
        stats.wilson_interval(3, 2)
    with pytest.raises(ValueError):
        stats.wilson_interval(-1, 2)


@pytest.mark.parametrize("wins,losses,p", [
    (9, 1, 0.021484375),
    (1, 9, 0.021484375),
    (5, 5, 1.0),
    (10, 0, 0.001953125),
    (8, 2, 0.109375),
    (6, 4, 0.75390625),
    (0, 1, 1.0),
    (0, 0, 1.0),
    (36, 24, 0.1550019),
])
def test_sign_test_matches_exact_binomial(wins, losses, p):
    assert stats.sign_test_p(wins, losses) == pytest.approx(p, rel=1e-4)


def test_sign_test_is_exact_for_large_n_and_rejects_negatives():
    assert stats.sign_test_p(600, 400) == pytest.approx(2.7285e-10, rel=1e-3)
    with pytest.raises(ValueError):
        stats.sign_test_p(-1, 3)


def test_percentiles_are_nearest_rank():
    values = [10, 20, 30, 40, 50, 60, 70, 80, 90, 100]
    assert stats.p95(values) == 100
    assert stats.percentile(values, 50) == 50
    assert stats.percentile(values, 90) == 90 and stats.percentile(values, 91) == 100
    assert stats.p95([100, 200, 300, 400]) == 400
    assert stats.percentile([7], 95) == 7
    assert stats.p95([]) is None
    assert stats.mean([]) is None and stats.mean([1, 2, 3]) == 2
    with pytest.raises(ValueError):
        stats.percentile(values, 101)


def test_format_p():
    assert stats.format_p(0.003) == "p=0.003"
    assert stats.format_p(0.41) == "p=0.41"
    assert stats.format_p(0.0004) == "p<0.001"
    assert stats.format_p(1.0) == "p=1"


def test_bradley_terry_orders_players_and_shrinks_small_samples():
    games = [("a", "b", 1.0)] * 30 + [("a", "b", 0.0)] * 10 + [("b", "c", 1.0)] * 20
    strength = stats.bradley_terry(games)
    assert strength["a"] > strength["b"] > strength["c"]
    # a beat b 3:1, and the model's prediction for that pair is close to 3:1
    predicted = strength["a"] / (strength["a"] + strength["b"])
    assert predicted == pytest.approx(0.75, abs=0.05)
    one = stats.bradley_terry([("x", "y", 1.0)])
    assert 1 < one["x"] < 3 and 1 / 3 < one["y"] < 1  # finite, shrunk toward the baseline


def test_bradley_terry_ties_are_even_and_baseline_games_count():
    strength = stats.bradley_terry([("a", "b", 0.5)] * 20)
    assert strength["a"] == pytest.approx(strength["b"])
    liked = stats.bradley_terry([("a", stats.BASELINE, 1.0)] * 9)
    assert stats.strength_to_score(liked["a"]) > 8
    assert stats.strength_to_score(1.0) == 5
    assert stats.bradley_terry([]) == {}
