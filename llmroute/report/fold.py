"""The report's fold: ledger calls (`ledger.reader.Call`) into per-day aggregates (SPEC §10).

`Aggregates` holds, per local day and combination (kind, provider, model, target, route, tags),
the counters every grouping, total and budget line is a sum of, and per day and marginal value
(("provider", "openai"), ("tag", "work"), ("*", "*") for totals, ...) a latency digest for p95.
Each record counts in its own day, so the fold gives the same aggregates in any line order.

Attempts, tokens, cost and latency count where they were spent, record by record. A request
counts once, in the cell of its answer: the ok record, else its last attempt (highest attempt
number; ties broken on the record's fields, never on line order). An ok first attempt is a whole
request (a fallback chain stops at its first answer), so only requests with a failed or later
attempt are tracked by `request_id` (`tracked`: a few percent of records). A new line of a
tracked request takes back that request's counts and adds them again where they now belong, so
its lines may be anywhere in the ledger and arrive in any order, in one read or across many.
Costs and latencies are summed as integers (picodollars, microseconds): sums do not depend on
the order of additions either.

A digest keeps exact latencies while it holds at most `EXACT_LIMIT` of them, then a log-scale
histogram (bins 2% wide, ~1% error) and the exact least and greatest value, which bound what it
answers; it depends only on the multiset of values. Memory is
bounded by days x combinations, not by records. A read of more than `PARALLEL_MIN_BYTES` uses a
worker process per CPU (`fold_file`).
"""

from __future__ import annotations

import functools
import io
import math
import os
import pickle
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from itertools import chain, repeat
from operator import add, mul
from pathlib import Path

from ..ledger.reader import Call, DayMapper, ReadStats, line_starts, read_calls
from ..stats import nearest_rank

ATT, TIN, TOUT, COST, LAT_US, LAT_N, REQ, OK, FALLBACK, CACHED, TCACHED = range(11)
N_COUNTERS = 11  # TCACHED: input tokens read from a provider's prompt cache (CACHED: cache hits)
EXACT_LIMIT = 64
BIN_RATIO = 1.02
_INV_LOG = 1.0 / math.log(BIN_RATIO)
PARALLEL_MIN_BYTES = 64 << 20


def label(value: str | None) -> str:
    """How an absent field is shown and grouped."""
    return value if value else "(none)"


def _bin(value: float) -> int:
    """Histogram bin of a latency: bin b holds [RATIO**b, RATIO**(b+1)); under 1 ms is bin 0."""
    return int(math.log(max(value, 1.0)) * _INV_LOG)


@functools.cache
def _bin_table(size: int = 1 << 20) -> list[int]:
    """`_bin` of every whole number of milliseconds below `size`, found bin by bin (a run of
    equal bins at a time: `_bin` never decreases)."""
    table: list[int] = []
    while len(table) < size:
        value = len(table)
        b = _bin(value)
        end = max(value + 1, int(BIN_RATIO ** (b + 1)) - 2)
        if _bin(end) > b:
            end = value + 1
        while _bin(end) <= b:
            end += 1
        table.extend([b] * (min(end, size) - value))
    return table


def _bins(values: list) -> tuple[list[int], bool]:
    """The bins of `values`, and whether they are all whole milliseconds (what the engine
    writes: then a table gives their bins and their sum is exact)."""
    if len(values) < 64:  # not worth the table
        return [*map(_bin, values)], False
    try:
        return [*map(_bin_table().__getitem__, values)], True
    except (TypeError, IndexError):  # a float, or over 17 minutes
        return [*map(_bin, values)], False


class LatencyDigest:
    """Latencies of one group: exact while small, a log-scale histogram when large. The least
    and greatest values are kept exactly, and a percentile read from the histogram is clamped
    between them: a bin's midpoint never lies outside the values seen (equal values give back
    exactly that value)."""

    __slots__ = ("exact", "bins", "count", "lo", "hi")

    def __init__(self) -> None:
        self.exact: list[float] | None = []
        self.bins: dict[int, int] = {}
        self.count = 0
        self.lo: float | None = None
        self.hi: float | None = None

    def add_many(self, values: list[float]) -> None:
        if not values:
            return
        self.count += len(values)
        self._span(min(values), max(values))
        if self.exact is not None:
            if len(self.exact) + len(values) <= EXACT_LIMIT:
                self.exact.extend(values)
                return
            self._to_bins()
        self._count(_bins(values)[0])

    def add_binned(self, count: int, bins, lo: float, hi: float) -> None:
        """Add `count` values by their bins (worked out once for the many digests they go in),
        with the least and greatest of them."""
        if self.exact is not None:
            self._to_bins()
        self.count += count
        self._span(lo, hi)
        self._count(bins)

    def merge(self, other: "LatencyDigest") -> None:
        if other.exact is not None:
            self.add_many(other.exact)
            return
        if self.exact is not None:
            self._to_bins()
        self._count(other.bins)
        self.count += other.count
        if other.lo is not None:
            self._span(other.lo, other.hi)

    def percentile(self, q: float) -> float | None:
        """Nearest-rank percentile (`q` in 0..1); None when empty."""
        if not self.count:
            return None
        rank = nearest_rank(q * 100, self.count)
        if self.exact is not None:
            return sorted(self.exact)[rank - 1]
        seen = 0
        for b in sorted(self.bins):
            seen += self.bins[b]
            if seen >= rank:
                return min(max(BIN_RATIO ** (b + 0.5), self.lo), self.hi)
        return None

    def _span(self, lo: float, hi: float) -> None:
        self.lo = lo if self.lo is None or lo < self.lo else self.lo
        self.hi = hi if self.hi is None or hi > self.hi else self.hi

    def _to_bins(self) -> None:
        values, self.exact = self.exact or [], None
        self._count(_bins(values)[0])

    def _count(self, bins) -> None:
        counted, mine = bins if isinstance(bins, dict) else Counter(bins), self.bins
        for b, n in counted.items():
            mine[b] = mine.get(b, 0) + n


@dataclass
class DayAgg:
    """One local day: counters per combination, latency digests per marginal value."""

    counters: dict[tuple, list] = field(default_factory=dict)
    latency: dict[tuple[str, str], LatencyDigest] = field(default_factory=dict)


class Aggregates:
    """Per-day aggregates of every record whose local day is `from_day` or later, and the state
    of tracked requests (request_id -> (ok, attempt, cell, cached, failed before)), kept as a
    pickle until a fold needs it: a repeat report with nothing new never loads it."""

    def __init__(self, from_day: str):
        self.from_day = from_day
        self.days: dict[str, DayAgg] = {}
        self._tracked: dict | bytes = {}
        self._changed: dict[str, tuple | None] = {}

    def day(self, day: str) -> DayAgg:
        agg = self.days.get(day)
        if agg is None:
            agg = self.days[day] = DayAgg()
        return agg

    def counters(self, day: str, combo: tuple) -> list:
        counters = self.day(day).counters
        mine = counters.get(combo)
        if mine is None:
            mine = counters[combo] = [0] * N_COUNTERS
        return mine

    def drop_before(self, day: str) -> None:
        """Forget the days before `day` (no window this index serves needs them any more) and
        the requests answered in them, as a fold starting at `day` would never have met them."""
        self.from_day = day
        self.days = {d: agg for d, agg in self.days.items() if d >= day}
        self._tracked = {rid: s for rid, s in self.tracked.items() if s[2][0] >= day}

    @property
    def tracked(self) -> dict:
        if isinstance(self._tracked, bytes):
            self._tracked = safe_loads(self._tracked)
        return self._tracked

    def track(self, calls: list[tuple[Call, tuple]]) -> None:
        """Note records (with their cells) that are not an ok first attempt in their request;
        each request is counted (again) by `count_requests`, once however many of its records
        a fold meets."""
        tracked, changed = self.tracked, self._changed
        for call, cell in calls:
            ok = call.status == "ok"
            state = (ok, call.attempt, cell, bool(call.cached), not ok)
            rid = call.request_id
            if rid is None:  # no id: a request of its own
                self._count_request(state, 1)
                continue
            old = tracked.get(rid)
            if old is not None:
                state = _combine(old, state)
                if state == old:
                    continue
            if rid not in changed:
                changed[rid] = old  # what was counted before this fold, if anything
            tracked[rid] = state

    def count_requests(self) -> None:
        """Move the counts of every request `track` changed to where they now belong."""
        for rid, before in self._changed.items():
            if before is not None:
                self._count_request(before, -1)
            self._count_request(self._tracked[rid], 1)
        self._changed = {}

    def _count_request(self, state: tuple, sign: int) -> None:
        ok, attempt, cell, cached, failed = state
        c = self.counters(cell[0], cell[1:])
        c[REQ] += sign
        if ok:
            c[OK] += sign
            c[FALLBACK] += sign if attempt > 1 or failed else 0
            c[CACHED] += sign if cached else 0

    def merge(self, other: "Aggregates") -> None:
        """Add the aggregates of another part of the ledger (taken over, not copied)."""
        for day, theirs in other.days.items():
            mine = self.days.get(day)
            if mine is None:
                self.days[day] = theirs
                continue
            for combo, values in theirs.counters.items():
                have = mine.counters.get(combo)
                mine.counters[combo] = values if have is None else [*map(add, have, values)]
            for marginal, digest in theirs.latency.items():
                have = mine.latency.get(marginal)
                if have is None:
                    mine.latency[marginal] = digest
                else:
                    have.merge(digest)
        tracked = self.tracked
        for rid, state in other.tracked.items():
            mine = tracked.get(rid)
            if mine is None:
                tracked[rid] = state
            else:  # counted in both parts: once, where it belongs
                self._count_request(mine, -1)
                self._count_request(state, -1)
                tracked[rid] = _combine(mine, state)
                self._count_request(tracked[rid], 1)

    def __getstate__(self) -> dict:
        tracked = self._tracked
        if isinstance(tracked, dict):
            tracked = pickle.dumps(tracked, protocol=pickle.HIGHEST_PROTOCOL)
        return {"from_day": self.from_day, "days": self.days, "tracked": tracked}

    def __setstate__(self, state: dict) -> None:
        self.from_day, self.days, self._tracked = state["from_day"], state["days"], state["tracked"]
        self._changed = {}


def _combine(a: tuple, b: tuple) -> tuple:
    """One request's state from two of its records' (or parts'): the better answer (ok, then
    the highest attempt, then the record's own fields: never the order met), and whether any
    attempt failed."""
    best = max(a, b, key=_rank)
    return (*best[:4], a[4] or b[4])


def _rank(state: tuple) -> tuple:
    ok, attempt, (day, *fields, tags), cached, _ = state
    return ok, attempt, day, [f or "" for f in fields], tags or (), cached


class Folder:
    """Folds blocks of calls into cells (day + combination) and `flush`es them into `aggs`."""

    def __init__(self, aggs: Aggregates, days: DayMapper):
        self.aggs, self.days = aggs, days
        self.cells: dict[tuple, list] = {}

    def fold(self, calls: list[Call], offset: int, stats: ReadStats) -> None:
        cells, from_day, day_of = self.cells, self.aggs.from_day, self.days
        hour_day, cell_of = self.days.hours.get, cells.get
        others = []
        for c in calls:
            ts = c.ts
            day = hour_day(ts[:13]) or day_of(ts)
            if day is None:
                stats.bad(offset)
                stats.records -= 1
                continue
            if day < from_day:
                continue
            cell = (day, c.kind, c.provider, c.model, c.target, c.route, c.tags)
            a = cell_of(cell)
            if a is None:
                a = cells[cell] = [0, 0, 0, [], [], 0, 0, 0]
            a[0] += 1
            a[1] += c.input_tokens or 0
            a[2] += c.output_tokens or 0
            a[7] += c.cached_input_tokens or 0
            value = c.cost_usd
            if value:
                a[3].append(value)
            value = c.latency_ms
            if value is not None:
                a[4].append(value)
            if c.attempt == 1 and c.status == "ok":
                a[5] += 1
                if c.cached:
                    a[6] += 1
            else:
                others.append((c, cell))
        if others:
            self.aggs.track(others)

    def flush(self) -> None:
        per_day: dict[str, list] = {}
        for (day, *combo), (att, tin, tout, costs, lats, simple, cached, tcached) in self.cells.items():
            combo = tuple(combo)
            pico = sum(map(round, map(mul, costs, repeat(1e12))))
            bins, whole = _bins(lats)
            micro = sum(lats) * 1000 if whole else sum(map(round, map(mul, lats, repeat(1000.0))))
            c = self.aggs.counters(day, combo)
            c[:] = map(add, c, (att, tin, tout, pico, micro, len(lats), simple, simple, 0, cached, tcached))
            if lats:
                per_day.setdefault(day, []).append((combo, lats, bins, min(lats), max(lats)))
        for day, cells in per_day.items():
            _add_latencies(self.aggs.day(day).latency, cells)
        self.cells = {}
        self.aggs.count_requests()


def _add_latencies(latency: dict, cells: list) -> None:
    """Each marginal digest of one day gets the latencies of its cells (combination, values,
    their bins, least and greatest value): exact values while small, else bins, counted once per
    provider/model/target triple, kind, route and tag; the provider, model, target and total
    digests add up the triples' counts instead of counting every value again."""
    units: dict[tuple, list] = {}
    for cell in cells:
        kind, provider, model, target, route, tags = cell[0]
        tag_units = [("tag", t) for t in dict.fromkeys(tags or ("(none)",))]
        for unit in (("ptm", provider, model, target), ("kind", label(kind)),
                     ("route", label(route)), *tag_units):
            units.setdefault(unit, []).append(cell)
    members: dict[tuple, list] = {}
    for unit in units:
        if unit[0] == "ptm":
            _, p, m, t = unit
            for marginal in (("provider", label(p)), ("model", label(m)), ("target", label(t)),
                             ("*", "*")):
                members.setdefault(marginal, []).append(unit)
        else:
            members[unit] = [unit]
    counted: dict[tuple, tuple[int, Counter, float, float]] = {}
    for marginal, group in members.items():
        digest = latency.get(marginal) or latency.setdefault(marginal, LatencyDigest())
        group_cells = [cell for unit in group for cell in units[unit]]
        total = sum(len(cell[1]) for cell in group_cells)
        if digest.exact is not None and len(digest.exact) + total <= EXACT_LIMIT:
            digest.add_many([*chain.from_iterable(cell[1] for cell in group_cells)])
            continue
        for unit in group:
            if unit not in counted:
                unit_cells = units[unit]
                counted[unit] = (sum(len(cell[1]) for cell in unit_cells),
                                 Counter(chain.from_iterable(cell[2] for cell in unit_cells)),
                                 min(cell[3] for cell in unit_cells), max(cell[4] for cell in unit_cells))
            digest.add_binned(*counted[unit])


def fold_file(path: Path, aggs: Aggregates, *, start: int, days: DayMapper, before_hour: str,
              workers: int | None = None) -> ReadStats:
    """Fold the ledger's complete lines from byte `start` on into `aggs`. More than
    `PARALLEL_MIN_BYTES` to read on a machine with more CPUs (or `workers` > 1) is split between
    worker processes; if they cannot run, this process reads it all."""
    size = os.path.getsize(path)
    count = workers or ((os.cpu_count() or 1) if size - start > PARALLEL_MIN_BYTES else 1)
    if count > 1:
        try:
            return _fold_parallel(path, aggs, start, size, days, before_hour, count)
        except (OSError, RuntimeError, pickle.PicklingError):
            pass
    return _fold_range(path, aggs, start, None, days, before_hour)


def _fold_range(path: Path, aggs: Aggregates, start: int, end: int | None, days: DayMapper,
                before_hour: str) -> ReadStats:
    stats = ReadStats()
    folder = Folder(aggs, days)
    for offset, calls in read_calls(path, start, end, stats, before_hour=before_hour):
        folder.fold(calls, offset, stats)
    folder.flush()
    return stats


def _fold_job(job: tuple) -> tuple[Aggregates, ReadStats]:
    path, start, end, from_day, tz, before_hour = job
    aggs = Aggregates(from_day)
    return aggs, _fold_range(path, aggs, start, end, DayMapper(tz), before_hour)


def _fold_parallel(path: Path, aggs: Aggregates, start: int, size: int, days: DayMapper,
                   before_hour: str, count: int) -> ReadStats:
    """Stripes of the range, a few per worker so a slower CPU takes fewer; the parts are merged
    into a scratch aggregate as they come, so a failure leaves `aggs` untouched."""
    bounds = line_starts(path, start, size, count * 3)
    jobs = [(path, s, e, aggs.from_day, days.tz, before_hour)
            for s, e in zip(bounds, bounds[1:]) if e > s]
    scratch, stats = Aggregates(aggs.from_day), ReadStats(start, start)
    with ProcessPoolExecutor(count) as pool:
        for part, part_stats in pool.map(_fold_job, jobs):
            scratch.merge(part)
            stats.add(part_stats)
    aggs.merge(scratch)
    return stats


class _SafeUnpickler(pickle.Unpickler):
    """Rebuilds plain data and the aggregate classes only: a tampered file that names anything
    else (what a pickle needs to run code) fails to load."""

    _ALLOWED = frozenset({"Aggregates", "DayAgg", "LatencyDigest"})

    def find_class(self, module: str, name: str):
        if module == __name__ and name in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"{module}.{name} has no place in a report index")


def safe_loads(data: bytes):
    return _SafeUnpickler(io.BytesIO(data)).load()
