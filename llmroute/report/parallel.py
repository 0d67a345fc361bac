"""The cold scan of a large ledger across worker processes.

A first report on a million-record ledger is CPU-bound (regex extraction and the column fold),
so the bytes to read are cut at line boundaries into about four ranges per CPU and handed to a
`ProcessPoolExecutor`; each worker folds its ranges with `aggregate.scan_range` into a partial
`Aggregates` (a few hundred kB however many records) and returns it with its scan figures and
warnings. The parent merges the partials in range order, so the result does not depend on
which worker finished first. Only used above `aggregate.PARALLEL_MIN_BYTES`: for small ledgers
(and tests) starting processes costs more than it saves.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from .model import Aggregates, DayMapper, ScanResult, Warn

RANGES_PER_WORKER = 4


def scan_parallel(path: Path, aggs: Aggregates, *, start_offset: int, days: DayMapper,
                  warn: Warn, workers: int) -> ScanResult:
    """`aggregate.scan` with `workers` processes; the same result, folded into `aggs`."""
    bounds = _cut(path, start_offset, workers * RANGES_PER_WORKER)
    jobs = [(str(path), aggs.from_day, aggs.from_ts, a, b, days) for a, b in zip(bounds, bounds[1:])]
    result = ScanResult(start_offset=start_offset, end_offset=start_offset)
    context = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods()
                                          else None)
    with ProcessPoolExecutor(max_workers=min(workers, len(jobs)) or 1, mp_context=context) as pool:
        for part, scanned, warnings in pool.map(_scan_job, jobs):
            aggs.merge(part)
            for message in warnings:
                if result.bad_lines < 5:
                    warn(message)
            result.bad_lines += scanned.bad_lines
            result.bytes_read += scanned.bytes_read
            result.records += scanned.records
            result.chunks_skipped += scanned.chunks_skipped
            result.end_offset = scanned.end_offset
    return result


def _cut(path: Path, start: int, pieces: int) -> list[int]:
    """Offsets start = o0 < o1 < ... < end splitting the file at line starts into about
    `pieces` ranges; the last range runs to the current end of the file."""
    size = os.path.getsize(path)
    step = max(1, (size - start) // max(1, pieces))
    bounds = [start]
    with open(path, "rb") as fh:
        for n in range(1, pieces):
            fh.seek(max(bounds[-1], start + n * step))
            line = fh.readline()
            at = fh.tell()
            if not line.endswith(b"\n") or at >= size:
                break
            if at > bounds[-1]:
                bounds.append(at)
    bounds.append(size)
    return bounds


def _scan_job(job: tuple) -> tuple[Aggregates, ScanResult, list[str]]:
    from .aggregate import scan_range

    path, from_day, from_ts, start, end, days = job
    part = Aggregates(from_day, from_ts)
    warnings: list[str] = []
    scanned = scan_range(Path(path), part, start_offset=start, end_offset=end, days=days,
                         warn=warnings.append)
    return part, scanned, warnings
