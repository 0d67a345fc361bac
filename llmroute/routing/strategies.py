"""The seven strategies of SPEC §2.3: how the targets that survived the filters are ordered.

Each strategy is a pure function from the surviving options (in route order) and a small
context (difficulty, budget use, the routing memory, a random source) to the same options in
the order to try them, each with the reason it sits where it does — the text `--explain` shows.
Purity is what makes the planner fast and every strategy testable without files or clocks.

Choices the spec leaves open, fixed here:
- `cost` ranks by the *expected* cost of this request: estimated input tokens × input price +
  expected output × output price, where expected output is `min(max_tokens, 300)` tokens — a
  typical answer length; ranking by `max_tokens` would over-weight output prices for the short
  answers most prompts get. Targets with no known price go last, in route order.
- `latency` tries targets with no observation first (so every target gets measured), then the
  lowest recent latency (an EWMA kept by the routing memory).
- `quality` uses the A/B score when it rests on at least `MIN_QUALITY_EVIDENCE` judged pairs,
  else the model's `quality` prior, else 5 (the middle of the 0–10 scale).
- `auto` sorts models without a `tier` by price: under $1 per 1M output tokens (or free) counts
  as small, anything else (including an unknown price) as large.
- `weighted` draws a full order without replacement (each next pick proportional to weight), so
  the fallbacks are weighted too; weight 0 targets come last.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

from ..render import money
from ..stats import logit, sigmoid
from ..types import Target
from .memory import MemorySnapshot

EXPECTED_OUTPUT_TOKENS = 300
MIN_QUALITY_EVIDENCE = 10
DEFAULT_QUALITY = 5.0
SMALL_OUTPUT_PRICE = 1.0  # USD per 1M output tokens: cheaper than this counts as "small"
LEAN_BUDGET_USED = 0.8  # auto leans cheaper once this share of the tightest window is used


@dataclass(frozen=True, init=False)
class Option:
    """One target that survived the filters, with the facts the strategies rank by.

    The planner makes one per surviving target per prompt, and a generated frozen `__init__`
    (one `object.__setattr__` call per field) was a fifth of a plan's own time; this `__init__`
    writes the instance dict directly, so instances stay frozen, comparable and hashable.
    Its parameters must match the fields (tests/test_strategies.py checks)."""

    target: Target
    index: int  # position in the route (or file order) — the tie-breaker everywhere
    priority: int = 50
    weight: float = 1.0
    expected_cost: float | None = None  # USD for this request at the expected output length
    free: bool = False
    tier: str | None = None  # from the config; None = infer from price
    output_price: float | None = None  # USD per 1M output tokens
    quality_prior: float | None = None
    worst_case_usd: float | None = None  # carried through to the plan's Candidate
    context: int | None = None

    def __init__(self, target: Target, index: int, priority: int = 50, weight: float = 1.0,
                 expected_cost: float | None = None, free: bool = False, tier: str | None = None,
                 output_price: float | None = None, quality_prior: float | None = None,
                 worst_case_usd: float | None = None, context: int | None = None) -> None:
        d = self.__dict__
        d["target"], d["index"], d["priority"], d["weight"] = target, index, priority, weight
        d["expected_cost"], d["free"], d["tier"] = expected_cost, free, tier
        d["output_price"], d["quality_prior"] = output_price, quality_prior
        d["worst_case_usd"], d["context"] = worst_case_usd, context


@dataclass(frozen=True)
class StrategyContext:
    difficulty: float = 0.0
    threshold: float = 0.5
    budget_used: float | None = None
    memory: MemorySnapshot | None = None
    rng: random.Random | None = None
    round_robin_key: str = "*"
    # target id → (expected quality in [0, 1] for this prompt, learner verdicts behind it);
    # filled for `quality`/`auto` (planner.py, learner.expected_quality)
    expected: Mapping[str, tuple[float, int]] | None = None
    quality_margin: float = 0.05


Ordered = list[tuple[Option, str]]


def order(strategy: str, options: Sequence[Option], ctx: StrategyContext) -> Ordered:
    """The options in the order `strategy` tries them, each with its reason."""
    return STRATEGY_FUNCS[strategy](list(options), ctx)


def expected_cost(input_price: float, output_price: float, input_tokens: int, max_tokens: int) -> float:
    """USD for this request if the answer has the expected length (see module docstring)."""
    output = min(max_tokens, EXPECTED_OUTPUT_TOKENS)
    return (input_tokens * input_price + output * output_price) / 1_000_000


def round_robin_key(route: str | None) -> str:
    """The memory key of a route's round-robin cursor; "*" when planning over every target."""
    return f"route:{route}" if route else "*"


def by_priority(options: list[Option], ctx: StrategyContext) -> Ordered:
    ranked = sorted(options, key=lambda o: (-o.priority, o.index))
    return [(o, f"priority {o.priority}") for o in ranked]


def _cost_key(o: Option) -> tuple:
    return (o.expected_cost is None, o.expected_cost or 0.0, o.index)


def _cost_reason(o: Option) -> str:
    if o.expected_cost is None:
        return "price unknown"
    if o.free or o.expected_cost == 0:
        return "free"
    return f"expected {money(o.expected_cost)}"


def by_cost(options: list[Option], ctx: StrategyContext) -> Ordered:
    ranked = sorted(options, key=_cost_key)
    return [(o, f"cost: {_cost_reason(o)}") for o in ranked]


def by_latency(options: list[Option], ctx: StrategyContext) -> Ordered:
    seen = ctx.memory.latency_ms if ctx.memory else {}

    def key(o: Option) -> tuple:
        value = seen.get(o.target.id)
        return (value is not None, value or 0.0, o.index)

    out: Ordered = []
    for o in sorted(options, key=key):
        value = seen.get(o.target.id)
        out.append((o, "latency: untried" if value is None else f"latency: ~{value:.0f} ms"))
    return out


def by_round_robin(options: list[Option], ctx: StrategyContext) -> Ordered:
    if not options:
        return []
    cursor = ctx.memory.round_robin.get(ctx.round_robin_key, 0) if ctx.memory else 0
    start = cursor % len(options)
    rotated = options[start:] + options[:start]
    out: Ordered = [(rotated[0], f"round-robin: turn {cursor} → #{start + 1} of {len(options)}")]
    out += [(o, "round-robin: next in rotation") for o in rotated[1:]]
    return out


def by_weight(options: list[Option], ctx: StrategyContext) -> Ordered:
    """Efraimidis–Spirakis: sort by u^(1/w) descending — a weighted draw without replacement."""
    rng = ctx.rng or random.Random()
    total = sum(max(o.weight, 0.0) for o in options) or 1.0

    def key(o: Option) -> tuple:
        if o.weight <= 0:
            return (1, 0.0, o.index)
        return (0, -math.log(rng.random() or 1e-300) / o.weight, o.index)

    keyed = [(key(o), o) for o in options]
    keyed.sort(key=lambda pair: pair[0])
    return [(o, f"weighted: weight {o.weight:g} ({max(o.weight, 0) / total:.0%})") for _, o in keyed]


def quality_of(o: Option, memory: MemorySnapshot | None) -> tuple[float, str]:
    """The score the `quality` strategy ranks by, and where it came from."""
    measured = memory.quality.get(o.target.id) if memory else None
    if measured is not None and measured[1] >= MIN_QUALITY_EVIDENCE:
        return float(measured[0]), f"A/B {measured[0]:.1f} (n={measured[1]})"
    if o.quality_prior is not None:
        return float(o.quality_prior), f"prior {o.quality_prior:g}"
    return DEFAULT_QUALITY, f"default {DEFAULT_QUALITY:g}"


def prior_qualities(options: Sequence[Option], ids: Sequence[str], memory: MemorySnapshot | None) -> list[float]:
    """Each option's cold-start expected quality in [0, 1] (`ids` are their target ids): the
    `quality` strategy's score / 10, so the order it gives is exactly the order `quality` gave
    before any per-prompt verdicts. The score is chosen as in `quality_of`, without formatting
    a reason no one reads: the planner asks this for every candidate of every `quality`/`auto`
    plan."""
    measured_of = memory.quality.get if memory else {}.get
    out = []
    for o, target_id in zip(options, ids):
        measured = measured_of(target_id)
        if measured is not None and measured[1] >= MIN_QUALITY_EVIDENCE:
            score = float(measured[0])
        elif o.quality_prior is not None:
            score = float(o.quality_prior)
        else:
            score = DEFAULT_QUALITY
        out.append(min(1.0, max(0.0, score / 10.0)))
    return out


AUTO_PRIOR_GAP = 0.05  # at the threshold, the best small target's prior sits this far below
AUTO_PRIOR_STEEPNESS = 4.0  # per unit of difficulty, that gap in logits grows e^4-fold


def auto_priors(bases: Sequence[float], tiers: Sequence[str], difficulty: float,
                threshold: float) -> list[float]:
    """`auto`'s prior for one prompt: the configured priors (`prior_qualities`), with the
    small-tier targets moved by the prompt's difficulty.

    Why: the configured priors do not vary by prompt, so once the first verdict switched `auto`
    from its difficulty threshold to expected quality, a large target with a higher configured
    quality won every prompt until verdicts said otherwise. Here the best small-tier target sits
    `AUTO_PRIOR_GAP` below the best large-tier one at `difficulty == threshold`, and its logit
    gap to it grows exponentially with difficulty: near nothing for trivial prompts, most of the
    scale for the hardest, never above the large one. The other small targets keep their logit
    distance from the best, and verdicts then move every target (`learner.expected_quality`).
    The gap is the default `auto.quality_margin`, so with the defaults and no evidence `auto`
    picks what its threshold picks; a wider margin then trades quality for cost as it says.
    Without both tiers among the candidates nothing moves."""
    best_small = best_large = None
    for base, tier in zip(bases, tiers):
        if tier == "small":
            best_small = base if best_small is None else max(best_small, base)
        else:
            best_large = base if best_large is None else max(best_large, base)
    if best_small is None or best_large is None:
        return list(bases)
    top = logit(best_large)
    at_threshold = top - logit(best_large - AUTO_PRIOR_GAP)
    # a hair wider than the gap at the threshold itself, where the threshold rule says "large"
    below = at_threshold * math.exp(AUTO_PRIOR_STEEPNESS * (difficulty - threshold)) * (1 + 1e-6)
    shift = top - below - logit(best_small)
    return [sigmoid(logit(base) + shift) if tier == "small" else base
            for base, tier in zip(bases, tiers)]


def _learned(ctx: StrategyContext) -> bool:
    """Some candidate's expected quality rests on per-prompt verdicts."""
    return bool(ctx.expected) and any(n for _, n in ctx.expected.values())


def by_quality(options: list[Option], ctx: StrategyContext) -> Ordered:
    if _learned(ctx):
        expected = ctx.expected
        scored = [(o, *expected[o.target.id]) for o in options]
        scored.sort(key=lambda item: (-item[1], item[0].index))
        return [(o, f"quality: expected {q:.2f} (n={n})") for o, q, n in scored]
    scored = [(quality_of(o, ctx.memory), o) for o in options]
    scored.sort(key=lambda pair: (-pair[0][0], pair[1].index))
    return [(o, f"quality {why}") for (_, why), o in scored]


def effective_tier(o: Option) -> str:
    """`small` or `large` for `auto` (reasoning counts as large)."""
    if o.tier is not None:
        return "small" if o.tier == "small" else "large"
    if o.free or (o.output_price is not None and o.output_price < SMALL_OUTPUT_PRICE):
        return "small"
    return "large"


def by_auto(options: list[Option], ctx: StrategyContext) -> Ordered:
    hard = ctx.difficulty >= ctx.threshold
    wanted = "large" if hard else "small"
    sign = "≥" if hard else "<"
    head = f"auto: difficulty {ctx.difficulty:.2f} {sign} {ctx.threshold:.2f} → {wanted}"
    lean = ctx.budget_used is not None and ctx.budget_used > LEAN_BUDGET_USED
    if _learned(ctx) and not lean:
        return _by_expected_quality(options, ctx)

    def key(o: Option) -> tuple:
        tier_rank = 0 if effective_tier(o) == wanted else 1
        cost = (o.expected_cost is None, 0.0 if o.free else (o.expected_cost or 0.0))
        if lean:  # cheapest first across tiers; the wanted tier only breaks ties
            return (cost, tier_rank, o.index)
        return (tier_rank, not o.free, cost, o.index)

    out: Ordered = []
    for o in sorted(options, key=key):
        tier = effective_tier(o)
        parts = [head if tier == wanted else f"auto: fallback tier {tier}"]
        if lean:
            parts.append(f"budget {ctx.budget_used:.0%} used → cheapest first")
        parts.append(_cost_reason(o))
        out.append((o, "; ".join(parts)))
    return out


def _by_expected_quality(options: list[Option], ctx: StrategyContext) -> Ordered:
    """`auto` once verdicts exist: the targets whose expected quality for this prompt is within
    `auto.quality_margin` of the best come first, free then cheapest; the rest follow by
    expected quality."""
    expected = ctx.expected
    scored = [(o, *expected[o.target.id]) for o in options]
    best = max(q for _, q, _ in scored)
    floor = best - ctx.quality_margin - 1e-9
    # Formatted once per plan, not once per candidate.
    within = f"within {ctx.quality_margin:g} of best {best:.2f}"
    below = f"below best {best:.2f} − {ctx.quality_margin:g}"

    def key(item: tuple[Option, float, int]) -> tuple:
        o, q, _ = item
        if q >= floor:
            return (0, not o.free, o.expected_cost is None, o.expected_cost or 0.0, o.index)
        return (1, -q, o.index)

    scored.sort(key=key)
    return [(o, f"auto: expected quality {q:.2f} (n={n}) {within if q >= floor else below}; {_cost_reason(o)}")
            for o, q, n in scored]


STRATEGY_FUNCS: dict[str, Callable[[list[Option], StrategyContext], Ordered]] = {
    "priority": by_priority,
    "cost": by_cost,
    "latency": by_latency,
    "round-robin": by_round_robin,
    "weighted": by_weight,
    "quality": by_quality,
    "auto": by_auto,
}
