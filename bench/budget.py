"""Budget check cost: what reserve + settle add to a prompt, empty ledger vs a long one.

Run: `python bench/budget.py [--records N] [--rounds R] [--quick]`. For each ledger (empty, then
N generated records over 60 days, default 1,000,000) the script times the one-time index build,
then R rounds of what the engine does per prompt: `plan_filter()` + `used_fraction()`, reserve,
append the call's ledger line, settle. The ledger append is the engine's cost, not the budget's,
so it is timed apart and left out. Target: the long ledger adds no more than ~10 ms.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.figures import emit  # noqa: E402
from bench.gen_ledger import generate  # noqa: E402
from llmroute.budget.guard import BudgetGuard  # noqa: E402
from llmroute.config.load import parse_config  # noqa: E402
from llmroute.ledger import Ledger, make_ts  # noqa: E402
from llmroute.paths import Paths  # noqa: E402
from llmroute.types import Target  # noqa: E402

CONFIG = """\
version: 1
providers:
  openai:
    type: openai
    models:
      gpt-4o-mini: {input: 0.15, output: 0.60}
budget:
  daily: 1000000
  weekly: 1000000
  monthly: 1000000
  tokens_daily: 1000000000000
  per_provider: {openai: {daily: 1000000}}
  alert_at: [0.5, 0.8, 1.0]
"""
TARGET = Target("openai", "gpt-4o-mini")


def one_prompt(guard: BudgetGuard, ledger: Ledger) -> tuple[float, float]:
    """Seconds spent in the budget for one prompt, and in the ledger append."""
    provider = guard.config.providers["openai"]
    started = time.perf_counter()
    guard.plan_filter()(TARGET, provider, 0.001, 1200)
    guard.used_fraction()
    handle = guard.reserve(TARGET, provider, 0.001, 1200)
    middle = time.perf_counter()
    ledger.append({"ts": make_ts(time.time()), "status": "ok", "target": TARGET.id,
                   "provider": "openai", "model": TARGET.model, "cost_usd": 0.0004,
                   "input_tokens": 200, "output_tokens": 600, "price_source": "config"})
    appended = time.perf_counter()
    guard.settle(handle, 0.0004, 800)
    done = time.perf_counter()
    return (middle - started) + (done - appended), appended - middle


def measure(home: Path, records: int, rounds: int) -> dict:
    paths = Paths(data_dir=home, config_dir=home)
    home.mkdir(parents=True, exist_ok=True)
    generated = 0
    if records:
        began = time.perf_counter()
        generated = generate(records, paths.ledger, days=60)
        print(f"  generated {generated:,} records in {time.perf_counter() - began:.1f} s")
        os.sync()  # a real ledger is long on disk; don't time the flush of a fresh 500 MB file
    guard = BudgetGuard(parse_config(CONFIG), paths)
    began = time.perf_counter()
    guard.snapshot()  # builds the index from byte 0 (once)
    build = time.perf_counter() - began
    os.sync()
    ledger = Ledger(paths.ledger)
    timings = [one_prompt(guard, ledger) for _ in range(rounds)]
    budget = [t[0] * 1000 for t in timings]
    return {"records": generated, "build_s": build,
            "p50_ms": statistics.median(budget), "p95_ms": sorted(budget)[int(0.95 * (len(budget) - 1))],
            "append_ms": statistics.median(t[1] * 1000 for t in timings)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--quick", action="store_true", help="20,000 records, 50 rounds")
    args = parser.parse_args()
    records, rounds = (20_000, 50) if args.quick else (args.records, args.rounds)
    with tempfile.TemporaryDirectory(prefix="llmroute-bench-budget-") as tmp:
        empty = measure(Path(tmp) / "empty", 0, rounds)
        print(f"empty ledger: budget check p50 {empty['p50_ms']:.2f} ms, p95 {empty['p95_ms']:.2f} ms "
              f"(ledger append {empty['append_ms']:.2f} ms, not included)")
        full = measure(Path(tmp) / "full", records, rounds)
        print(f"{full['records']:,}-record ledger: index build {full['build_s']:.2f} s once; "
              f"budget check p50 {full['p50_ms']:.2f} ms, p95 {full['p95_ms']:.2f} ms")
        added = full["p50_ms"] - empty["p50_ms"]
        print(f"added by the long ledger: {added:+.2f} ms per prompt (target <= 10 ms)")
    emit("budget check, empty ledger (p50)", empty["p50_ms"], "ms")
    emit(f"budget check, {full['records']:,} records (p50)", full["p50_ms"], "ms")
    emit("budget check added by long ledger", added, "ms", "<= 10 ms")
    emit(f"budget index build, {full['records']:,} records", full["build_s"], "s", "once")


if __name__ == "__main__":
    main()
