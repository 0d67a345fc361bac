"""A/B verdicts steer routing: scores published by the quality store reach the planner's
`quality` strategy (over the config prior, once there is enough evidence) and `llmroute models`."""

from __future__ import annotations

from datetime import datetime, timezone
from types import MappingProxyType

from llmroute.config.model import Config, Defaults, ModelConfig, ProviderConfig
from llmroute.quality import QualityStore
from llmroute.routing.memory import RoutingMemory
from llmroute.routing.planner import PlanInputs
from llmroute.routing.planner import make_plan
from llmroute.types import Message, Request, Target


def config() -> Config:
    models = MappingProxyType({
        "prior-favourite": ModelConfig("prior-favourite", input=1, output=1, quality=9),
        "ab-winner": ModelConfig("ab-winner", input=1, output=1, quality=3),
    })
    provider = ProviderConfig(name="p", type="mock", models=models)
    return Config(defaults=Defaults(strategy="quality"), providers=MappingProxyType({"p": provider}),
                  routes=MappingProxyType({"default": (Target("p", "prior-favourite"), Target("p", "ab-winner"))}))


def first_choice(state_dir) -> str:
    inputs = PlanInputs(config=config(), request=Request((Message("user", "hi"),)),
                        now=datetime.now(timezone.utc))
    return make_plan(inputs, RoutingMemory(state_dir)).candidates[0].target.id


def test_prior_rules_until_enough_evidence_then_ab_results_do(tmp_path):
    assert first_choice(tmp_path) == "p/prior-favourite"
    store = QualityStore(tmp_path)
    for _ in range(4):
        store.record_pair("p/ab-winner", "p/prior-favourite", "a")
    assert first_choice(tmp_path) == "p/prior-favourite"  # 4 games: not enough evidence yet
    for _ in range(8):
        store.record_pair("p/ab-winner", "p/prior-favourite", "a")
    snapshot = RoutingMemory(tmp_path).snapshot()
    score, evidence = snapshot.quality["p/ab-winner"]
    assert evidence == 12 and score > snapshot.quality["p/prior-favourite"][0]
    assert first_choice(tmp_path) == "p/ab-winner"


def test_feedback_votes_are_published_too(tmp_path):
    store = QualityStore(tmp_path)
    store.record_feedback("req1", "p/ab-winner", "up")
    assert RoutingMemory(tmp_path).snapshot().quality["p/ab-winner"][1] == 1
