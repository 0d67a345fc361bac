"""Every strategy of SPEC §2.3, on hand-made options (no config, files or clocks)."""

from __future__ import annotations

import random
from collections import Counter
from types import MappingProxyType

import pytest

from llmroute.routing.memory import MemorySnapshot
from llmroute.routing.strategies import (
    EXPECTED_OUTPUT_TOKENS, MIN_QUALITY_EVIDENCE, STRATEGY_FUNCS, Option, StrategyContext,
    effective_tier, expected_cost, order, round_robin_key,
)
from llmroute.config.model import STRATEGIES
from llmroute.types import Target


def opt(name: str, index: int, **kw) -> Option:
    provider, _, model = name.partition("/")
    return Option(Target(provider, model or "m"), index, **kw)


def ids(ordered) -> list[str]:
    return [o.target.provider for o, _ in ordered]


def snap(**kw) -> MemorySnapshot:
    return MemorySnapshot(**{k: MappingProxyType(v) for k, v in kw.items()})


def test_every_configurable_strategy_is_implemented():
    assert set(STRATEGY_FUNCS) == set(STRATEGIES)


def test_priority_then_route_order():
    options = [opt("a", 0, priority=50), opt("b", 1, priority=80), opt("c", 2, priority=50)]
    ordered = order("priority", options, StrategyContext())
    assert ids(ordered) == ["b", "a", "c"]
    assert ordered[0][1] == "priority 80"


def test_cost_cheapest_first_unknown_last():
    options = [opt("unknown", 0), opt("dear", 1, expected_cost=0.01), opt("cheap", 2, expected_cost=0.001),
               opt("free", 3, expected_cost=0.0, free=True)]
    ordered = order("cost", options, StrategyContext())
    assert ids(ordered) == ["free", "cheap", "dear", "unknown"]
    assert ordered[0][1] == "cost: free" and ordered[-1][1] == "cost: price unknown"
    assert "expected $0.001" in ordered[1][1]


def test_expected_cost_caps_output_at_the_typical_answer():
    assert expected_cost(1.0, 10.0, 1000, 4096) == pytest.approx((1000 + EXPECTED_OUTPUT_TOKENS * 10) / 1e6)
    assert expected_cost(1.0, 10.0, 1000, 50) == pytest.approx((1000 + 500) / 1e6)


def test_latency_untried_first_then_fastest():
    options = [opt("slow", 0), opt("new", 1), opt("fast", 2)]
    memory = snap(latency_ms={"slow/m": 900.0, "fast/m": 120.0})
    ordered = order("latency", options, StrategyContext(memory=memory))
    assert ids(ordered) == ["new", "fast", "slow"]
    assert ordered[0][1] == "latency: untried" and ordered[1][1] == "latency: ~120 ms"


def test_latency_without_memory_keeps_route_order():
    assert ids(order("latency", [opt("a", 0), opt("b", 1)], StrategyContext())) == ["a", "b"]


@pytest.mark.parametrize("cursor,first", [(0, "a"), (1, "b"), (2, "c"), (3, "a"), (7, "b")])
def test_round_robin_rotates_by_cursor(cursor, first):
    options = [opt("a", 0), opt("b", 1), opt("c", 2)]
    memory = snap(round_robin={"route:default": cursor})
    ordered = order("round-robin", options, StrategyContext(memory=memory, round_robin_key="route:default"))
    assert ids(ordered)[0] == first and len(ordered) == 3 and set(ids(ordered)) == {"a", "b", "c"}


def test_round_robin_key():
    assert round_robin_key("default") == "route:default"
    assert round_robin_key(None) == "*"
    assert order("round-robin", [], StrategyContext()) == []


def test_weighted_follows_weights_and_is_reproducible():
    options = [opt("heavy", 0, weight=3), opt("light", 1, weight=1), opt("off", 2, weight=0)]
    rng = random.Random(7)
    firsts = Counter(ids(order("weighted", options, StrategyContext(rng=rng)))[0] for _ in range(4000))
    assert firsts["off"] == 0
    assert 0.70 < firsts["heavy"] / 4000 < 0.80  # 3:1 → 75 %
    a = ids(order("weighted", options, StrategyContext(rng=random.Random(1))))
    b = ids(order("weighted", options, StrategyContext(rng=random.Random(1))))
    assert a == b and a[-1] == "off"


def test_quality_uses_ab_score_only_with_enough_evidence():
    options = [opt("a", 0, quality_prior=6), opt("b", 1, quality_prior=8), opt("c", 2)]
    weak = snap(quality={"a/m": (9.5, MIN_QUALITY_EVIDENCE - 1)})
    assert ids(order("quality", options, StrategyContext(memory=weak))) == ["b", "a", "c"]
    strong = snap(quality={"a/m": (9.5, MIN_QUALITY_EVIDENCE)})
    ordered = order("quality", options, StrategyContext(memory=strong))
    assert ids(ordered) == ["a", "b", "c"]
    assert "A/B 9.5" in ordered[0][1] and ordered[2][1] == "quality default 5"


def test_quality_default_sits_between_priors():
    options = [opt("low", 0, quality_prior=3), opt("none", 1)]
    assert ids(order("quality", options, StrategyContext())) == ["none", "low"]


def test_effective_tier_from_config_or_price():
    assert effective_tier(opt("a", 0, tier="reasoning")) == "large"
    assert effective_tier(opt("a", 0, tier="small", output_price=60)) == "small"
    assert effective_tier(opt("a", 0, output_price=0.6)) == "small"
    assert effective_tier(opt("a", 0, output_price=10)) == "large"
    assert effective_tier(opt("a", 0, free=True)) == "small"
    assert effective_tier(opt("a", 0)) == "large"  # unknown price: assume a large model


def auto_options():
    return [
        opt("big", 0, tier="large", expected_cost=0.01),
        opt("mini", 1, tier="small", expected_cost=0.0005),
        opt("local", 2, tier="small", expected_cost=0.0, free=True),
        opt("think", 3, tier="reasoning", expected_cost=0.005),
        opt("nano", 4, output_price=0.4, expected_cost=0.0001),
    ]


def test_auto_easy_prompt_small_tier_free_first_then_cheapest():
    ordered = order("auto", auto_options(), StrategyContext(difficulty=0.2, threshold=0.5))
    assert ids(ordered) == ["local", "nano", "mini", "think", "big"]
    assert ordered[0][1].startswith("auto: difficulty 0.20 < 0.50 → small; free")
    assert ordered[3][1].startswith("auto: fallback tier large")


def test_auto_hard_prompt_large_and_reasoning_first():
    ordered = order("auto", auto_options(), StrategyContext(difficulty=0.72, threshold=0.5))
    assert ids(ordered) == ["think", "big", "local", "nano", "mini"]
    assert ordered[0][1].startswith("auto: difficulty 0.72 ≥ 0.50 → large")


def test_auto_threshold_is_inclusive():
    ordered = order("auto", auto_options(), StrategyContext(difficulty=0.5, threshold=0.5))
    assert ids(ordered)[0] == "think"


def test_auto_leans_cheaper_when_budget_runs_low():
    ordered = order("auto", auto_options(), StrategyContext(difficulty=0.9, threshold=0.5, budget_used=0.85))
    assert ids(ordered) == ["local", "nano", "mini", "think", "big"]
    assert "budget 85% used → cheapest first" in ordered[0][1]
    relaxed = order("auto", auto_options(), StrategyContext(difficulty=0.9, threshold=0.5, budget_used=0.8))
    assert ids(relaxed)[0] == "think"


def test_unknown_strategy_name_is_a_key_error():
    with pytest.raises(KeyError):
        order("fastest", [], StrategyContext())


def test_option_init_matches_its_fields_and_stays_frozen():
    import dataclasses
    import inspect

    params = list(inspect.signature(Option.__init__).parameters.values())[1:]
    fields = dataclasses.fields(Option)
    assert [p.name for p in params] == [f.name for f in fields]
    assert [p.default for p in params] == [
        inspect.Parameter.empty if f.default is dataclasses.MISSING else f.default for f in fields]
    a = Option(Target("p", "m"), 2, priority=7, expected_cost=0.5, free=True, tier="small",
               output_price=0.2, quality_prior=8.0, worst_case_usd=1.5, context=4096)
    assert dataclasses.asdict(a) == {
        "target": {"provider": "p", "model": "m"}, "index": 2, "priority": 7, "weight": 1.0,
        "expected_cost": 0.5, "free": True, "tier": "small", "output_price": 0.2, "quality_prior": 8.0,
        "worst_case_usd": 1.5, "context": 4096}
    assert a == dataclasses.replace(a) and hash(a) == hash(dataclasses.replace(a))
    assert a != dataclasses.replace(a, index=3)
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.index = 9  # type: ignore[misc]
