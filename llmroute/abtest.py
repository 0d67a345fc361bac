"""A/B tests between two targets (SPEC §8): run, judge, store, report.

Judging is where A/B tests usually go wrong, so the rules are fixed here:
- The judge sees the question and both answers between fixed markers and must answer exactly
  `A`, `B` or `TIE`.
- Every pair is judged twice, once in each order. A pair is a win only when both orders name
  the same answer; any disagreement (or an unreadable verdict) is a tie. A judge that simply
  prefers whatever comes first therefore produces ties, never a false winner.
- The verdict is the exact two-sided sign test on the non-tied pairs at alpha 0.05.

Each answer is a ledger record `kind: abtest` with the pair's shared `ab_id`; each judge call a
`kind: judge` record with the same `ab_id`. Pair outcomes, latencies and costs are kept per test
name in `state/abtest.json`, so `abtest report` never rescans the ledger, and each judged pair
also feeds the targets' quality scores.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

from .compare import Caller, CallResult, shared_client
from .errors import UsageError
from .judging import judge_pair, manual_verdict
from .quality import QualityStore
from .state import StateStore, sections
from .stats import format_p, mean, p95, sign_test_p, wilson_interval
from .types import Request, Target

if TYPE_CHECKING:
    import httpx

    from .engine import Engine

ALPHA = 0.05
MAX_PAIRS_PER_TEST = 100_000  # bounds the state file; older pairs drop off first


@dataclass
class PairResult:
    ab_id: str
    a: CallResult
    b: CallResult
    outcome: str | None  # a | b | tie; None = not judged (an answer or the judge failed, or skipped)


@dataclass
class ManualJudge:
    ask: Callable[[str], str]
    show: Callable[[str], None]
    rng: random.Random


def run_abtest(engine: "Engine", a: Target, b: Target, requests: Sequence[Request], *,
               name: str, judge: Target | None = None, manual: ManualJudge | None = None,
               concurrency: int = 4, timeout: float | None = None,
               aclient: "httpx.AsyncClient | None" = None, on_pair: Callable[[PairResult], None] = lambda pair: None) -> list[PairResult]:
    """Both targets answer every request (N prompts at a time), each pair is judged, and the
    pairs are stored under `name` and fed to the quality scores."""
    if (judge is None) == (manual is None):
        raise UsageError("an A/B test needs exactly one judge: --judge TARGET or --manual")
    store = ABTestStore(engine.paths.state_dir, clock=engine.clock)
    store.check(name, a, b)
    pairs = asyncio.run(_arun(engine, a, b, requests, name=name, judge=judge, concurrency=concurrency,
                              timeout=timeout, aclient=aclient, on_pair=on_pair))
    if manual is not None:
        for pair, request in zip(pairs, requests):
            if pair.a.ok and pair.b.ok:
                pair.outcome = manual_verdict(request.prompt_text, pair.a.text, pair.b.text,
                                              ask=manual.ask, show=manual.show, rng=manual.rng)
    store.add(name, a, b, pairs)
    quality = QualityStore(engine.paths.state_dir, clock=engine.clock, memory=engine.memory)
    for pair, request in zip(pairs, requests):
        if pair.outcome is not None:
            quality.record_pair(a.id, b.id, pair.outcome, prompt=request.prompt_text)
    return pairs


async def _arun(engine: "Engine", a: Target, b: Target, requests: Sequence[Request], *, name: str,
                judge: Target | None, concurrency: int, timeout: float | None, aclient,
                on_pair) -> list[PairResult]:
    gate = asyncio.Semaphore(max(1, concurrency))
    async with shared_client(aclient) as client:
        caller = Caller(engine, client, tags=(f"abtest:{name}",), timeout=timeout)

        async def one(request: Request) -> PairResult:
            async with gate:
                ab_id = uuid.uuid4().hex
                extra = {"ab_id": ab_id, "abtest": name}
                answer_a, answer_b = await asyncio.gather(
                    caller.call(a, request, kind="abtest", extra=extra),
                    caller.call(b, request, kind="abtest", extra=extra))
                pair = PairResult(ab_id, answer_a, answer_b, None)
                if judge is not None and answer_a.ok and answer_b.ok:
                    verdict = await judge_pair(caller, judge, request, answer_a.text, answer_b.text, extra)
                    pair.outcome = verdict.outcome
                on_pair(pair)
                return pair

        return list(await asyncio.gather(*(one(r) for r in requests)))


# --- storing ---------------------------------------------------------------------------------

class ABTestStore:
    """Per test name: its two targets and one compact entry per pair (`state/abtest.json`)."""

    def __init__(self, state_dir: Path, *, clock: Callable[[], float] = time.time):
        self.clock = clock
        self.store = StateStore(Path(state_dir) / "abtest.json", clock=clock, valid=sections(tests=dict))

    def check(self, name: str, a: Target, b: Target) -> None:
        """A name keeps its targets: reusing it for another pair would mix two experiments."""
        test = (self.store.read().get("tests") or {}).get(name)
        if isinstance(test, dict) and (test.get("a"), test.get("b")) != (a.id, b.id):
            raise UsageError(f"A/B test {name!r} compares {test.get('a')} with {test.get('b')}",
                             "use another --name for this pair")

    def add(self, name: str, a: Target, b: Target, pairs: Sequence[PairResult]) -> None:
        entries = [_entry(p, self.clock()) for p in pairs]
        with self.store.update() as doc:
            tests = doc.setdefault("tests", {})
            test = tests.get(name)
            if not isinstance(test, dict) or not isinstance(test.get("pairs"), list):
                test = {"a": a.id, "b": b.id, "created": self.clock(), "pairs": []}
            test["pairs"] = (test["pairs"] + entries)[-MAX_PAIRS_PER_TEST:]
            tests[name] = test

    def tests(self) -> dict[str, dict]:
        tests = self.store.read().get("tests") or {}
        return {n: t for n, t in tests.items()
                if isinstance(t, dict) and isinstance(t.get("pairs"), list)
                and isinstance(t.get("a"), str) and isinstance(t.get("b"), str)}


def _entry(pair: PairResult, now: float) -> dict:
    return {"id": pair.ab_id, "ts": round(now, 3), "o": pair.outcome,
            "la": pair.a.latency_ms if pair.a.ok else None, "lb": pair.b.latency_ms if pair.b.ok else None,
            "ca": pair.a.cost_usd if pair.a.ok else None, "cb": pair.b.cost_usd if pair.b.ok else None}


# --- reporting -------------------------------------------------------------------------------

@dataclass
class SideStats:
    target: str
    wins: int
    losses: int
    ties: int
    win_rate: float | None  # of decisive pairs
    interval: tuple[float, float]
    mean_latency_ms: float | None
    p95_latency_ms: float | None
    mean_cost_usd: float | None


@dataclass
class ABReport:
    name: str
    a: SideStats
    b: SideStats
    judged: int
    unjudged: int
    p_value: float
    verdict: str

    def to_json(self) -> dict:
        return {"name": self.name, "a": self.a.__dict__ | {"interval": list(self.a.interval)},
                "b": self.b.__dict__ | {"interval": list(self.b.interval)}, "judged": self.judged,
                "unjudged": self.unjudged, "p_value": self.p_value, "verdict": self.verdict}


def summarize(name: str, test: dict) -> ABReport:
    """The statistics of one stored test (SPEC §8)."""
    pairs = [p for p in test["pairs"] if isinstance(p, dict)]
    outcomes = [p.get("o") for p in pairs]
    wins_a, wins_b, ties = outcomes.count("a"), outcomes.count("b"), outcomes.count("tie")
    p_value = sign_test_p(wins_a, wins_b)
    return ABReport(
        name=name,
        a=_side(test["a"], wins_a, wins_b, ties, pairs, "la", "ca"),
        b=_side(test["b"], wins_b, wins_a, ties, pairs, "lb", "cb"),
        judged=wins_a + wins_b + ties, unjudged=len(pairs) - (wins_a + wins_b + ties),
        p_value=p_value, verdict=verdict_text(wins_a, wins_b, p_value),
    )


def verdict_text(wins_a: int, wins_b: int, p_value: float) -> str:
    if p_value < ALPHA and wins_a != wins_b:
        return f"{'A' if wins_a > wins_b else 'B'} is better ({format_p(p_value)})"
    return f"no significant difference yet ({format_p(p_value)})"


def _side(target: str, wins: int, losses: int, ties: int, pairs: list[dict], lat: str, cost: str) -> SideStats:
    decisive = wins + losses
    latencies = [float(p[lat]) for p in pairs if isinstance(p.get(lat), (int, float))]
    costs = [float(p[cost]) for p in pairs if isinstance(p.get(cost), (int, float))]
    return SideStats(target, wins, losses, ties, wins / decisive if decisive else None,
                     wilson_interval(wins, decisive), mean(latencies), p95(latencies), mean(costs))


def render_report(report: ABReport, feedback: dict[str, tuple[int, int]] | None = None) -> str:
    """The text `abtest run` and `abtest report` print."""
    lines = [f"A/B test {report.name}: {report.judged} judged pair(s)"
             + (f", {report.unjudged} not judged" if report.unjudged else "")]
    header = f"  {'':2} {'target':<34} {'wins':>5} {'losses':>6} {'ties':>5}  {'win rate (95% CI)':<22} {'mean ms':>8} {'p95 ms':>8} {'mean cost':>11}"
    lines.append(header)
    for label, side in (("A", report.a), ("B", report.b)):
        rate = "-" if side.win_rate is None else f"{side.win_rate:.0%} ({side.interval[0]:.0%}-{side.interval[1]:.0%})"
        lines.append(f"  {label:2} {side.target:<34} {side.wins:>5} {side.losses:>6} {side.ties:>5}  {rate:<22} "
                     f"{_num(side.mean_latency_ms):>8} {_num(side.p95_latency_ms):>8} {_money(side.mean_cost_usd):>11}")
    for label, side in (("A", report.a), ("B", report.b)):
        if feedback and side.target in feedback:
            up, down = feedback[side.target]
            lines.append(f"  feedback on {label} ({side.target}): {up} up, {down} down")
    lines.append(f"verdict: {report.verdict}")
    return "\n".join(lines)


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def _money(value: float | None) -> str:
    from .render import money

    return "-" if value is None else money(value)


# --- what the per-prompt learner learned -------------------------------------------------------

@dataclass
class LearnedPair:
    """One target pair of the learner (`routing/learner.py`): its verdict count and the prompt
    words whose weights most favour each side (`b` is `learner.BASELINE` for thumbs verdicts)."""
    a: str
    b: str
    verdicts: int
    favour_a: list[tuple[str, float]]
    favour_b: list[tuple[str, float]]

    def to_json(self) -> dict:
        return {"a": self.a, "b": self.b, "verdicts": self.verdicts,
                "favour_a": [list(w) for w in self.favour_a], "favour_b": [list(w) for w in self.favour_b]}


def report_vocabulary(prompts: Sequence[str] = ()) -> set[str]:
    """The words the report can name. The learner keeps hashed features, never prompt text, so a
    weight is named by hashing candidate words: the difficulty lexicon's, plus those of the given
    prompts (e.g. the ledger's, when `ledger.log_prompts` stores them)."""
    from .routing.difficulty import WORDS
    from .routing.learner import MAX_WORDS, _WORD

    vocabulary = set(WORDS)
    for prompt in prompts:
        vocabulary.update(_WORD.findall(prompt.lower(), 0, 8 * 1024)[:MAX_WORDS])
    return vocabulary


MIN_SHOWN_WEIGHT = 0.05  # smaller weights are mostly hash collisions and regularised noise


def learned_pairs(view, vocabulary, k: int = 5) -> list[LearnedPair]:
    """Every target pair the learner holds, most verdicts first, with its top `k` words a side."""
    from .routing.learner import top_words

    vocabulary = set(vocabulary)
    out = []
    for key, (n, _) in view.pairs.items():
        a, _, b = key.partition("\t")
        favour_a, favour_b = top_words(view, a, b, vocabulary, k)
        out.append(LearnedPair(a, b, n, [w for w in favour_a if w[1] >= MIN_SHOWN_WEIGHT],
                               [w for w in favour_b if w[1] >= MIN_SHOWN_WEIGHT]))
    out.sort(key=lambda p: (-p.verdicts, p.a, p.b))
    return out


def render_learned(pairs: Sequence[LearnedPair]) -> str:
    """The learner's part of `abtest report`."""
    from .routing.learner import BASELINE

    if not pairs:
        return "learner: no decided verdicts yet"
    lines = ["learner (per-prompt; words whose weights most favour each side):"]
    for p in pairs:
        b = "thumbs baseline" if p.b == BASELINE else p.b
        a = "thumbs baseline" if p.a == BASELINE else p.a
        lines.append(f"  {a} vs {b}: {p.verdicts} verdict(s)")
        for side, words in ((a, p.favour_a), (b, p.favour_b)):
            shown = ", ".join(f"{w} {v:+.2f}" for w, v in words) or "-"
            lines.append(f"    favour {side}: {shown}")
    return "\n".join(lines)
