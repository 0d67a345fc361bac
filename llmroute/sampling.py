"""Sampled A/B inside ordinary use (SPEC §8): now and then, also ask the other target.

The CLI calls `decide_sample` BEFORE the routed call, so the routed answer's records carry the
`ab_id` too (through `AskOptions.extra_record`), then `run_sample` after it. A prompt is sampled
when `abtest.sample_rate` > 0, the pair is configured, the prompt has at least
`abtest.min_tokens` tokens, and a draw from the injected random source falls under the rate.
`run_sample` then also needs the routed answer to come from one of the pair and the budget to
accept a reservation for the second call's worst case; a refused reservation means no call at
all. The second call is the identical request, a ledger record `kind: abtest` with the same
`ab_id`. With `abtest.judge` the pair is judged at once (both orders); otherwise it waits in
`state/abtest_pending.json` (question and both answers, kept in the private data dir) for
`llmroute abtest judge`.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from .abtest import ABTestStore, ManualJudge, PairResult
from .judging import judge_pair, manual_verdict
from .compare import Caller, CallResult, shared_client
from .quality import QualityStore
from .state import StateStore, sections
from .tokens import estimate_tokens
from .types import Answer, Message, Request, Target

if TYPE_CHECKING:
    import httpx

    from .config.model import Config
    from .engine import AskOptions, Engine

MAX_PENDING = 1000  # oldest pending pairs drop off first


def sampled_name(a: Target, b: Target) -> str:
    """The test name sampled pairs are stored under (one per configured pair)."""
    return f"sampled:{a.id}:{b.id}"


def decide_sample(config: "Config", request: Request, rng: random.Random) -> str | None:
    """An `ab_id` when this prompt should be sampled, else None. Draws from `rng` only when
    every other condition holds, so sampling off never consumes randomness."""
    ab = config.abtest
    if ab.sample_rate <= 0 or len(ab.targets) != 2 or ab.targets[0] == ab.targets[1]:
        return None
    if estimate_tokens(request.prompt_text) < ab.min_tokens:
        return None
    if rng.random() >= ab.sample_rate:
        return None
    return uuid.uuid4().hex


@dataclass
class SampleOutcome:
    ab_id: str
    other: CallResult
    outcome: str | None  # a | b | tie once judged; None = queued or not judged
    queued: bool


def run_sample(engine: "Engine", request: Request, answer: Answer, ab_id: str, *,
               aclient: "httpx.AsyncClient | None" = None) -> SampleOutcome | None:
    """Send the identical request to the other target of the pair and judge or queue the pair.
    None when nothing was sent (the answer is not from the pair, or the budget said no)."""
    pair = engine.config.abtest.targets
    if len(pair) != 2 or answer.target not in pair:
        return None
    other_target = pair[1] if answer.target == pair[0] else pair[0]
    return asyncio.run(_sample(engine, request, answer, ab_id, other_target, aclient))


def maybe_sample(engine: "Engine", request: Request, answer: Answer, options: "AskOptions",
                 config: "Config", rng: random.Random, *,
                 aclient: "httpx.AsyncClient | None" = None) -> str | None:
    """One call for callers that did not decide before the routed call: use the `ab_id` the
    options carry, else decide now (the routed answer's records then lack the id). Returns the
    `ab_id` when the second call ran."""
    ab_id = options.extra_record.get("ab_id") or decide_sample(config, request, rng)
    if not ab_id:
        return None
    outcome = run_sample(engine, request, answer, ab_id, aclient=aclient)
    return outcome.ab_id if outcome is not None and outcome.other.status != "skipped" else None


async def _sample(engine: "Engine", request: Request, answer: Answer, ab_id: str, other: Target,
                  aclient) -> SampleOutcome | None:
    a, b = engine.config.abtest.targets
    judge = engine.config.abtest.judge
    extra = {"ab_id": ab_id, "abtest": sampled_name(a, b)}
    async with shared_client(aclient) as client:
        caller = Caller(engine, client, tags=("abtest:sampled",))
        prepared = caller.prepare(other, request, kind="abtest", extra=extra)
        if isinstance(prepared, CallResult):
            return None
        result = await caller.send(prepared)
        if not result.ok:
            return SampleOutcome(ab_id, result, None, False)
        routed = CallResult(answer.target, "ok", answer.request_id, answer.text, answer.latency_ms,
                            answer.usage.input_tokens if answer.usage else 0,
                            answer.usage.output_tokens if answer.usage else 0, answer.cost_usd)
        results = (routed, result) if answer.target == a else (result, routed)
        pair = PairResult(ab_id, results[0], results[1], None)
        if judge is None:
            PendingStore(engine.paths.state_dir, clock=engine.clock).add(request, pair)
            return SampleOutcome(ab_id, result, None, True)
        verdict = await judge_pair(caller, judge, request, pair.a.text, pair.b.text, extra)
    if verdict.outcome is None:  # the judge failed: keep the pair for `abtest judge`
        PendingStore(engine.paths.state_dir, clock=engine.clock).add(request, pair)
        return SampleOutcome(ab_id, result, None, True)
    pair.outcome = verdict.outcome
    _store(engine, a, b, [pair])
    return SampleOutcome(ab_id, result, pair.outcome, False)


def _store(engine: "Engine", a: Target, b: Target, pairs: list[PairResult]) -> None:
    ABTestStore(engine.paths.state_dir, clock=engine.clock).add(sampled_name(a, b), a, b, pairs)
    quality = QualityStore(engine.paths.state_dir, clock=engine.clock)
    for pair in pairs:
        if pair.outcome is not None:
            quality.record_pair(a.id, b.id, pair.outcome)


class PendingStore:
    """Sampled pairs waiting for a judge (`state/abtest_pending.json`)."""

    def __init__(self, state_dir: Path, *, clock: Callable[[], float] = time.time):
        self.clock = clock
        self.store = StateStore(Path(state_dir) / "abtest_pending.json", clock=clock,
                                valid=sections(pairs=dict))

    def add(self, request: Request, pair: PairResult) -> None:
        entry = {
            "ts": self.clock(), "a": pair.a.target.id, "b": pair.b.target.id,
            "system": request.system, "prompt": "\n".join(m.content for m in request.messages if m.role == "user"),
            "max_tokens": request.max_tokens, "temperature": request.temperature,
            "text_a": pair.a.text, "text_b": pair.b.text,
            "la": pair.a.latency_ms, "lb": pair.b.latency_ms, "ca": pair.a.cost_usd, "cb": pair.b.cost_usd,
        }
        with self.store.update() as doc:
            pending = doc.setdefault("pairs", {})
            pending[pair.ab_id] = entry
            for stale in sorted(pending, key=lambda k: pending[k].get("ts", 0))[:-MAX_PENDING]:
                del pending[stale]

    def items(self) -> dict[str, dict]:
        pending = self.store.read().get("pairs") or {}
        return {k: v for k, v in pending.items() if isinstance(v, dict)
                and all(isinstance(v.get(f), str) for f in ("a", "b", "prompt", "text_a", "text_b"))}

    def remove(self, ab_ids: list[str]) -> None:
        with self.store.update() as doc:
            pending = doc.setdefault("pairs", {})
            for ab_id in ab_ids:
                pending.pop(ab_id, None)


def judge_pending(engine: "Engine", *, judge: Target | None = None, manual: ManualJudge | None = None,
                  aclient: "httpx.AsyncClient | None" = None) -> list[PairResult]:
    """Judge every pending sampled pair; judged ones leave the queue and join the results."""
    pending = PendingStore(engine.paths.state_dir, clock=engine.clock)
    items = pending.items()
    if not items:
        return []
    if manual is not None:
        verdicts = {k: manual_verdict(v["prompt"], v["text_a"], v["text_b"], ask=manual.ask,
                                      show=manual.show, rng=manual.rng) for k, v in items.items()}
    else:
        verdicts = asyncio.run(_judge_all(engine, judge, items, aclient))
    done: list[PairResult] = []
    for ab_id, outcome in verdicts.items():
        if outcome is None:
            continue
        v = items[ab_id]
        a, b = Target.parse(v["a"]), Target.parse(v["b"])
        pair = PairResult(ab_id, CallResult(a, "ok", "", v["text_a"], v.get("la") or 0, cost_usd=v.get("ca")),
                          CallResult(b, "ok", "", v["text_b"], v.get("lb") or 0, cost_usd=v.get("cb")), outcome)
        _store(engine, a, b, [pair])
        done.append(pair)
    pending.remove([p.ab_id for p in done])
    return done


async def _judge_all(engine: "Engine", judge: Target, items: dict[str, dict], aclient) -> dict[str, str | None]:
    async with shared_client(aclient) as client:
        caller = Caller(engine, client, tags=("abtest:sampled",))

        async def one(ab_id: str, v: dict) -> str | None:
            a, b = Target.parse(v["a"]), Target.parse(v["b"])
            request = Request(messages=(Message("user", v["prompt"]),), system=v.get("system"))
            extra = {"ab_id": ab_id, "abtest": sampled_name(a, b)}
            return (await judge_pair(caller, judge, request, v["text_a"], v["text_b"], extra)).outcome

        outcomes = await asyncio.gather(*(one(k, v) for k, v in items.items()))
    return dict(zip(items, outcomes))
