"""Cold-start time of `llmroute --version` and `llmroute --help` (median of N runs), next to a
bare `python -c pass` on the same machine for scale. Target: <= 100 ms.

    python bench/startup.py [--runs 15]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.figures import emit  # noqa: E402


def median_ms(command: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> list[tuple[str, float, str]]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--quick", action="store_true", help="3 runs (CI smoke mode)")
    args = parser.parse_args(argv)
    if args.quick:
        args.runs = 3
    binary = str(Path(sys.executable).parent / "llmroute")
    rows = [
        ("python -c pass", median_ms([sys.executable, "-c", "pass"], args.runs), "reference"),
        ("llmroute --version", median_ms([binary, "--version"], args.runs), "target <= 100 ms"),
        ("llmroute --help", median_ms([binary, "--help"], args.runs), "target <= 100 ms"),
    ]
    for name, value, note in rows:
        print(f"{name:<24} {value:8.1f} ms   ({note}, median of {args.runs})")
        emit(f"cold start: {name}", value, "ms", note)
    return rows


if __name__ == "__main__":
    main()
