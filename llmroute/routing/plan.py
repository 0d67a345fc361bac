"""The routing plan as a typed value: what will be tried, in what order, and why.

The planner produces a `Plan`; the engine walks its candidates; `--explain` prints it. Keeping
the plan a plain value means "what would happen" and "what happened" come from one code path.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from ..config.model import ProviderConfig
from ..types import Target



@dataclass(frozen=True, init=False)
class Candidate:
    """One target of the plan. The planner makes one per candidate per prompt, so, like
    `strategies.Option`, its `__init__` writes the instance dict directly instead of the
    generated frozen one's `object.__setattr__` per field; its parameters must match the fields
    (tests/test_planner.py checks)."""

    target: Target
    reason: str  # why it sits at this position, e.g. "priority 80", "cheapest in tier small"
    est_cost_usd: float | None = None  # worst case: estimated input + max_tokens output
    context: int | None = None  # the model's context window, when known
    free: bool = False
    expected_quality: float | None = None  # [0, 1] for this prompt (quality/auto); None: not computed
    evidence: int = 0  # learner verdicts behind expected_quality (0 = the prior alone)

    def __init__(self, target: Target, reason: str, est_cost_usd: float | None = None,
                 context: int | None = None, free: bool = False,
                 expected_quality: float | None = None, evidence: int = 0) -> None:
        d = self.__dict__
        d["target"], d["reason"], d["est_cost_usd"], d["context"] = target, reason, est_cost_usd, context
        d["free"], d["expected_quality"], d["evidence"] = free, expected_quality, evidence


@dataclass(frozen=True)
class Exclusion:
    target: Target
    reason: str  # "disabled", "no key", "circuit open until 12:03:10", "budget: daily $5.00", ...


@dataclass(frozen=True, init=False)
class Plan:
    """What will be tried, in what order, and why. One per prompt: its `__init__` writes the
    instance dict directly, as `Candidate`'s does (parameters matching the fields)."""

    route: str | None
    strategy: str
    candidates: tuple[Candidate, ...]
    excluded: tuple[Exclusion, ...] = ()
    difficulty: float | None = None
    difficulty_features: tuple[tuple[str, float], ...] = ()
    rule: str | None = None  # description of the matched rule
    estimated_input_tokens: int = 0
    notes: tuple[str, ...] = ()

    def __init__(self, route: str | None, strategy: str, candidates: tuple[Candidate, ...],
                 excluded: tuple[Exclusion, ...] = (), difficulty: float | None = None,
                 difficulty_features: tuple[tuple[str, float], ...] = (), rule: str | None = None,
                 estimated_input_tokens: int = 0, notes: tuple[str, ...] = ()) -> None:
        d = self.__dict__
        d["route"], d["strategy"], d["candidates"], d["excluded"] = route, strategy, candidates, excluded
        d["difficulty"], d["difficulty_features"], d["rule"] = difficulty, difficulty_features, rule
        d["estimated_input_tokens"], d["notes"] = estimated_input_tokens, notes

    def to_json(self) -> dict:
        return {
            "route": self.route,
            "strategy": self.strategy,
            "difficulty": self.difficulty,
            "difficulty_features": [[n, round(v, 4)] for n, v in self.difficulty_features],
            "rule": self.rule,
            "estimated_input_tokens": self.estimated_input_tokens,
            "candidates": [
                {"target": c.target.id, "reason": c.reason, "est_cost_usd": c.est_cost_usd,
                 "context": c.context, "free": c.free,
                 "expected_quality": None if c.expected_quality is None else round(c.expected_quality, 4),
                 "evidence": c.evidence}
                for c in self.candidates
            ],
            "excluded": [{"target": e.target.id, "reason": e.reason} for e in self.excluded],
            "notes": list(self.notes),
        }


class BudgetFilter(Protocol):
    """The seam for the budget: given a candidate and its worst-case cost, return None when
    the budget allows it, else the reason it is excluded (e.g. "budget: daily $5.00 reached")."""

    def __call__(self, target: Target, provider: ProviderConfig, worst_case_usd: float | None,
                 worst_case_tokens: int) -> str | None: ...
