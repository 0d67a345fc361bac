"""The per-prompt learner (issue 19): judged pairs and thumbs verdicts teach, per target pair, who
wins on which prompts; `auto`/`quality` route by the resulting expected quality."""

from __future__ import annotations

import json
import math
import multiprocessing
import random
from datetime import datetime, timezone
from pathlib import Path
from types import MappingProxyType

import pytest

from llmroute.config.load import load_config_bytes
from llmroute.config.model import AutoConfig, Config, Defaults, ModelConfig, ProviderConfig
from llmroute.errors import ConfigError
from llmroute.judging import combine
from llmroute.quality import QualityStore
from llmroute.routing.difficulty import score_difficulty
from llmroute.routing.learner import BASELINE, FILE, JOURNAL, Learner, load_view
from llmroute.routing.planner import PlanInputs, make_plan
from llmroute.types import Message, Request, Target

A, B = "p/a", "p/b"

# A is the large, dear model and B the small, cheap one, so the cold start sends hard (maths)
# prompts to A and easy prose to B — the opposite of what this world's verdicts teach.
MATHS_TRAIN = ["solve the equation {n}x + {m} = {k} for x", "what is the integral of x^{n} from 0 to {m}",
               "find the derivative of {n}x^{m} + sin x", "compute the probability of {n} heads in {m} coin flips"]
PROSE_TRAIN = ["write a short poem about {w} in {v}", "write a story about a cat who loves {w}",
               "rewrite this note in a friendly tone: see you at the {w} in {v}",
               "compose a letter to my aunt about {w} and {v}"]
MATHS_TEST = ["solve for y: {n}y - {m} = {k}, then check the equation", "evaluate the integral of {n}/x from 1 to {m}"]
PROSE_TEST = ["write a poem about {w}, warm and gentle", "tell me a short story about {w} and {v}"]
WORDS = ["rain", "the sea", "autumn", "bread", "a lighthouse", "paris", "my garden", "tea"]


def fill(template: str, rng: random.Random) -> str:
    return template.format(n=rng.randint(2, 9), m=rng.randint(1, 40), k=rng.randint(10, 99),
                           w=rng.choice(WORDS), v=rng.choice(WORDS))


def config(strategy: str = "auto", margin: float = 0.05) -> Config:
    models = MappingProxyType({
        "a": ModelConfig("a", input=5, output=15, tier="large"),
        "b": ModelConfig("b", input=0.1, output=0.4, tier="small"),
    })
    provider = ProviderConfig(name="p", type="mock", models=models)
    return Config(defaults=Defaults(strategy=strategy), providers=MappingProxyType({"p": provider}),
                  routes=MappingProxyType({"default": (Target("p", "a"), Target("p", "b"))}),
                  auto=AutoConfig(quality_margin=margin))


def plan(state_dir: Path, prompt: str, strategy: str = "auto", margin: float = 0.05, explain: bool = False):
    inputs = PlanInputs(config=config(strategy, margin), request=Request((Message("user", prompt),)),
                        now=datetime.now(timezone.utc), learner=load_view(state_dir), explain=explain)
    return make_plan(inputs)


def first(state_dir: Path, prompt: str, **kw) -> str:
    return plan(state_dir, prompt, **kw).candidates[0].target.id


def train(state_dir: Path, n: int, seed: int = 1) -> None:
    rng = random.Random(seed)
    store = QualityStore(state_dir)
    for i in range(n):
        if i % 2:
            store.record_pair(A, B, "b", prompt=fill(rng.choice(MATHS_TRAIN), rng))
        else:
            store.record_pair(A, B, "a", prompt=fill(rng.choice(PROSE_TRAIN), rng))


def test_without_verdicts_routing_is_todays(tmp_path):
    rng = random.Random(3)
    for strategy in ("auto", "quality"):
        for template in MATHS_TEST + PROSE_TEST:
            prompt = fill(template, rng)
            learned = plan(tmp_path, prompt, strategy)
            inputs = PlanInputs(config=config(strategy), request=Request((Message("user", prompt),)),
                                now=datetime.now(timezone.utc))
            before = make_plan(inputs)
            assert [(c.target, c.reason) for c in learned.candidates] == \
                [(c.target, c.reason) for c in before.candidates]
            assert all(c.evidence == 0 for c in learned.candidates)
            shown = {c.target.id: c.expected_quality for c in learned.candidates}
            if strategy == "quality":
                assert shown == {A: 0.5, B: 0.5}  # both unconfigured: the default prior
            else:  # auto's prior: the small B moved by difficulty, never above A
                d = score_difficulty(prompt).score
                assert shown[A] == 0.5 and shown[B] < 0.5 and (shown[B] < 0.45) == (d >= 0.5)
    assert first(tmp_path, fill(MATHS_TEST[0], rng)) == A  # the cold start: hard → large
    assert first(tmp_path, fill(PROSE_TEST[0], rng)) == B  # easy → small


def test_after_judged_pairs_auto_routes_unseen_maths_to_b_and_prose_to_a(tmp_path):
    train(tmp_path, 200)
    rng = random.Random(99)
    for _ in range(10):
        assert first(tmp_path, fill(rng.choice(MATHS_TEST), rng)) == B
        assert first(tmp_path, fill(rng.choice(PROSE_TEST), rng)) == A
        assert first(tmp_path, fill(rng.choice(PROSE_TEST), rng), strategy="quality") == A
        assert first(tmp_path, fill(rng.choice(MATHS_TEST), rng), strategy="quality") == B


def test_a_few_verdicts_move_routing_little(tmp_path):
    prompt = fill(MATHS_TEST[0], random.Random(5))
    cold = {c.target.id: c.expected_quality for c in plan(tmp_path, prompt).candidates}
    train(tmp_path, 4)
    candidates = plan(tmp_path, prompt).candidates
    assert all(c.evidence == 4 and abs(c.expected_quality - cold[c.target.id]) < 0.05 for c in candidates)


def test_margin_lets_auto_take_the_cheaper_target_within_it(tmp_path):
    train(tmp_path, 200)
    prose = "write a poem about the sea, warm and gentle"
    quality = {c.target.id: c.expected_quality for c in plan(tmp_path, prose).candidates}
    gap = quality[A] - quality[B]
    assert gap > 0.05
    assert first(tmp_path, prose, margin=gap + 0.01) == B  # within the margin: the cheaper one
    assert first(tmp_path, prose, margin=max(0.0, gap - 0.01)) == A


def test_json_and_explain_show_expected_quality_and_evidence(tmp_path):
    from llmroute.render import render_plan as explain_plan

    train(tmp_path, 20)
    shown = plan(tmp_path, "solve the equation 2x + 1 = 9", explain=True)
    data = shown.to_json()["candidates"]
    assert {c["target"] for c in data} == {A, B}
    assert all(c["evidence"] == 20 and 0 <= c["expected_quality"] <= 1 for c in data)
    assert "expected quality" in explain_plan(shown) and "20 verdict(s)" in explain_plan(shown)


def test_ties_and_order_disagreements_move_nothing(tmp_path):
    store = QualityStore(tmp_path)
    disagreement = combine("A", "A")  # each order names whichever answer came first
    assert disagreement == "tie"
    store.record_pair(A, B, disagreement, prompt="solve the equation x + 1 = 2")
    store.record_pair(A, B, "tie", prompt="write a poem about rain")
    assert load_view(tmp_path).pairs == {}
    assert not (tmp_path / FILE).exists() and not (tmp_path / JOURNAL).exists()


def test_thumbs_verdict_teaches_against_the_baseline(tmp_path):
    QualityStore(tmp_path).record_feedback("r1", A, "up", prompt="write a poem about rain")
    QualityStore(tmp_path).record_feedback("r2", A, "down", prompt="solve x + 1 = 2")
    assert load_view(tmp_path).evidence(A, BASELINE) == 2


def _worker(state_dir: str, index: int) -> None:
    learner = Learner(Path(state_dir))
    for j in range(5):
        winner, loser = (A, B) if (index + j) % 2 else (B, A)
        learner.record(winner, loser, f"prompt {index} number {j} about maths and poems")


def test_twenty_processes_updating_at_once_lose_no_verdict(tmp_path):
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_worker, args=(str(tmp_path), i)) for i in range(20)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    assert all(p.exitcode == 0 for p in procs)
    assert Learner(tmp_path).view().evidence(A, B) == 100
    assert len((tmp_path / JOURNAL).read_text().splitlines()) == 100


def test_corrupt_learner_file_is_rebuilt_from_the_verdicts(tmp_path, capsys):
    train(tmp_path, 30)
    before = Learner(tmp_path).view()
    (tmp_path / FILE).write_text('{"pairs": [1, 2')
    after = Learner(tmp_path).view()
    assert after.evidence(A, B) == 30
    assert after.pairs == before.pairs
    assert list(tmp_path.glob(FILE + ".corrupt-*"))  # the damaged copy is kept for inspection
    train(tmp_path, 2, seed=7)  # learning goes on from the rebuilt model
    assert Learner(tmp_path).view().evidence(A, B) == 32


def test_quality_margin_is_validated(tmp_path):
    path = tmp_path / "config.yaml"
    assert load_config_bytes(b"version: 1\nauto: {quality_margin: 0.2}\n", path).auto.quality_margin == 0.2
    assert load_config_bytes(b"version: 1\n", path).auto.quality_margin == 0.05
    with pytest.raises(ConfigError):
        load_config_bytes(b"version: 1\nauto: {quality_margin: -1}\n", path)
    with pytest.raises(ConfigError):
        load_config_bytes(b"version: 1\nauto: {margin: 0.1}\n", path)


def configured(margin: float = 0.05) -> Config:
    """A dear large model rated 9 and a cheap small one rated 6, as users configure them."""
    models = MappingProxyType({
        "a": ModelConfig("a", input=5, output=15, tier="large", quality=9),
        "b": ModelConfig("b", input=0.1, output=0.4, tier="small", quality=6),
    })
    provider = ProviderConfig(name="p", type="mock", models=models)
    return Config(defaults=Defaults(strategy="auto"), providers=MappingProxyType({"p": provider}),
                  routes=MappingProxyType({"default": (Target("p", "a"), Target("p", "b"))}),
                  auto=AutoConfig(quality_margin=margin))


def first_configured(state_dir: Path, prompt: str, margin: float = 0.05) -> str:
    inputs = PlanInputs(config=configured(margin), request=Request((Message("user", prompt),)),
                        now=datetime.now(timezone.utc), learner=load_view(state_dir))
    return make_plan(inputs).candidates[0].target.id


EASY = "write a short poem about rain"
HARD = ("Prove that the sum of the reciprocals of the primes diverges, then derive an asymptotic "
        "bound for the partial sums and explain each step.")


def test_the_first_verdict_does_not_send_every_prompt_to_the_higher_rated_target(tmp_path):
    assert score_difficulty(EASY).score < 0.5 <= score_difficulty(HARD).score
    assert (first_configured(tmp_path, EASY), first_configured(tmp_path, HARD)) == (B, A)  # threshold
    Learner(tmp_path).record(A, B, "what is the capital of peru")  # one verdict, on another prompt
    assert load_view(tmp_path).pairs
    # expected quality now decides; its prior still follows the prompt's difficulty
    assert (first_configured(tmp_path, EASY), first_configured(tmp_path, HARD)) == (B, A)


def test_a_wider_margin_trades_quality_for_cost_once_verdicts_exist(tmp_path):
    Learner(tmp_path).record(A, B, "what is the capital of peru")
    medium = "Explain why the sky is blue, step by step, for a curious ten-year-old."
    d = score_difficulty(medium).score
    assert 0.5 <= d < 0.8
    assert first_configured(tmp_path, medium) == A
    shown = {c.target.id: c.expected_quality for c in make_plan(PlanInputs(
        config=configured(), request=Request((Message("user", medium),)), now=datetime.now(timezone.utc),
        learner=load_view(tmp_path))).candidates}
    assert first_configured(tmp_path, medium, margin=shown[A] - shown[B] + 0.01) == B


def test_auto_priors_follow_difficulty_around_the_threshold():
    from llmroute.routing.strategies import AUTO_PRIOR_GAP, auto_priors

    bases, tiers = [0.9, 0.6, 0.5], ["large", "small", "small"]
    at = auto_priors(bases, tiers, 0.5, 0.5)
    assert at[0] == 0.9 and at[1] == pytest.approx(0.9 - AUTO_PRIOR_GAP, abs=1e-5)
    assert at[1] < 0.9 - AUTO_PRIOR_GAP  # at the threshold itself: large, as the threshold rule
    logit = lambda p: math.log(p / (1 - p))  # noqa: E731
    assert logit(at[1]) - logit(at[2]) == pytest.approx(logit(0.6) - logit(0.5))  # keeps its distance
    scale = [auto_priors(bases, tiers, d / 10, 0.5)[1] for d in range(11)]
    assert scale == sorted(scale, reverse=True) and len(set(scale)) == 11  # harder → lower, always
    assert 0.9 - AUTO_PRIOR_GAP < scale[0] < 0.9 and scale[10] < 0.5  # never above the large one
    assert auto_priors([0.9, 0.8], ["large", "large"], 0.9, 0.5) == [0.9, 0.8]  # one tier: as given


def test_a_flat_model_keeps_the_priors_order_of_prompts():
    """After verdicts that taught a pair nothing (as many wins as losses everywhere: every weight
    0), auto's expected-quality gap must still grow with difficulty: the blend may shrink the
    prior's differences, never turn them around."""
    from llmroute.routing.learner import LearnerView, expected_quality, features, pair_key
    from llmroute.routing.strategies import auto_priors

    key, _ = pair_key(A, B)
    view = LearnerView.from_doc({"pairs": {key: {"n": 200, "w": {}}}})
    prompts = ["hi", "write a short poem about rain", "Explain why the sky is blue, step by step.",
               HARD, HARD + " Then prove the prime number theorem's error term and implement it in Rust."]
    gaps = []
    for prompt in prompts:
        found = score_difficulty(prompt)
        priors = auto_priors([0.9, 0.6], ["large", "small"], found.score, 0.5)
        (qa, _), (qb, _) = expected_quality([A, B], priors, features(prompt, found), view)
        gaps.append(qa - qb)
    difficulties = [score_difficulty(p).score for p in prompts]
    assert difficulties == sorted(difficulties)
    assert gaps == sorted(gaps) and gaps[0] < gaps[-1]


def test_the_difficulty_score_carries_verdicts_to_prompts_with_unseen_words(tmp_path):
    """Verdicts where the large target wins hard prompts and the small one easy prompts teach a
    pair's model to lean on the difficulty score, so prompts sharing no word with the training
    ones are ordered by difficulty too."""
    from llmroute.routing.learner import Learner, features, pair_key

    rng = random.Random(2)
    hard_train = ["prove that {n} divides {m}^{k} - 1 for every odd prime", "derive the integral of x^{n} sin x and verify it"]
    easy_train = ["hello there, how are you today", "thanks a lot, see you tomorrow"]
    verdicts = []
    for _ in range(300):
        verdicts.append((A, B, fill(rng.choice(hard_train), rng)))
        verdicts.append((B, A, fill(rng.choice(easy_train), rng)))
    Learner(tmp_path).record_many(verdicts)
    view = load_view(tmp_path)
    key, a_first = pair_key(A, B)
    unseen_easy = "good morning! lovely weather"
    unseen_hard = ("Implement a lock-free ring buffer in C++ with atomic indices, explain the memory "
                   "ordering, and analyse its throughput under contention.")
    assert score_difficulty(unseen_easy).score < 0.5 <= score_difficulty(unseen_hard).score
    margin = [view.margins(features(p))[view.keys.index(key)] * (1 if a_first else -1)
              for p in (unseen_easy, unseen_hard)]
    assert margin[0] < -1.0 < 1.0 < margin[1]  # clearly B on the easy one, clearly A on the hard one
