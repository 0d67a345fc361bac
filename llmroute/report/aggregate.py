"""Streaming, mergeable aggregation of the ledger for `llmroute report` (SPEC §5, §10).

The data structures live in `model.py`, field extraction in `extract.py`, the column-wise fold
in `columns.py`, the multi-process cold scan in `parallel.py`; this module reads the ledger.

Why it looks like this: `json.loads` of every full record is the slow part of a naive reader (a
million records take many seconds). `scan` reads the ledger in big chunks and (1) skips a chunk
outright when every line's `ts` sorts before the first day needed (`extract.skippable`: a few
`bytes.count`s, no per-line objects), (2) extracts only the 14 needed fields of the remaining
lines with one regex run by `findall` over the whole chunk, and (3) folds them column-wise. A
chunk where some line matches no pattern (a torn or hand-edited line, an unusual record) is redone
line by line, with `json.loads` for lines the patterns reject; invalid lines are skipped with a
warning. This private reader stays instead of `llmroute.ledger.read_from` because it is many times
faster on large ledgers.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from .columns import ColumnFolder
from .extract import Columns
from .extract import fields_columns, patterns_for, raw_row, row_getter, skippable
from .model import (
    BIN_RATIO, CACHED, CHUNK_BYTES, COST, MAX_WARNINGS, DIMENSIONS, EXACT_LIMIT, FALLBACK, FIELDS, LAT_N, LAT_SUM,
    N_COUNTERS, OK, REQ, TIN, TOUT, Aggregates, ComboKey, DayAgg, DayMapper, LatencyDigest,
    ScanResult, Warn, label,
)

PARALLEL_MIN_BYTES = 32 << 20


def scan(path: Path, aggs: Aggregates, *, start_offset: int, days: DayMapper,
         warn: Warn, workers: int | None = None) -> ScanResult:
    """Fold the ledger's complete lines from `start_offset` on into `aggs`, keeping records whose
    `ts` is at or after `aggs.from_ts`. A final line without its newline is left for later:
    `end_offset` stops before it. More than `PARALLEL_MIN_BYTES` to read on a machine with more
    than one CPU (or `workers` > 1) is read by worker processes (`parallel.py`)."""
    todo = os.path.getsize(path) - start_offset
    count = workers if workers is not None else (os.cpu_count() or 1)
    if count > 1 and (workers is not None or todo > PARALLEL_MIN_BYTES):
        from .parallel import scan_parallel

        return scan_parallel(path, aggs, start_offset=start_offset, days=days, warn=warn,
                             workers=count)
    return scan_range(path, aggs, start_offset=start_offset, end_offset=None, days=days,
                      warn=warn)


def scan_range(path: Path, aggs: Aggregates, *, start_offset: int, end_offset: int | None,
               days: DayMapper, warn: Warn) -> ScanResult:
    """`scan` of the bytes `start_offset`..`end_offset` (None: to the end of the file) in this
    process. `end_offset`, when given, must be a line boundary."""
    return scan_ranges(path, aggs, [(start_offset, end_offset)], days=days, warn=warn)


def scan_ranges(path: Path, aggs: Aggregates, ranges: Iterable[tuple[int, int | None]], *,
                days: DayMapper, warn: Warn) -> ScanResult:
    """`scan_range` of several ranges (any iterable: the parallel scan's workers take theirs as
    they go, not always in file order), sharing one folder and its memos; `end_offset` is the
    furthest offset reached."""
    result = ScanResult()
    folder = _Folder(aggs, days, warn, result, path.name)
    with open(path, "rb") as fh:
        for i, (start_offset, end_offset) in enumerate(ranges):
            if not i:
                result.start_offset = result.end_offset = start_offset
            reached = _read_range(fh, folder, result, start_offset, end_offset)
            result.end_offset = max(result.end_offset, reached)
    return result


def _read_range(fh, folder: "_Folder", result: ScanResult, start_offset: int,
                end_offset: int | None) -> int:
    """Fold the complete lines of `start_offset`..`end_offset`; returns the offset reached.

    The next read starts at the end of the last complete line (its torn tail is read again)
    instead of prepending a carried-over piece to the next block, which copied every chunk; a
    block that ends on a line boundary (every stripe of `parallel.py`) is not copied at all."""
    offset = start_offset
    while True:
        size = CHUNK_BYTES if end_offset is None else min(CHUNK_BYTES, end_offset - offset)
        if size <= 0:
            break
        fh.seek(offset)
        block = fh.read(size)
        got = len(block)
        if not got:
            break
        cut = block.rfind(b"\n") + 1
        if not cut:
            if got < size:  # a final line without its newline: left for later
                result.bytes_read += got
                break
            # One line longer than a chunk: read on until its end.
            cut = _long_line_end(fh, offset, end_offset)
            if not cut:
                result.bytes_read += got
                break
            fh.seek(offset)
            block = fh.read(cut)
        result.bytes_read += cut
        folder.chunk(block if cut == len(block) else block[:cut], offset)
        offset += cut
    return offset


def _long_line_end(fh, offset: int, end_offset: int | None) -> int:
    """Length of the line starting at `offset` with its newline; 0 when it has none (yet)."""
    fh.seek(offset)
    line = fh.readline()
    if not line.endswith(b"\n") or (end_offset is not None and offset + len(line) > end_offset):
        return 0
    return len(line)


class _Folder:
    """Turns chunks of complete lines into aggregates."""

    def __init__(self, aggs: Aggregates, days: DayMapper, warn: Warn, result: ScanResult,
                 name: str):
        self.aggs, self.from_ts, self.warn = aggs, aggs.from_ts, warn
        self.result, self.name = result, name
        self.columns = ColumnFolder(aggs, '"' + aggs.from_ts, days)
        self._patterns: dict[tuple, tuple] = {}
        self._prefer_flexible = False

    def chunk(self, data: bytes, offset: int) -> None:
        n_lines = data.count(b"\n")
        if skippable(data, n_lines, self.from_ts):
            self.result.chunks_skipped += 1
            return
        text = data.decode("utf-8", "replace")
        exact, flexible = patterns_for(text, self._patterns)
        tries = [p for p in ((flexible, exact) if self._prefer_flexible else (exact, flexible)) if p]
        for pattern, columns in tries:
            found = pattern.findall(text)
            if len(found) == n_lines:
                self._prefer_flexible = exact is None or pattern is not exact[0]
                self.result.records += n_lines
                self._fold(columns(found), offset)
                return
        rows = list(self._rows_slowly(text, offset, tries))
        self._fold(fields_columns([c for c in zip(*rows)] if rows else [()] * len(FIELDS)), offset)

    def _fold(self, chunk: Columns, offset: int) -> None:
        bad = self.columns.fold(chunk)
        if bad:
            self.result.records -= bad
            self._bad(offset, bad)

    def _rows_slowly(self, text: str, offset: int, tries: list) -> Iterator[tuple]:
        getters = [(pattern, row_getter(columns)) for pattern, columns in tries]
        for line in text.split("\n")[:-1]:
            start, offset = offset, offset + len(line.encode("utf-8", "replace")) + 1
            if not line.strip():
                continue
            row = None
            for pattern, getter in getters:
                match = pattern.fullmatch(line)
                if match:
                    row = getter(match.groups())
                    break
            else:
                row = raw_row(line)
            if row is None:
                self._bad(start, 1)
                continue
            self.result.records += 1
            yield row

    def _bad(self, start: int, count: int) -> None:
        for _ in range(count):
            self.result.bad_lines += 1
            if self.result.bad_lines <= MAX_WARNINGS:
                self.warn(f"{self.name}: skipped an invalid line at byte {start}")


def file_identity(path: Path) -> tuple[int, int, int]:
    """(device, inode, size) of the ledger, to notice a replaced or truncated file."""
    st = os.stat(path)
    return st.st_dev, st.st_ino, st.st_size


__all__ = ["BIN_RATIO", "CACHED", "CHUNK_BYTES", "COST", "DIMENSIONS", "EXACT_LIMIT", "FALLBACK",
           "FIELDS", "LAT_N", "LAT_SUM", "N_COUNTERS", "OK", "REQ", "TIN", "TOUT", "Aggregates",
           "ComboKey", "DayAgg", "DayMapper", "LatencyDigest", "ScanResult", "Warn",
           "file_identity", "label", "scan", "scan_range", "scan_ranges"]
