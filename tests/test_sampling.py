"""Sampled A/B in ordinary use: when to sample, the budget gate, judging now or later."""

from __future__ import annotations

import random

from llmroute.abtest import ABTestStore, ManualJudge
from llmroute.config.load import parse_config
from llmroute.engine import AskOptions
from llmroute.sampling import PendingStore, decide_sample, judge_pending, maybe_sample, run_sample, sampled_name
from llmroute.types import Message, Request, Target

from .abtest_support import FakeBudget, FakeProviders, config_text, ledger, make_engine

T = Target.parse
LONG = Request(messages=(Message("user", "please explain the difference between a list and a tuple in python"),),
               max_tokens=50)


def ab_section(rate=1.0, judge=None, min_tokens=5):
    text = f"abtest:\n  sample_rate: {rate}\n  min_tokens: {min_tokens}\n  targets: [good/m, bad/m]\n"
    return text + (f"  judge: {judge}\n" if judge else "")


class Draw:
    def __init__(self, value):
        self.value = value
        self.draws = 0

    def random(self):
        self.draws += 1
        return self.value


def test_decide_sample_conditions():
    config = parse_config(config_text(["good", "bad"], ab_section(rate=0.3)))
    assert decide_sample(config, LONG, Draw(0.29))
    assert decide_sample(config, LONG, Draw(0.3)) is None
    short = Request(messages=(Message("user", "hi"),))
    draw = Draw(0.0)
    assert decide_sample(config, short, draw) is None and draw.draws == 0
    off = parse_config(config_text(["good", "bad"]))
    draw = Draw(0.0)
    assert decide_sample(off, LONG, draw) is None and draw.draws == 0


def routed_answer(engine, ab_id):
    """The routed call as the CLI makes it: the ab_id decided before, on every record."""
    options = AskOptions(model="good/m", no_fallback=True, extra_record={"ab_id": ab_id})
    return engine.ask(LONG, options), options


def test_sampled_pair_is_judged_at_once_with_a_judge(isolated_env):
    fakes = FakeProviders({"good": "GOOD answer", "bad": "weak answer", "j": "judge"})
    engine = _engine_with_sync_fakes(isolated_env, fakes, config_text(["good", "bad", "j"], ab_section(judge="j/m")))
    answer, _ = routed_answer(engine, "ab1")
    outcome = run_sample(engine, LONG, answer, "ab1", aclient=fakes.client())
    assert outcome.other.target == T("bad/m") and outcome.outcome == "a" and not outcome.queued
    records = ledger(isolated_env)
    assert [(r["kind"], r["target"]) for r in records][:2] == [("ask", "good/m"), ("abtest", "bad/m")]
    assert {r["ab_id"] for r in records} == {"ab1"}
    assert sorted(r["kind"] for r in records) == ["abtest", "ask", "judge", "judge"]
    prompts = [p for name, p in fakes.calls if name in ("good", "bad")]
    assert prompts[0] == prompts[1]  # the identical request
    test = ABTestStore(engine.paths.state_dir).tests()[sampled_name(T("good/m"), T("bad/m"))]
    assert [p["o"] for p in test["pairs"]] == ["a"]


def _engine_with_sync_fakes(home, fakes, text, budget=None):
    import httpx

    return make_engine(home, text, budget=budget, client=httpx.Client(transport=httpx.MockTransport(fakes.handler)))


def test_without_a_judge_the_pair_is_queued_then_judged_later(isolated_env):
    fakes = FakeProviders({"good": "GOOD answer", "bad": "weak answer", "j": "judge"})
    engine = _engine_with_sync_fakes(isolated_env, fakes, config_text(["good", "bad", "j"], ab_section()))
    answer, _ = routed_answer(engine, "ab2")
    outcome = run_sample(engine, LONG, answer, "ab2", aclient=fakes.client())
    assert outcome.queued and outcome.outcome is None
    pending = PendingStore(engine.paths.state_dir).items()
    assert pending["ab2"]["text_a"] == "GOOD answer" and pending["ab2"]["text_b"] == "weak answer"
    done = judge_pending(engine, judge=T("j/m"), aclient=fakes.client())
    assert [p.outcome for p in done] == ["a"]
    assert PendingStore(engine.paths.state_dir).items() == {}
    assert judge_pending(engine, judge=T("j/m"), aclient=fakes.client()) == []


def test_pending_pairs_can_be_judged_by_a_person(isolated_env):
    fakes = FakeProviders({"good": "GOOD answer", "bad": "weak answer"})
    engine = _engine_with_sync_fakes(isolated_env, fakes, config_text(["good", "bad"], ab_section()))
    answer, _ = routed_answer(engine, "ab3")
    run_sample(engine, LONG, answer, "ab3", aclient=fakes.client())
    done = judge_pending(engine, manual=ManualJudge(ask=lambda q: "t", show=lambda s: None, rng=random.Random(0)))
    assert [p.outcome for p in done] == ["tie"]


def test_never_runs_when_the_budget_would_not_allow_the_second_call(isolated_env):
    fakes = FakeProviders({"good": "GOOD answer", "bad": "weak answer", "j": "judge"})
    budget = FakeBudget(refuse={"bad/m"})
    engine = _engine_with_sync_fakes(isolated_env, fakes, config_text(["good", "bad", "j"], ab_section(judge="j/m")),
                                     budget=budget)
    answer, options = routed_answer(engine, "ab4")
    assert run_sample(engine, LONG, answer, "ab4", aclient=fakes.client()) is None
    assert maybe_sample(engine, LONG, answer, options, engine.config, random.Random(0), aclient=fakes.client()) is None
    assert [name for name, _ in fakes.calls] == ["good"]  # only the routed call went out
    assert [r["kind"] for r in ledger(isolated_env)] == ["ask"]
    assert PendingStore(engine.paths.state_dir).items() == {}
    assert ABTestStore(engine.paths.state_dir).tests() == {}


def test_an_answer_from_outside_the_pair_is_not_sampled(isolated_env):
    fakes = FakeProviders({"good": "x", "bad": "y", "other": "z"})
    engine = _engine_with_sync_fakes(isolated_env, fakes, config_text(["good", "bad", "other"], ab_section()))
    answer = engine.ask(LONG, AskOptions(model="other/m", no_fallback=True))
    assert run_sample(engine, LONG, answer, "ab5", aclient=fakes.client()) is None
    assert [name for name, _ in fakes.calls] == ["other"]


def test_maybe_sample_decides_when_the_options_carry_no_ab_id(isolated_env):
    fakes = FakeProviders({"good": "GOOD", "bad": "meh"})
    engine = _engine_with_sync_fakes(isolated_env, fakes, config_text(["good", "bad"], ab_section(rate=0.5)))
    options = AskOptions(model="good/m", no_fallback=True)
    answer = engine.ask(LONG, options)
    assert maybe_sample(engine, LONG, answer, options, engine.config, Draw(0.99)) is None
    ab_id = maybe_sample(engine, LONG, answer, options, engine.config, Draw(0.0), aclient=fakes.client())
    assert ab_id and ab_id in PendingStore(engine.paths.state_dir).items()
