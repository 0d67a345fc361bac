"""abtest: judge prompt, verdict parsing, order swap, manual judging, storage and report."""

from __future__ import annotations

import random

import pytest

from llmroute import abtest
from llmroute.abtest import (ABTestStore, ManualJudge, render_report,
                             run_abtest, summarize, verdict_text)
from llmroute.errors import UsageError
from llmroute.judging import combine, judge_prompt, parse_verdict
from llmroute.quality import QualityStore
from llmroute.types import Message, Request, Target

from .abtest_support import FakeProviders, config_text, ledger, make_engine

T = Target.parse


def requests(n: int) -> list[Request]:
    return [Request(messages=(Message("user", f"question {i}"),), max_tokens=50) for i in range(n)]


def test_judge_prompt_has_the_markers_the_judge_keys_on():
    text = judge_prompt("Q?", "first answer", "second answer")
    assert text.index("[Answer A]") < text.index("first answer") < text.index("[Answer B]")
    assert text.index("second answer") < text.index("[End]")
    assert "Answer with exactly" in text and "A, B or TIE" in text


@pytest.mark.parametrize("reply,verdict", [
    ("A", "A"), ("b", "B"), ("TIE", "TIE"), ("**A**", "A"), ("'B' because it is shorter", "B"),
    ("tie.", "TIE"), ("Answer A", None), ("", None), ("ABSOLUTELY", None),
])
def test_parse_verdict(reply, verdict):
    assert parse_verdict(reply) == verdict


@pytest.mark.parametrize("first,swapped,outcome", [
    ("A", "B", "a"), ("B", "A", "b"), ("A", "A", "tie"), ("B", "B", "tie"),
    ("TIE", "B", "tie"), (None, "B", "tie"), ("A", None, "tie"),
])
def test_only_agreement_across_the_swap_makes_a_winner(first, swapped, outcome):
    assert combine(first, swapped) == outcome


def test_verdict_text():
    assert verdict_text(9, 1, 0.021484375) == "A is better (p=0.021)"
    assert verdict_text(1, 30, 0.0000001) == "B is better (p<0.001)"
    assert verdict_text(6, 4, 0.41) == "no significant difference yet (p=0.41)"


def test_run_names_the_better_target_and_stores_everything(isolated_env):
    fakes = FakeProviders({"good": "GOOD: {prompt}", "bad": "hmm: {prompt}", "j": "judge"})
    engine = make_engine(isolated_env, config_text(["good", "bad", "j"]))
    pairs = run_abtest(engine, T("bad/m"), T("good/m"), requests(12), name="t1", judge=T("j/m"),
                       concurrency=3, aclient=fakes.client())
    assert [p.outcome for p in pairs] == ["b"] * 12
    report = summarize("t1", ABTestStore(engine.paths.state_dir).tests()["t1"])
    assert (report.b.wins, report.b.losses, report.a.wins) == (12, 0, 0)
    assert report.verdict == "B is better (p<0.001)"
    assert report.b.win_rate == 1.0 and report.b.interval[0] == pytest.approx(0.7575, abs=1e-3)
    assert report.a.mean_cost_usd == pytest.approx(20 / 1e6)
    records = ledger(isolated_env)
    assert sum(r["kind"] == "abtest" for r in records) == 24 and sum(r["kind"] == "judge" for r in records) == 24
    by_ab = {}
    for r in records:
        by_ab.setdefault(r["ab_id"], []).append(r["kind"])
    assert all(sorted(kinds) == ["abtest", "abtest", "judge", "judge"] for kinds in by_ab.values())
    scores = QualityStore(engine.paths.state_dir).scores()
    assert scores["good/m"][0] > scores["bad/m"][0] and scores["good/m"][1] == 12
    assert "verdict: B is better" in render_report(report)


def test_a_failed_answer_leaves_the_pair_unjudged(isolated_env):
    fakes = FakeProviders({"good": "GOOD", "down": 500, "j": "judge"})
    engine = make_engine(isolated_env, config_text(["good", "down", "j"]))
    pairs = run_abtest(engine, T("good/m"), T("down/m"), requests(3), name="t", judge=T("j/m"),
                       aclient=fakes.client())
    assert all(p.outcome is None for p in pairs)
    assert not any(name == "j" for name, _ in fakes.calls)
    report = summarize("t", ABTestStore(engine.paths.state_dir).tests()["t"])
    assert (report.judged, report.unjudged) == (0, 3)
    assert report.verdict == "no significant difference yet (p=1)"


def test_manual_judging_is_blind_and_maps_back(isolated_env):
    fakes = FakeProviders({"x": "answer X", "y": "answer Y"})
    engine = make_engine(isolated_env, config_text(["x", "y"]))
    shown: list[str] = []
    replies = iter(["what?", "1", "2", "t", "s"])

    def ask(question: str) -> str:
        return next(replies)

    pairs = run_abtest(engine, T("x/m"), T("y/m"), requests(4), name="m",
                       manual=ManualJudge(ask=ask, show=shown.append, rng=random.Random(1)),
                       aclient=fakes.client())
    assert "please type 1, 2, t or s" in shown
    assert [p.outcome for p in pairs][2:] == ["tie", None]
    assert pairs[0].outcome in ("a", "b") and pairs[1].outcome in ("a", "b")
    # what was shown as [1] in the first prompt is what "1" picked
    first_block = shown[0]
    picked = "answer X" if first_block.index("answer X") < first_block.index("answer Y") else "answer Y"
    assert pairs[0].outcome == ("a" if picked == "answer X" else "b")


def test_needs_exactly_one_judge_and_a_name_keeps_its_targets(isolated_env):
    engine = make_engine(isolated_env, config_text(["x", "y", "z"]))
    with pytest.raises(UsageError):
        run_abtest(engine, T("x/m"), T("y/m"), requests(1), name="n")
    store = ABTestStore(engine.paths.state_dir)
    store.add("n", T("x/m"), T("y/m"), [])
    with pytest.raises(UsageError, match="compares x/m with y/m"):
        run_abtest(engine, T("x/m"), T("z/m"), requests(1), name="n", judge=T("z/m"))


def test_report_latency_and_ties_from_stored_pairs():
    test = {"a": "x/m", "b": "y/m", "pairs": [
        {"o": "a", "la": 100, "lb": 300, "ca": 0.01, "cb": 0.02},
        {"o": "tie", "la": 200, "lb": 300, "ca": 0.03, "cb": 0.02},
        {"o": None, "la": None, "lb": 900, "ca": None, "cb": 0.02}, "junk"]}
    report = summarize("r", test)
    assert (report.a.wins, report.a.ties, report.b.losses, report.unjudged) == (1, 1, 1, 1)
    assert report.a.mean_latency_ms == 150 and report.b.p95_latency_ms == 900
    assert report.a.mean_cost_usd == pytest.approx(0.02)
    assert report.to_json()["a"]["interval"] == list(report.a.interval)
    assert abtest.ALPHA == 0.05


def _teach(state_dir, n: int = 60) -> None:
    """b wins maths prompts, a wins poems (the learner's own synthetic world)."""
    from llmroute.routing.learner import Learner

    rng = random.Random(3)
    verdicts = []
    for i in range(n):
        if i % 2:
            verdicts.append(("b/m", "a/m", f"solve the equation {rng.randint(2, 9)}x + 1 = {rng.randint(10, 99)}"))
        else:
            verdicts.append(("a/m", "b/m", f"write a poem about the {rng.choice(['sea', 'rain', 'moon'])}"))
    Learner(state_dir).record_many(verdicts)
    Learner(state_dir).record_feedback("a/m", "up", "write a haiku")


def test_learned_pairs_name_the_words_that_favour_each_side(tmp_path):
    from llmroute.abtest import learned_pairs, render_learned, report_vocabulary
    from llmroute.routing.learner import BASELINE, load_view

    _teach(tmp_path)
    pairs = learned_pairs(load_view(tmp_path), report_vocabulary(["write a poem about the sea"]))
    main, thumbs = pairs
    assert (main.a, main.b, main.verdicts) == ("a/m", "b/m", 60)
    assert "poem" in [w for w, _ in main.favour_a] and "solve" in [w for w, _ in main.favour_b]
    assert all(v > 0 for _, v in main.favour_a + main.favour_b)
    assert (thumbs.a, thumbs.b, thumbs.verdicts) == (BASELINE, "a/m", 1)
    text = render_learned(pairs)
    assert "a/m vs b/m: 60 verdict(s)" in text and "thumbs baseline vs a/m: 1 verdict(s)" in text
    assert "favour a/m: " in text and "poem +" in text and "solve +" in text
    assert render_learned([]) == "learner: no decided verdicts yet"


def test_abtest_report_shows_the_learner(isolated_env):
    import json

    from llmroute.paths import Paths

    from .support import invoke

    state = Paths.from_env({"LLMROUTE_HOME": str(isolated_env)}).state_dir
    state.mkdir(parents=True, exist_ok=True)
    _teach(state)
    code, out, err = invoke(["abtest", "report"])
    assert code == 0, err
    assert "a/m vs b/m: 60 verdict(s)" in out and "solve +" in out
    code, out, err = invoke(["abtest", "report", "--json"])
    learner = json.loads(out)["learner"]
    assert learner[0]["verdicts"] == 60 and learner[0]["favour_b"][0][1] > 0
