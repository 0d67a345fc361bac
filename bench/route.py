"""Planning speed: p50/p95 time to plan one prompt over a 20-target config.

Run: `python bench/route.py [--prompts N] [--strategy NAME]`. The routing memory is read once
(its time is printed separately, as the engine reads it once per invocation), and so is the
config's `PlanningTable` (the engine builds it once, in `Engine.__init__`); every prompt is then
planned against that snapshot and table with every strategy in turn, with a trained per-prompt
learner (`routing/learner.py`: 19 judged target pairs and thumbs models for all 20 targets, 1,000
verdicts). Target: p95 < 1 ms per prompt.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from types import MappingProxyType

import sys

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.figures import emit  # noqa: E402
from llmroute.config.model import STRATEGIES, Config, Defaults, ModelConfig, ProviderConfig
from llmroute.errors import ErrorClass
from llmroute.routing.learner import BASELINE, Learner, load_view
from llmroute.routing.memory import RoutingMemory
from llmroute.routing.inputs import PlanInputs
from llmroute.routing.inputs import PlanningTable
from llmroute.routing.planner import make_plan
from llmroute.types import Message, RateLimitInfo, Request, Target

PROVIDERS = [("openai", "openai", ["gpt-4o-mini", "gpt-4o", "gpt-4.1-mini", "gpt-4.1"]),
             ("anthropic", "anthropic", ["claude-haiku-4-5", "claude-sonnet-4-5"]),
             ("gemini", "gemini", ["gemini-2.5-flash", "gemini-2.5-pro"]),
             ("groq", "openai", ["llama-3.3-70b-versatile", "llama-3.1-8b-instant"]),
             ("mistral", "openai", ["mistral-small-latest", "mistral-large-latest"]),
             ("cohere", "cohere", ["command-r", "command-r-plus"]),
             ("ollama", "ollama", ["llama3.2", "qwen2.5"]),
             ("custom", "openai", ["a", "b", "c", "d"])]

WORDS = ("the quick brown fox jumps over a lazy dog prove derive step by step explain why code "
         "function class return import async optimise complexity theorem lemma summary").split()


def build_config() -> Config:
    providers = {}
    for index, (name, type_, models) in enumerate(PROVIDERS):
        priced = name == "custom"
        providers[name] = ProviderConfig(
            name, type_, priority=10 * index, weight=1 + index,
            base_url="https://example.com/v1" if name == "custom" else None,
            models=MappingProxyType({m: ModelConfig(m, input=1.0 if priced else None,
                                                    output=3.0 if priced else None,
                                                    tier=("small", "large")[i % 2] if priced else None)
                                     for i, m in enumerate(models)}))
    targets = [Target(p, m) for p, _, models in PROVIDERS for m in models]
    assert len(targets) == 20
    return Config(defaults=Defaults(route="default"), providers=MappingProxyType(providers),
                  routes=MappingProxyType({"default": tuple(targets)}))


def prompts(n: int, rng: random.Random) -> list[str]:
    out = []
    for _ in range(n):
        words = [rng.choice(WORDS) for _ in range(rng.choice((5, 30, 200, 1500)))]
        if rng.random() < 0.2:
            words.append("\n```python\ndef f(x):\n    return x * 2\n```\n")
        out.append(" ".join(words))
    return out


def seed_memory(memory: RoutingMemory, config: Config) -> None:
    """Some history, so filters and latency/round-robin have something to read."""
    targets = config.all_targets()
    for i, target in enumerate(targets):
        memory.record_success(target, 200 + 37 * i, RateLimitInfo(remaining_requests=100), 500)
    for _ in range(3):
        memory.record_failure(targets[3], ErrorClass.SERVER_ERROR, None, None, 20.0)
    memory.advance_round_robin("route:default", 20)


def train_learner(state_dir: Path, config: Config, rng: random.Random, verdicts: int = 1000) -> None:
    """Judged pairs between neighbouring targets and thumbs verdicts on every target."""
    ids = [t.id for t in config.all_targets()]
    batch = []
    for i in range(verdicts):
        prompt = " ".join(rng.choice(WORDS) for _ in range(rng.choice((5, 30, 200))))
        a = ids[i % len(ids)]
        b = ids[(i + 1) % len(ids)] if i % 2 else BASELINE
        batch.append((a, b, prompt) if rng.random() < 0.5 else (b, a, prompt))
    Learner(state_dir).record_many(batch)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=2000)
    parser.add_argument("--strategy", choices=STRATEGIES, default=None)
    parser.add_argument("--quick", action="store_true", help="200 prompts (CI smoke mode)")
    args = parser.parse_args()
    if args.quick:
        args.prompts = 200
    rng = random.Random(42)
    config = build_config()
    texts = prompts(args.prompts, rng)
    now = datetime.now(timezone.utc)
    with tempfile.TemporaryDirectory() as tmp:
        memory = RoutingMemory(Path(tmp))
        seed_memory(memory, config)
        train_learner(Path(tmp), config, rng)
        learner = load_view(Path(tmp))
        reads = []
        for _ in range(20):
            start = time.perf_counter()
            snapshot = memory.snapshot()
            reads.append((time.perf_counter() - start) * 1000)
    print(f"memory snapshot read: median {statistics.median(reads):.3f} ms (once per invocation)")
    emit("routing memory snapshot read", statistics.median(reads), "ms", "once per invocation")
    builds = []
    for _ in range(20):
        start = time.perf_counter()
        table = PlanningTable.for_config(config)
        builds.append((time.perf_counter() - start) * 1000)
    print(f"planning table build: median {statistics.median(builds):.3f} ms (once per engine)")
    emit("planning table build", statistics.median(builds), "ms", "once per engine")
    strategies = [args.strategy] if args.strategy else list(STRATEGIES)
    every: list[float] = []
    for strategy in strategies:
        times = []
        for text in texts:
            inputs = PlanInputs(config=config, request=Request((Message("user", text),)), now=now,
                                strategy_option=strategy, extra={"rng": rng}, table=table,
                                learner=learner)
            start = time.perf_counter()
            plan = make_plan(inputs, snapshot)
            times.append((time.perf_counter() - start) * 1000)
            assert plan.candidates
        times.sort()
        p50, p95 = times[len(times) // 2], times[int(len(times) * 0.95)]
        print(f"{strategy:12s} {len(texts)} prompts  p50 {p50:.3f} ms  p95 {p95:.3f} ms  max {times[-1]:.3f} ms")
        every += times
    every.sort()
    emit("planning time per prompt, p95 (20 targets, all strategies)", every[int(len(every) * 0.95)], "ms", "< 1")


if __name__ == "__main__":
    main()
