"""One piped prompt end to end against a local fake OpenAI server answering at once, compared in
the same run with a minimal httpx script sending the same request; and the peak memory of one
prompt. Targets: llmroute <= 1.3x the minimal script; peak RSS <= 50 MB.

    python bench/e2e.py [--runs 15]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.figures import emit  # noqa: E402
from tests.support import fake_server, refused_url  # noqa: E402

MINIMAL = """
import sys, httpx
body = {"model": "fake-model", "messages": [{"role": "user", "content": sys.stdin.read()}], "max_tokens": 64}
r = httpx.post(sys.argv[1] + "/v1/chat/completions", json=body, timeout=60)
print(r.json()["choices"][0]["message"]["content"])
"""

PEAK = """
import resource, subprocess, sys
subprocess.run(sys.argv[1:], input=b"what is 2+2", stdout=subprocess.DEVNULL, check=True)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


def timed(command: list[str], env: dict, runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, input=b"what is 2+2", stdout=subprocess.DEVNULL, env=env, check=True)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--quick", action="store_true", help="3 runs (CI smoke mode)")
    args = parser.parse_args(argv)
    runs = 3 if args.quick else args.runs
    binary = str(Path(sys.executable).parent / "llmroute")
    with tempfile.TemporaryDirectory() as home, fake_server(reply="4") as url:
        config = Path(home) / "llmroute.yaml"
        config.write_text(f"version: 1\nproviders:\n  fake:\n    type: openai\n    base_url: {url}/v1\n"
                          "    models: {fake-model: {input: 1, output: 1}}\nroutes:\n  default: [fake]\n")
        env = {**os.environ, "LLMROUTE_HOME": home, "LLMROUTE_CONFIG": str(config)}
        failover = Path(home) / "failover.yaml"
        failover.write_text(f"version: 1\ndefaults: {{strategy: priority, retries: 0}}\nproviders:\n"
                            f"  down:\n    type: openai\n    base_url: {refused_url()}/v1\n    priority: 90\n"
                            "    models: {fake-model: {input: 1, output: 1}}\n"
                            f"  fake:\n    type: openai\n    base_url: {url}/v1\n"
                            "    models: {fake-model: {input: 1, output: 1}}\nroutes:\n  default: [down, fake]\n")
        timed([binary], env, 1)  # warm the file cache
        # Interleaved, so a change in the shared machine's load hits all three alike. Failover
        # runs get a fresh data dir each: an opened breaker would make later runs skip `down`.
        samples: dict[str, list[float]] = {"minimal": [], "ours": [], "failover": []}
        for n in range(runs):
            samples["minimal"].append(timed([sys.executable, "-c", MINIMAL, url], env, 1))
            samples["ours"].append(timed([binary], env, 1))
            run_env = {**env, "LLMROUTE_CONFIG": str(failover), "LLMROUTE_HOME": f"{home}/failover-{n}"}
            samples["failover"].append(timed([binary], run_env, 1))
        minimal, ours, fallback = (statistics.median(samples[k]) for k in ("minimal", "ours", "failover"))
        peak_kb = int(subprocess.run([sys.executable, "-c", PEAK, binary], env=env, capture_output=True,
                                     check=True).stdout)
    print(f"minimal httpx script   {minimal:8.1f} ms (median of {runs})")
    print(f"echo ... | llmroute    {ours:8.1f} ms (median of {runs})  ratio {ours / minimal:.2f}x")
    print(f"peak memory of one prompt: {peak_kb / 1024:.1f} MB")
    print(f"first target refuses connections: {fallback:8.1f} ms, {fallback - ours:+.1f} ms added "
          "(retries: 0; with the default retries: 1 a refused connection is retried after ~0.5 s backoff)")
    emit("piped prompt, minimal httpx script", minimal, "ms", "reference")
    emit("piped prompt, llmroute", ours, "ms", "<= 1.3x minimal")
    emit("piped prompt ratio llmroute/minimal", ours / minimal, "x", "<= 1.3")
    emit("peak memory of one prompt", peak_kb / 1024, "MB", "<= 50")
    emit("failover overhead, first target refuses connections", fallback - ours, "ms", "< 50")


if __name__ == "__main__":
    main()
