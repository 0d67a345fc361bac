"""The statistics behind `abtest` verdicts and quality scores: small, exact, pure functions.

A verdict must be honest with 20 pairs as well as with 2,000, so nothing here leans on a normal
approximation where an exact answer is cheap:

- `wilson_interval`: the Wilson score interval for a binomial proportion. Unlike the textbook
  `p ± z·sqrt(p(1-p)/n)` it stays inside [0, 1] and is sensible at 0/n and n/n.
- `sign_test_p`: the exact two-sided binomial sign test on the non-tied pairs (H0: each decisive
  pair is a fair coin). Computed with integer binomial coefficients, so it is exact for any n.
- `bradley_terry`: strengths from pairwise games (wins, losses, ties as half a win each) by the
  MM algorithm, regularised by virtual games against a fixed baseline so that a target with
  few or one-sided results gets a finite, shrunk score instead of 0 or infinity.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Iterable, Sequence

Z_95 = 1.959963984540054  # two-sided 95% normal quantile


def wilson_interval(successes: int, n: int, z: float = Z_95) -> tuple[float, float]:
    """The Wilson score interval of `successes` out of `n`; (0, 1) when n is 0."""
    if n < 0 or successes < 0 or successes > n:
        raise ValueError(f"need 0 <= successes <= n, got {successes}/{n}")
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def sign_test_p(wins: int, losses: int) -> float:
    """Exact two-sided sign-test p-value for `wins` against `losses` (ties already removed).

    p = P(|X - n/2| >= |wins - n/2|) for X ~ Binomial(n, 1/2), i.e. twice the smaller tail,
    capped at 1. No decisive pairs at all is no evidence: p = 1."""
    if wins < 0 or losses < 0:
        raise ValueError("counts must be non-negative")
    n = wins + losses
    if n == 0:
        return 1.0
    k = min(wins, losses)
    tail = sum(math.comb(n, i) for i in range(k + 1))
    return min(1.0, 2 * tail / 2 ** n)


def mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def nearest_rank(q: float, count: int) -> int:
    """The 1-based rank of the q-th percentile (0..100) among `count` values, nearest-rank: the
    smallest value with at least q% of the values at or below it. llmroute's one percentile
    definition (report, health, abtest): the answer is always a latency that was observed."""
    if not 0 <= q <= 100:
        raise ValueError("q must be within 0..100")
    return max(1, math.ceil(q * count / 100 - 1e-9))


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0..100), nearest-rank; None for no values."""
    if not values:
        return None
    return sorted(values)[nearest_rank(q, len(values)) - 1]


def p95(values: Sequence[float]) -> float | None:
    return percentile(values, 95)


def format_p(p: float) -> str:
    """`p=0.003`, `p=0.41`, `p<0.001`: two significant digits, as a verdict line shows it."""
    if p < 0.001:
        return "p<0.001"
    return f"p={p:.2g}" if p < 1 else "p=1"


Game = tuple[str, str, float]  # (player, opponent, score of player: 1 win, 0.5 tie, 0 loss)

BASELINE = "@baseline"


def bradley_terry(games: Iterable[Game], *, prior_games: float = 1.0, iterations: int = 500,
                  tolerance: float = 1e-9) -> dict[str, float]:
    """Bradley–Terry strengths for every player in `games`, relative to `BASELINE` (strength 1).

    Each player also gets `prior_games` virtual wins and losses against the baseline, which
    shrinks small samples toward "as good as the baseline". The baseline may appear in `games`
    as a real opponent (a thumbs up is a win against it). Returns {player: strength > 0};
    the probability that i beats j is s_i / (s_i + s_j)."""
    wins: dict[str, float] = defaultdict(float)
    pairs: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for player, opponent, score in games:
        if player == opponent:
            continue
        wins[player] += score
        wins[opponent] += 1 - score
        pairs[player][opponent] += 1
        pairs[opponent][player] += 1
    players = [p for p in pairs if p != BASELINE]
    for player in players:
        wins[player] += prior_games
        wins[BASELINE] += prior_games
        pairs[player][BASELINE] += 2 * prior_games
        pairs[BASELINE][player] += 2 * prior_games
    strength = {p: 1.0 for p in players}
    strength[BASELINE] = 1.0
    for _ in range(iterations):
        change = 0.0
        for player in players:
            denominator = sum(n / (strength[player] + strength[other])
                              for other, n in pairs[player].items())
            updated = wins[player] / denominator if denominator else 1.0
            change = max(change, abs(updated - strength[player]))
            strength[player] = updated
        if change < tolerance:
            break
    return {p: strength[p] for p in players}


def strength_to_score(strength: float) -> float:
    """A 0–10 score: ten times the chance of beating the baseline (strength 1). Equal to the
    baseline is 5, the middle of the config's `quality` scale."""
    return 10 * strength / (strength + 1)


def sigmoid(z: float) -> float:
    """The logistic function, without overflow for large negative `z`."""
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


def logit(p: float) -> float:
    """The inverse of `sigmoid`, with `p` kept a hair inside (0, 1) so 0 and 1 stay finite."""
    p = min(1.0 - 1e-6, max(1e-6, p))
    return math.log(p / (1.0 - p))
