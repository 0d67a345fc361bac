"""The cold scan of a large ledger across worker processes.

A first report on a million-record ledger is CPU-bound (regex extraction and the column fold),
so the bytes to read are cut at line boundaries into chunk-sized stripes, dealt round-robin to
a few jobs per worker of a `ProcessPoolExecutor` (so each gets its share of the recent,
in-window end of the ledger, not just old skipped chunks), and each job folds its stripes with
`aggregate.scan_ranges` (one set of memos per job) into a partial `Aggregates` (a few hundred
kB however many records) and returns it with its scan figures and warnings. The parent merges
the partials in job order, so the result does not depend on which worker finished first.
Where worker processes cannot be started, it reads in-process. Only used above
`aggregate.PARALLEL_MIN_BYTES`: for small ledgers (and tests) starting processes costs more than
it saves.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from .model import CHUNK_BYTES, MAX_WARNINGS, Aggregates, DayMapper, ScanResult, Warn

# Stripes are dealt to a few jobs per worker rather than one: on a shared machine a worker that
# gets less CPU then simply takes fewer jobs (each job pays a few ms to warm its memos).
JOBS_PER_WORKER = 6


def scan_parallel(path: Path, aggs: Aggregates, *, start_offset: int, days: DayMapper,
                  warn: Warn, workers: int) -> ScanResult:
    """`aggregate.scan` with `workers` processes; the same result, folded into `aggs`."""
    # A little under one chunk, so each stripe is read (and pattern-matched) in one piece.
    bounds = _cut(path, start_offset, CHUNK_BYTES - CHUNK_BYTES // 64)
    stripes = list(zip(bounds, bounds[1:]))
    count = min(workers * JOBS_PER_WORKER, len(stripes))
    jobs = [(str(path), aggs.from_day, aggs.from_ts, stripes[j::count], days) for j in range(count)]
    result = ScanResult(start_offset=start_offset, end_offset=start_offset)
    total = Aggregates(aggs.from_day, aggs.from_ts)
    messages: list[str] = []
    try:
        # Partials are merged as they arrive (in job order), overlapping the parent's merging
        # with the workers' remaining jobs; into `total`, so a failure part-way leaves `aggs`
        # untouched for the in-process fallback.
        for part, scanned, warnings in _run(jobs, workers):
            total.merge(part)
            messages += warnings
            result.bad_lines += scanned.bad_lines
            result.bytes_read += scanned.bytes_read
            result.records += scanned.records
            result.chunks_skipped += scanned.chunks_skipped
            result.end_offset = max(result.end_offset, scanned.end_offset)
    except (OSError, ImportError, RuntimeError, BrokenProcessPool):
        # No worker processes here (no fork, no semaphores — multiprocessing raises a
        # RuntimeError subclass then — or a killed worker): read everything in this process.
        from .aggregate import scan_range

        return scan_range(path, aggs, start_offset=start_offset, end_offset=None, days=days,
                          warn=warn)
    aggs.merge(total)
    for message in messages[:MAX_WARNINGS]:
        warn(message)
    return result


def _run(jobs: list, workers: int):
    """Every job's output, yielded in job order (so merging is deterministic)."""
    if not jobs:
        return
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else None)
    with ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=context) as pool:
        yield from pool.map(_scan_job, jobs)


def _cut(path: Path, start: int, step: int) -> list[int]:
    """Offsets start = o0 < o1 < ... < on = the file's size, at line starts, splitting it into
    ranges of about `step` bytes (the scan of the last leaves a partial last line for later)."""
    size = os.path.getsize(path)
    bounds = [start]
    with open(path, "rb") as fh:
        while bounds[-1] + step < size:
            fh.seek(bounds[-1] + step - 1)
            line = fh.readline()
            if not line.endswith(b"\n"):
                break
            bounds.append(fh.tell())
    if size > bounds[-1]:
        bounds.append(size)
    return bounds


def _scan_job(job: tuple) -> tuple[Aggregates, ScanResult, list[str]]:
    from .aggregate import scan_ranges

    path, from_day, from_ts, ranges, days = job
    part = Aggregates(from_day, from_ts)
    warnings: list[str] = []
    scanned = scan_ranges(Path(path), part, ranges, days=days, warn=warnings.append)
    return part, scanned, warnings
