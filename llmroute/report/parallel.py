"""The cold scan of a large ledger across worker processes.

A first report on a million-record ledger is CPU-bound (regex extraction and the column fold),
so the bytes to read are cut at line boundaries into chunk-sized stripes, and one job per worker
process folds stripes into a partial `Aggregates` (a few hundred kB however many records),
returned with its scan figures and warnings.

Each worker owns a contiguous run of stripes and takes them from its front; a worker whose run
is done steals from the *back* of the run with most left (work stealing over a small shared
array). So a worker that gets less CPU on a shared machine simply ends up with fewer stripes,
each worker keeps one set of memos for all its stripes (warming them costs ~50 ms), and the
partials hardly overlap in days, which keeps the parent's merge (run after the last worker
ends, so on the critical path) to the few days where runs meet. Which stripes a worker took may
change from run to run, which can change a cost sum in its last bits (float addition is not
associative), never a count or a shown figure.
Where worker processes cannot be started, it reads in-process. Only used above
`aggregate.PARALLEL_MIN_BYTES`: for small ledgers (and tests) starting processes costs more than
it saves.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from .model import CHUNK_BYTES, MAX_WARNINGS, Aggregates, DayMapper, ScanResult, Warn

# The shared run bounds a worker process inherits from `_adopt_runs` (a pool initializer: shared
# memory can only reach a worker when the process is created, not with a job).
_runs = None


def scan_parallel(path: Path, aggs: Aggregates, *, start_offset: int, days: DayMapper,
                  warn: Warn, workers: int) -> ScanResult:
    """`aggregate.scan` with `workers` processes; the same result, folded into `aggs`."""
    # A little under one chunk, so each stripe is read (and pattern-matched) in one piece.
    bounds = _cut(path, start_offset, CHUNK_BYTES - CHUNK_BYTES // 64)
    stripes = list(zip(bounds, bounds[1:]))
    job = (str(path), aggs.from_day, aggs.from_ts, stripes, days)
    result = ScanResult(start_offset=start_offset, end_offset=start_offset)
    total = Aggregates(aggs.from_day, aggs.from_ts)
    messages: list[str] = []
    try:
        # Into `total`, so a failure part-way leaves `aggs` untouched for the in-process fallback.
        for part, scanned, warnings in _run(job, len(stripes), min(workers, len(stripes))):
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


def _run(job: tuple, count: int, workers: int):
    """The output of `workers` processes each running `job` (over `count` stripes) as its own
    worker number."""
    if workers < 1:
        return
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else None)
    # Worker w's run is stripes [runs[2w], runs[2w + 1]): near-equal contiguous runs.
    runs = context.Array("i", [count * (i + 1 >> 1) // workers for i in range(2 * workers)])
    with ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_adopt_runs,
                             initargs=(runs,)) as pool:
        yield from pool.map(_scan_job, [(*job, w) for w in range(workers)])


def _adopt_runs(runs) -> None:
    global _runs
    _runs = runs


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

    path, from_day, from_ts, stripes, days, worker = job
    part = Aggregates(from_day, from_ts)
    warnings: list[str] = []
    scanned = scan_ranges(Path(path), part, _taken(stripes, _runs, worker), days=days,
                          warn=warnings.append)
    return part, scanned, warnings


def _taken(stripes: list, runs, worker: int) -> Iterator[tuple[int, int]]:
    """The stripes this worker takes, one at a time: the front of its own run while it lasts,
    then the back of whichever run has most left."""
    while True:
        with runs.get_lock():
            if runs[2 * worker] < runs[2 * worker + 1]:
                taken = runs[2 * worker]
                runs[2 * worker] = taken + 1
            else:
                left = [runs[2 * w + 1] - runs[2 * w] for w in range(len(runs) // 2)]
                most = max(range(len(left)), key=left.__getitem__)
                if left[most] <= 0:
                    return
                taken = runs[2 * most + 1] - 1
                runs[2 * most + 1] = taken
        yield stripes[taken]
