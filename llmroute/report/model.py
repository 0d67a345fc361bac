"""The report's aggregate data structures: per-day counters, latency digests, scan figures.

Every report window is a run of whole local days, so the ledger is folded into per-day,
per-combination counters (`Aggregates`): a combination is (kind, provider, model, target, route,
tags). Any `--by` grouping, the totals row, the per-day cost series and the budget lines are sums
of these, and the same structure is what `index.py` caches on disk (pickled).

p95 is not a sum, so latencies go into a `LatencyDigest` per day and per *marginal* value
(("provider", "openai"), ("tag", "work"), ("*", "*") for the totals, ...). A digest keeps the
exact values while it holds at most `EXACT_LIMIT` of them and then switches to a fixed-bin
log-scale histogram (bins 2% wide, a bin reported by its geometric middle: at most ~1% relative
error). Digests merge, and the result depends only on the multiset of values, never on the order
of merging, so partial folds (chunks, worker processes) combine into the same answer. Memory is
bounded by days x distinct values, never by record count.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone, tzinfo
from itertools import repeat
from operator import add, mul

EXACT_LIMIT = 64
BIN_RATIO = 1.02
_LOG_RATIO = math.log(BIN_RATIO)
_INV_LOG_RATIO = 1.0 / _LOG_RATIO
CHUNK_BYTES = 8 << 20
MAX_WARNINGS = 5  # invalid-line warnings per scan

# Canonical order of the fields the report needs, as raw JSON text (strings keep their quotes).
FIELDS = ("ts", "kind", "provider", "model", "target", "route", "attempt", "status",
          "latency_ms", "input_tokens", "output_tokens", "cost_usd", "cached", "tags")
DIMENSIONS = ("provider", "model", "target", "route", "kind", "tag")

# Counter slots of one combination.
REQ, OK, TIN, TOUT, COST, FALLBACK, CACHED, LAT_SUM, LAT_N = range(9)
N_COUNTERS = 9

Warn = Callable[[str], None]
ComboKey = tuple  # (kind, provider, model, target, route, tags: tuple[str, ...]); None = absent


class LatencyDigest:
    """Latencies of one group: exact while small, a log-scale histogram when large."""

    __slots__ = ("exact", "bins", "count")

    def __init__(self) -> None:
        self.exact: list[float] | None = []
        self.bins: dict[int, int] = {}
        self.count = 0

    def add_many(self, values: list[float]) -> None:
        self.count += len(values)
        if self.exact is not None:
            self.exact.extend(values)
            if len(self.exact) > EXACT_LIMIT:
                self._to_bins()
            return
        self._bin(values)

    def merge(self, other: "LatencyDigest") -> None:
        if other.exact is not None:
            self.add_many(other.exact)
            return
        if self.exact is not None:
            self._to_bins()
        for b, n in other.bins.items():
            self.bins[b] = self.bins.get(b, 0) + n
        self.count += other.count

    def percentile(self, q: float) -> float | None:
        """Nearest-rank percentile (`q` in 0..1): the smallest value with at least q of the data
        at or below it. None when empty."""
        if not self.count:
            return None
        rank = max(1, math.ceil(q * self.count - 1e-9))
        if self.exact is not None:
            return sorted(self.exact)[rank - 1]
        seen = 0
        for b in sorted(self.bins):
            seen += self.bins[b]
            if seen >= rank:
                return BIN_RATIO ** (b + 0.5)
        return None

    def _to_bins(self) -> None:
        values, self.exact = self.exact or [], None
        self._bin(values)

    def _bin(self, values: list[float]) -> None:
        """Bin b holds [RATIO**b, RATIO**(b+1)); values under 1 ms count as 1 ms (bin 0)."""
        bins = self.bins
        counted = Counter(map(int, map(mul, map(math.log, map(max, values, repeat(1.0))),
                                      repeat(_INV_LOG_RATIO))))
        for b, n in counted.items():
            bins[b] = bins.get(b, 0) + n

    def add_bins(self, counted: dict[int, int], count: int) -> None:
        """Add `count` values already binned (bin -> how many), as `bin_of` bins them. Only for
        values that would push the digest past `EXACT_LIMIT` anyway, so the result equals
        `add_many` of the raw values."""
        if self.exact is not None:
            self._to_bins()
        bins = self.bins
        if not bins:
            bins.update(counted)
        else:
            for b, n in counted.items():
                bins[b] = bins.get(b, 0) + n
        self.count += count


@dataclass
class DayAgg:
    """One local day: counters per combination, latency digests per marginal value."""

    counters: dict[ComboKey, list] = field(default_factory=dict)
    latency: dict[tuple[str, str], LatencyDigest] = field(default_factory=dict)

    def add_counters(self, combo: ComboKey, values: list) -> None:
        mine = self.counters.get(combo)
        if mine is None:
            self.counters[combo] = list(values)
        else:
            for i in range(N_COUNTERS):
                mine[i] += values[i]

    def add_latency(self, marginal: tuple[str, str], values: list[float]) -> None:
        digest = self.latency.get(marginal)
        if digest is None:
            digest = self.latency[marginal] = LatencyDigest()
        digest.add_many(values)


@dataclass
class Aggregates:
    """Per-day aggregates of every record whose local day is `from_day` or later (`from_ts` is
    that day's local midnight as a UTC ISO timestamp)."""

    from_day: str
    from_ts: str
    days: dict[str, DayAgg] = field(default_factory=dict)

    def day(self, day: str) -> DayAgg:
        agg = self.days.get(day)
        if agg is None:
            agg = self.days[day] = DayAgg()
        return agg

    def merge(self, other: "Aggregates") -> None:
        """Add another fold's aggregates (a worker's share of the ledger) into these. `other`
        is consumed: its days, counter lists and digests are taken over, not copied (merging
        runs after the parallel scan, in the one process, so it should be cheap)."""
        for day, theirs in other.days.items():
            mine = self.days.get(day)
            if mine is None:
                self.days[day] = theirs
                continue
            counters = mine.counters
            for combo, values in theirs.counters.items():
                have = counters.get(combo)
                if have is None:
                    counters[combo] = values
                else:
                    have[:] = map(add, have, values)
            for marginal, digest in theirs.latency.items():
                ours = mine.latency.get(marginal)
                if ours is None:
                    mine.latency[marginal] = digest
                else:
                    ours.merge(digest)


@dataclass
class ScanResult:
    """What one scan did; tests use `bytes_read` to check that a repeat run reads only appended
    bytes."""

    start_offset: int = 0
    end_offset: int = 0
    bytes_read: int = 0
    records: int = 0
    bad_lines: int = 0
    chunks_skipped: int = 0


def bin_of(value: float) -> int:
    """The histogram bin of one latency, exactly as `LatencyDigest._bin` computes it."""
    return int(math.log(max(value, 1.0)) * _INV_LOG_RATIO)


class DayMapper:
    """Maps a UTC ISO timestamp to its local day (`YYYY-MM-DD`) in the report's time zone.

    Memoised per UTC minute (all real zone offsets are whole minutes) and, behind that, per UTC
    hour: an hour whose first and last minute have the same offset and local date lies wholly
    in that date, so most minutes cost a dict lookup rather than a zone conversion. The memos
    are cleared when they grow large so memory stays bounded. Pickles as its zone only (for
    worker processes)."""

    def __init__(self, tz: tzinfo | None):
        self.tz = tz
        self.memo: dict[str, str] = {}
        self.hours: dict[str, str | None] = {}

    def __call__(self, minute: str) -> str | None:
        """The local day of `minute` (`YYYY-MM-DDTHH:MM`), None when it is not a timestamp."""
        day = self.memo.get(minute)
        if day is None:
            if len(self.memo) > 200_000:
                self.memo.clear()
                self.hours.clear()
            if len(minute) != 16 or minute[10] != "T" or minute[13] != ":":
                return None
            day = self.hours.get(minute[:13], "")
            if day == "":
                day = self.hours[minute[:13]] = self._whole_hour(minute[:13])
            if day is None:
                local = self._local(minute)
                if local is None:
                    return None
                day = local.date().isoformat()
            self.memo[minute] = day
        return day

    def hour_day(self, hour: str) -> str:
        """The local day of every minute of UTC `hour` (`YYYY-MM-DDTHH`), or "" when its minutes
        do not all share one local day (a zone whose midnight is not on the UTC hour) or it is
        not an hour: then ask per minute. A ledger needs one lookup per hour rather than one
        per minute (a month has 44,640 minutes)."""
        if len(hour) != 13 or hour[10] != "T":
            return ""
        day = self.hours.get(hour, "")
        if day == "":
            day = self.hours[hour] = self._whole_hour(hour)
        return day or ""

    def _whole_hour(self, hour: str) -> str | None:
        """The local date of every minute of this UTC hour, or None if it is not one date."""
        first, last = self._local(hour + ":00"), self._local(hour + ":59")
        if first is None or last is None or first.utcoffset() != last.utcoffset():
            return None
        return first.date().isoformat() if first.date() == last.date() else None

    def _local(self, minute: str) -> datetime | None:
        try:
            dt = datetime.fromisoformat(minute).replace(tzinfo=timezone.utc)
        except ValueError:
            return None
        return dt.astimezone(self.tz) if self.tz is not None else dt.astimezone()

    def __getstate__(self) -> dict:
        return {"tz": self.tz}

    def __setstate__(self, state: dict) -> None:
        self.tz, self.memo, self.hours = state["tz"], {}, {}


def label(value: str | None) -> str:
    """How an absent field is shown and grouped."""
    return "(none)" if value is None or value == "" else value
