"""Batch throughput: N prompts at -P 32 against a fake OpenAI server that takes 100 ms per
answer. Target: >= 250 prompts/s for 1,000 prompts (the server's own ceiling at -P 32 is 320/s).

    python bench/batch.py [--prompts 1000] [--parallel 32] [--latency-ms 100]
"""

from __future__ import annotations

import argparse
import os
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
    parser.add_argument("--quick", action="store_true", help="100 prompts (CI smoke mode)")
    args = parser.parse_args(argv)
    if args.quick:
        args.prompts = 100
    binary = str(Path(sys.executable).parent / "llmroute")
    with tempfile.TemporaryDirectory() as home, fake_server(reply="ok", latency_ms=args.latency_ms) as url:
        config = Path(home) / "llmroute.yaml"
        config.write_text(f"version: 1\nproviders:\n  fake:\n    type: openai\n    base_url: {url}/v1\n"
                          "    models: {fake-model: {input: 1, output: 1}}\nroutes:\n  default: [fake]\n")
        prompts = Path(home) / "prompts.txt"
        prompts.write_text("".join(f"prompt number {i}\n" for i in range(args.prompts)))
        out = Path(home) / "out.jsonl"
        env = {**os.environ, "LLMROUTE_HOME": home, "LLMROUTE_CONFIG": str(config)}
        started = time.perf_counter()
        subprocess.run([binary, "batch", str(prompts), "-P", str(args.parallel), "--out", str(out)],
                       env=env, check=True, stderr=subprocess.DEVNULL)
        elapsed = time.perf_counter() - started
        done = sum(1 for line in out.read_text().splitlines() if '"error": null' in line or '"error":null' in line)
    rate = args.prompts / elapsed
    print(f"{args.prompts} prompts at -P {args.parallel}, {args.latency_ms} ms each: {elapsed:.2f} s, "
          f"{rate:.0f} prompts/s ({done} answered)")
    emit(f"batch throughput ({args.prompts} prompts, -P {args.parallel}, {args.latency_ms} ms)", rate,
         "prompts/s", ">= 250 for 1000 at -P 32")


if __name__ == "__main__":
    main()
