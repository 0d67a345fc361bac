"""Time `llmroute report --month` on a large ledger against DuckDB reading the same file.

Usage: python bench/report.py [LEDGER] [--records 1000000] [--quick]

Without LEDGER a ledger of `--records` records spread over the current month so far (Berlin
time, so every record is in the window) is generated in a temporary directory (gen_ledger.py).
In one run, side by side (DuckDB and our first run alternated, the best of two each):

* DuckDB: `read_json` of the file and the per-provider month totals a report shows (requests,
  attempts, ok, tokens, cost, mean and p95 latency, fallbacks, cache hits), its threads on every
  CPU. duckdb is imported here only (the `bench` extra), never by llmroute;
* our first `report --month` (no index: every line decoded) and the repeat (warm index), as
  library calls exactly as the CLI makes them;
* the same as the real command (`python -m llmroute report --month`, start-up included);
* a cold report of the ledger with a torn 4 MB line (a crash mid-write) in its middle.

Targets: first run <= 1.5 x DuckDB's time, repeat <= 0.3 s. The machine may be shared, so the
load average is printed before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from figures import emit  # noqa: E402
from gen_ledger import generate  # noqa: E402

from llmroute.report import build_report, local_today, make_window, midnight_utc, resolve_tz  # noqa: E402
from llmroute.report.render import render  # noqa: E402

TZ = resolve_tz("Europe/Berlin")

DUCKDB_QUERY = """
select provider, count(distinct request_id) as requests, count(*) as attempts,
       count(*) filter (where status = 'ok') as ok, sum(input_tokens), sum(output_tokens),
       sum(cost_usd) as cost, avg(latency_ms), quantile_disc(latency_ms, 0.95),
       count(*) filter (where status = 'ok' and attempt > 1) as fallbacks,
       count(*) filter (where cached) as cache_hits
from read_json(?, format = 'newline_delimited', ignore_errors = true, columns = {
    ts: 'VARCHAR', request_id: 'VARCHAR', provider: 'VARCHAR', status: 'VARCHAR',
    attempt: 'BIGINT', input_tokens: 'BIGINT', output_tokens: 'BIGINT', cost_usd: 'DOUBLE',
    latency_ms: 'DOUBLE', cached: 'BOOLEAN'})
where ts >= ?
group by provider order by cost desc
"""


def month_start_ts() -> str:
    """The instant this month began in Berlin, as the ledger writes stamps."""
    return midnight_utc(local_today(datetime.now(timezone.utc), TZ).replace(day=1), TZ)


def month_start() -> datetime:
    return datetime.fromisoformat(month_start_ts().replace("Z", "+00:00"))


def run_duckdb(ledger: Path) -> float | None:
    try:
        import duckdb
    except ImportError:
        print("duckdb is not installed (pip install -e '.[bench]'): no DuckDB figure")
        return None
    began = time.perf_counter()
    with duckdb.connect() as con:
        rows = con.execute(DUCKDB_QUERY, [str(ledger), month_start_ts()]).fetchall()
        threads = con.execute("select current_setting('threads')").fetchone()[0]
    took = time.perf_counter() - began
    print(f"DuckDB read_json, {threads} threads: {took:.2f} s, {len(rows)} providers, "
          f"{sum(r[2] for r in rows):,} attempts, ${sum(r[6] or 0 for r in rows):,.2f}")
    return took


def run_once(ledger: Path, index: Path | None) -> tuple[float, object]:
    began = time.perf_counter()
    window = make_window(today=local_today(datetime.now(timezone.utc), TZ), kind="month")
    report = build_report(ledger, window, "provider", tz=TZ, index_path=index,
                          warn=lambda m: print("warning:", m, file=sys.stderr))
    render(report, "table")
    return time.perf_counter() - began, report


def run_cli(ledger: Path, home: Path) -> float:
    """Wall seconds of `llmroute report --month` run as a user would, with a config whose
    ledger is `ledger` and whose data directory (where the index lives) is `home`."""
    home.mkdir(exist_ok=True)
    (home / "config.yaml").write_text(
        f"budget:\n  timezone: Europe/Berlin\nledger:\n  path: {json.dumps(str(ledger))}\n")
    env = {**os.environ, "LLMROUTE_HOME": str(home)}
    began = time.perf_counter()
    subprocess.run([sys.executable, "-m", "llmroute", "report", "--month"], env=env, check=True,
                   stdout=subprocess.DEVNULL)
    return time.perf_counter() - began


def with_torn_line(ledger: Path, out: Path) -> None:
    """A copy of `ledger` with a 4 MB line cut short (no closing quote or brace) in the middle."""
    middle = ledger.stat().st_size // 2
    with open(ledger, "rb") as src, open(out, "wb") as dst:
        while src.tell() < middle:
            dst.write(src.read(min(1 << 20, middle - src.tell())))
        dst.write(src.readline())
        dst.write(b'{"v":1,"ts":"' + month_start_ts().encode() + b'","request_id":"torn","prompt":"'
                  + b"x" * (4 << 20) + b"\n")
        shutil.copyfileobj(src, dst, 1 << 20)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("ledger", nargs="?", type=Path)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--quick", action="store_true", help="20,000 records (CI smoke mode)")
    args = parser.parse_args()
    if args.quick:
        args.records = 20_000
    with tempfile.TemporaryDirectory() as tmp:
        ledger = args.ledger
        if ledger is None:
            ledger = Path(tmp) / "ledger.jsonl"
            began = time.perf_counter()
            now = time.time()
            days = max((now - month_start().timestamp()) / 86400 - 1 / 1440, 1 / 1440)
            count = generate(args.records, ledger, days=days, now=now)
            print(f"generated {count:,} records ({ledger.stat().st_size / 1e6:.0f} MB) since "
                  f"{month_start():%Y-%m-%d %H:%M} UTC in {time.perf_counter() - began:.1f} s")
        size = f"{args.records // 1000}K records" if args.ledger is None else "given ledger"
        print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
        index = Path(tmp) / "report-index.pickle"
        duck_times, cold_times = [], []
        for _ in range(2):  # alternated, the best of two each: the machine may be shared
            duck_times.append(run_duckdb(ledger))
            index.unlink(missing_ok=True)
            cold, report = run_once(ledger, index)
            cold_times.append(cold)
            print(f"first run (no index): {cold:.2f} s, records decoded {report.scan.records:,}")
        duck = None if None in duck_times else min(duck_times)
        cold = min(cold_times)
        warm_times = []
        for n in range(3):
            warm, report = run_once(ledger, index)
            warm_times.append(warm)
            print(f"repeat {n + 1} (index): {warm:.3f} s, bytes read {report.scan.bytes_read}")
        emit(f"report --month, first run ({size})", cold, "s", "<= 1.5 x DuckDB")
        emit(f"report --month, repeated ({size})", min(warm_times), "s", "<= 0.3")
        if duck is not None:
            print(f"first run / DuckDB: {cold / duck:.2f} x")
            emit(f"DuckDB read_json, same totals ({size})", duck, "s", "")
            emit(f"report --month first run / DuckDB ({size})", cold / duck, "x", "<= 1.5")
        cli_cold = run_cli(ledger, Path(tmp) / "home")
        cli_warm = min(run_cli(ledger, Path(tmp) / "home") for _ in range(3))
        print(f"as a command: first run {cli_cold:.2f} s, repeated {cli_warm:.3f} s")
        emit(f"llmroute report --month command, first run ({size})", cli_cold, "s", "")
        emit(f"llmroute report --month command, repeated ({size})", cli_warm, "s", "<= 0.3")
        print(f"month totals: {report.totals.requests:,} requests, {report.totals.attempts:,} "
              f"attempts, ${report.totals.cost_usd:,.2f}; index {index.stat().st_size / 1e6:.1f} MB")
        torn = Path(tmp) / "torn.jsonl"
        with_torn_line(ledger, torn)
        took, torn_report = run_once(torn, None)
        print(f"with a torn 4 MB line in the middle: {took:.2f} s, bad lines "
              f"{torn_report.scan.bad_lines}, same totals: {torn_report.totals == report.totals}")
        emit(f"report --month with a torn 4 MB line, first run ({size})", took, "s", "~ first run")
        own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        worker = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        print(f"peak RSS: this process {own:.0f} MB (DuckDB's buffers included), largest worker "
              f"or command {worker:.0f} MB; load average {os.getloadavg()[0]:.2f}")
        emit("report peak RSS (bench process with DuckDB, or largest child)", max(own, worker),
             "MB", "bounded")


if __name__ == "__main__":
    main()
