"""Time `llmroute report --month` on a large ledger: cold (no index) and repeated (with index),
through the library and as the real command (`python -m llmroute`, start-up included).

Usage: python bench/report.py [LEDGER] [--records 1000000]

Without LEDGER a ledger of `--records` records is generated in a temporary directory (see
gen_ledger.py). Runs the report through the library exactly as the CLI does (Europe/Berlin,
grouped by provider), prints wall times and peak RSS (this process and, for the parallel cold
scan, the largest worker). Targets: < 3 s cold, < 0.5 s repeated, memory bounded by days x
groups rather than by the ledger's size.

The machine may be shared, so it also prints the load average and the time of a fixed
pure-Python loop measured in the same run: compare figures across runs by that reference.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from figures import emit  # noqa: E402
from gen_ledger import generate  # noqa: E402

from llmroute.report import build_report, local_today, make_window, resolve_tz  # noqa: E402
from llmroute.report.render import render  # noqa: E402


def run_once(ledger: Path, index: Path, today: date | None = None) -> tuple[float, object]:
    tz = resolve_tz("Europe/Berlin")
    began = time.perf_counter()
    window = make_window(today=today or local_today(datetime.now(timezone.utc), tz), kind="month")
    report = build_report(ledger, window, "provider", tz=tz, index_path=index,
                          warn=lambda m: print("warning:", m, file=sys.stderr))
    render(report, "table")
    return time.perf_counter() - began, report


def run_cli(ledger: Path, home: Path, today: date | None = None) -> float:
    """Wall seconds of `llmroute report --month` run as a user would, with a config whose
    ledger is `ledger` and whose data directory (where the index lives) is `home`. With `today`
    (another day than the real one) the same window is asked for as `--since`/`--until`."""
    home.mkdir(exist_ok=True)
    (home / "config.yaml").write_text(
        f"budget:\n  timezone: Europe/Berlin\nledger:\n  path: {json.dumps(str(ledger))}\n")
    env = {**os.environ, "LLMROUTE_HOME": str(home)}
    began = time.perf_counter()
    window = ["--month"] if today is None else [
        "--since", today.replace(day=1).isoformat(), "--until", today.isoformat()]
    subprocess.run([sys.executable, "-m", "llmroute", "report", *window], env=env, check=True,
                   stdout=subprocess.DEVNULL)
    return time.perf_counter() - began


def reference_loop() -> float:
    """Seconds for a fixed pure-Python loop: how fast this machine is right now."""
    began = time.perf_counter()
    total = 0
    for i in range(2_000_000):
        total += i
    return time.perf_counter() - began


def parallel_reference() -> float:
    """Wall seconds for the reference loop run in every CPU at once: equal to
    `reference_loop()` when all CPUs are really available, larger when they are shared."""
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(os.cpu_count()) as pool:
        began = time.perf_counter()
        list(pool.map(_loop_job, range(os.cpu_count() or 1)))
        return time.perf_counter() - began


def _loop_job(_: int) -> float:
    return reference_loop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("ledger", nargs="?", type=Path)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--quick", action="store_true", help="20,000 records (CI smoke mode)")
    parser.add_argument("--month-end", action="store_true",
                        help="the worst day of a month: the generated ledger ends on the last day "
                             "of last month and the report is that month as of that day (a "
                             "31-day month holds about half of a 60-day ledger)")
    args = parser.parse_args()
    if args.quick:
        args.records = 20_000
    today = None
    if args.month_end:
        if args.ledger is not None:
            parser.error("--month-end generates its own ledger")
        today = date.today().replace(day=1) - timedelta(days=1)
    with tempfile.TemporaryDirectory() as tmp:
        ledger = args.ledger
        if ledger is None:
            ledger = Path(tmp) / "ledger.jsonl"
            began = time.perf_counter()
            end = None if today is None else datetime(
                today.year, today.month, today.day, 20, tzinfo=timezone.utc).timestamp()
            count = generate(args.records, ledger, now=end)
            print(f"generated {count:,} records ({ledger.stat().st_size / 1e6:.0f} MB) "
                  f"in {time.perf_counter() - began:.1f} s")
        index = Path(tmp) / "report-index.pickle"
        print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs, "
              f"reference loop {reference_loop():.3f} s, on all CPUs {parallel_reference():.3f} s")
        cold, report = run_once(ledger, index, today)
        print(f"cold (no index):  {cold:.2f} s  records parsed {report.scan.records:,}, "
              f"chunks skipped by ts {report.scan.chunks_skipped}")
        warm_times = []
        for n in range(3):
            warm, report = run_once(ledger, index, today)
            warm_times.append(warm)
            print(f"repeat {n + 1} (index): {warm:.3f} s  bytes read {report.scan.bytes_read}")
        size = f"{args.records // 1000}K records" if args.ledger is None else "given ledger"
        if today is not None:
            size += f", month ending {today}"
        emit(f"report --month, first run ({size})", cold, "s", "< 3 for 1M")
        emit(f"report --month, repeated ({size})", min(warm_times), "s", "< 0.5 for 1M")
        cli_cold = run_cli(ledger, Path(tmp) / "home", today)
        cli_warm = min(run_cli(ledger, Path(tmp) / "home", today) for _ in range(3))
        print(f"as a command: first run {cli_cold:.2f} s, repeated {cli_warm:.3f} s")
        emit(f"llmroute report --month command, first run ({size})", cli_cold, "s", "< 3 for 1M")
        emit(f"llmroute report --month command, repeated ({size})", cli_warm, "s", "< 0.5 for 1M")
        print(f"month totals: {report.totals.requests:,} calls, ${report.totals.cost_usd:,.2f}")
        print(f"index size: {index.stat().st_size / 1e6:.1f} MB")
        own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        worker = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        print(f"peak RSS: {own:.0f} MB (largest worker {worker:.0f} MB)")
        print(f"load average {os.getloadavg()[0]:.2f}, reference loop {reference_loop():.3f} s, "
              f"on all CPUs {parallel_reference():.3f} s")
        emit("report peak RSS", max(own, worker), "MB", "bounded")


if __name__ == "__main__":
    main()
