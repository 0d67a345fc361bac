"""Batch throughput: N prompts at -P 32 against a fake OpenAI server that takes 100 ms per
answer. Target: >= 250 prompts/s for 1,000 prompts (the server's own ceiling at -P 32 is 320/s).

    python bench/batch.py [--prompts 1000] [--parallel 32] [--latency-ms 100] [--runs 3]

Each run is a fresh `llmroute batch` process against the same server; the figure is the median
run (best and every run are printed too, since other work on the machine moves single runs a
lot), with the batch process's own CPU time per prompt, which load moves much less.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.figures import emit  # noqa: E402
from tests.support import fake_server  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=1000)
    parser.add_argument("--parallel", type=int, default=32)
    parser.add_argument("--latency-ms", type=int, default=100)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="100 prompts, one run (CI smoke mode)")
    args = parser.parse_args(argv)
    if args.quick:
        args.prompts, args.runs = 100, 1
    binary = str(Path(sys.executable).parent / "llmroute")
    with tempfile.TemporaryDirectory() as home, fake_server(reply="ok", latency_ms=args.latency_ms) as url:
        config = Path(home) / "llmroute.yaml"
        config.write_text(f"version: 1\nproviders:\n  fake:\n    type: openai\n    base_url: {url}/v1\n"
                          "    models: {fake-model: {input: 1, output: 1}}\nroutes:\n  default: [fake]\n")
        prompts = Path(home) / "prompts.txt"
        prompts.write_text("".join(f"prompt number {i}\n" for i in range(args.prompts)))
        out = Path(home) / "out.jsonl"
        rates, cpu_ms = [], []
        for run in range(1, args.runs + 1):
            # A fresh data dir per run: no response cache, ledger or routing memory carried over.
            env = {**os.environ, "LLMROUTE_HOME": str(Path(home) / f"data-{run}"), "LLMROUTE_CONFIG": str(config)}
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            started = time.perf_counter()
            subprocess.run([binary, "batch", str(prompts), "-P", str(args.parallel), "--out", str(out)],
                           env=env, check=True, stderr=subprocess.DEVNULL)
            elapsed = time.perf_counter() - started
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
            done = sum(1 for line in out.read_text().splitlines() if json.loads(line)["error"] is None)
            rates.append(args.prompts / elapsed)
            cpu_ms.append(cpu * 1000 / args.prompts)
            print(f"run {run}: {args.prompts} prompts at -P {args.parallel}, {args.latency_ms} ms each: "
                  f"{elapsed:.2f} s, {rates[-1]:.0f} prompts/s ({done} answered), "
                  f"{cpu_ms[-1]:.2f} ms CPU per prompt")
    rate = statistics.median(rates)
    print(f"prompts/s: best {max(rates):.0f}, median {rate:.0f} of {args.runs} run(s); "
          f"CPU per prompt: median {statistics.median(cpu_ms):.2f} ms")
    emit(f"batch throughput ({args.prompts} prompts, -P {args.parallel}, {args.latency_ms} ms)", rate,
         "prompts/s", ">= 250 for 1000 at -P 32")
    emit("batch CPU per prompt", statistics.median(cpu_ms), "ms")


if __name__ == "__main__":
    main()
