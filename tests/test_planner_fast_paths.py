"""The planner's per-prompt shortcuts decide exactly what the long way does: context windows
after one the estimate already fits, prices when no limit depends on the count, and the plan
values' hand-written constructors."""

from __future__ import annotations

import dataclasses
import inspect
from datetime import datetime, timezone
from types import MappingProxyType

import pytest

from llmroute.config.model import BudgetConfig, Config, Defaults, Limits, ModelConfig, ProviderConfig
from llmroute.routing.plan import Candidate, Exclusion, Plan
from llmroute.routing.planner import PlanInputs, make_plan
from llmroute.types import Message, Request, Target

NOW = datetime(2026, 3, 4, 12, 0, 0, tzinfo=timezone.utc)
CONTEXTS = (4000, 60, 100_000, 90, 2000, None, 150, 75, 100_000, 60)


def config(budget: BudgetConfig = BudgetConfig()) -> Config:
    models = {f"m{i}": ModelConfig(f"m{i}", input=None if i == 5 else 0.5 + i, output=None if i == 5 else 2.0,
                                   context=context)
              for i, context in enumerate(CONTEXTS)}
    models["gpt-4o"] = ModelConfig("gpt-4o")  # the built-in table's price and context
    provider = ProviderConfig("p", "openai", base_url="https://example.com/v1", models=MappingProxyType(models))
    routes = {"all": tuple(Target("p", m) for m in models)}
    routes.update({m: (Target("p", m),) for m in models})
    return Config(defaults=Defaults(route="all", strategy="cost"), providers=MappingProxyType({"p": provider}),
                  routes=MappingProxyType(routes), budget=budget)


def plan(cfg: Config, words: int, route: str = "all", **kw) -> Plan:
    text = " ".join(["prove the lemma step by step"] * (words // 6 + 1))
    inputs = PlanInputs(config=cfg, request=Request((Message("user", text),), max_tokens=300), now=NOW,
                        route_option=route, **kw)
    return make_plan(inputs)


@pytest.mark.parametrize("words", [5, 30, 40, 45, 50, 55, 60, 70, 90, 120, 200, 1500, 3000, 80_000])
def test_each_context_window_is_decided_as_if_it_were_alone(words):
    cfg = config()
    together = plan(cfg, words)
    alone = {}
    for model in cfg.providers["p"].models:
        single = plan(cfg, words, route=model)
        alone.update({e.target.id: e.reason for e in single.excluded})
    assert {e.target.id: e.reason for e in together.excluded} == alone
    assert {c.target.id for c in together.candidates}.isdisjoint(alone)


@pytest.mark.parametrize("budget", [BudgetConfig(), BudgetConfig(limits=Limits(daily=5.0))])
@pytest.mark.parametrize("words", [5, 200, 1500, 80_000])
def test_without_limits_prices_are_those_the_count_decision_gives(budget, words):
    cfg = config(budget)
    direct = plan(cfg, words)
    # A budget filter that allows everything sends every target through `PromptTokens.decide`.
    decided = plan(cfg, words, budget_filter=lambda target, provider, worst, tokens: None)
    assert direct == decided
    assert any(c.est_cost_usd for c in direct.candidates)


@pytest.mark.parametrize("cls", [Candidate, Plan])
def test_plan_values_init_matches_their_fields_and_stays_frozen(cls):
    params = list(inspect.signature(cls.__init__).parameters.values())[1:]
    fields = dataclasses.fields(cls)
    assert [p.name for p in params] == [f.name for f in fields]
    assert [p.default for p in params] == [
        inspect.Parameter.empty if f.default is dataclasses.MISSING else f.default for f in fields]
    target = Target("p", "m")
    value = (Candidate(target, "why", 0.5, 4096, True, 0.7, 3) if cls is Candidate else
             Plan("r", "auto", (Candidate(target, "why"),), (Exclusion(target, "no"),), 0.4, (("code", 0.2),),
                  "rule 1", 12, ("a note",)))
    assert value == dataclasses.replace(value) and hash(value) == hash(dataclasses.replace(value))
    assert dataclasses.asdict(value) == dataclasses.asdict(dataclasses.replace(value))
    assert value != dataclasses.replace(value, **{fields[1].name: "other"})
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(value, fields[0].name, None)
