"""Streaming, mergeable aggregation of the ledger for `llmroute report` (SPEC §5, §10).

Why it looks like this:

* Every report window is a run of whole local days, so the ledger is folded into per-day,
  per-combination counters (`Aggregates`): a combination is (kind, provider, model, target, route,
  tags). Any `--by` grouping, the totals row, the per-day cost series and the budget lines are sums
  of these, and the same structure is what `index.py` caches on disk.
* p95 is not a sum, so latencies go into a `LatencyDigest` per day and per *marginal* value
  (("provider", "openai"), ("tag", "work"), ("*", "*") for the totals, ...). A digest keeps the
  exact values while it holds at most `EXACT_LIMIT` of them and then switches to a fixed-bin
  log-scale histogram (bins 2% wide, a bin reported by its geometric middle: at most ~1% relative
  error). Digests merge, so memory is bounded by days x distinct values, never by record count.
* Speed: `json.loads` of every full record is the slow part of a naive reader (a million records
  take many seconds). `scan` reads the ledger in big chunks and (1) skips a chunk outright when
  every line's `ts` sorts before the first day needed (ISO strings sort; one C-level `findall`),
  (2) extracts only the 14 needed fields of the remaining lines with one regex built from the key
  order of the chunk's first record, run by `findall` over the whole chunk. The writer puts keys
  in a fixed order, so nearly every chunk takes this path. A chunk where any line does not match
  (another key order, a torn or hand-edited line) is redone line by line, with `json.loads` for
  lines the regex rejects; invalid lines are skipped with a warning. This private reader stays
  instead of `llmroute.ledger.read_from` because it is several times faster on large ledgers.
  JSON escaping guarantees a `"key":` sequence only ever occurs as a real key of a flat record.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone, tzinfo
from itertools import repeat
from operator import itemgetter, mul
from pathlib import Path

EXACT_LIMIT = 64
BIN_RATIO = 1.02
_LOG_RATIO = math.log(BIN_RATIO)
CHUNK_BYTES = 8 << 20

# Canonical order of the fields the report needs, as raw JSON text (strings keep their quotes).
FIELDS = ("ts", "kind", "provider", "model", "target", "route", "attempt", "status",
          "latency_ms", "input_tokens", "output_tokens", "cost_usd", "cached", "tags")
DIMENSIONS = ("provider", "model", "target", "route", "kind", "tag")

# Counter slots of one combination.
REQ, OK, TIN, TOUT, COST, FALLBACK, CACHED, LAT_SUM, LAT_N = range(9)
N_COUNTERS = 9

_STR = r'"[^"\\\n]*(?:\\.[^"\\\n]*)*"'
_VALUE_PATTERNS = {
    "ts": f"({_STR})",
    "attempt": r"(\d+)",
    "status": f"({_STR})",
    "latency_ms": r"(-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?|null)",
    "cost_usd": r"(-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?|null)",
    "input_tokens": r"(\d+|null)",
    "output_tokens": r"(\d+|null)",
    "cached": r"(true|false|null)",
    "tags": r'(\[[^\]"\n]*(?:' + _STR + r'[^\]"\n]*)*\]|null)',
}
_TS_RE = re.compile(r'"ts": ?"([^"\n]*)"')

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
                                      repeat(1.0 / _LOG_RATIO))))
        for b, n in counted.items():
            bins[b] = bins.get(b, 0) + n

    def to_json(self) -> list:
        if self.exact is not None:
            return ["e", self.exact]
        return ["b", self.count, [x for kv in sorted(self.bins.items()) for x in kv]]

    @classmethod
    def from_json(cls, data: list) -> "LatencyDigest":
        d = cls()
        if data[0] == "e":
            d.exact = [float(v) for v in data[1]]
            d.count = len(d.exact)
        else:
            d.exact, d.count, flat = None, int(data[1]), data[2]
            d.bins = {int(flat[i]): int(flat[i + 1]) for i in range(0, len(flat), 2)}
        return d


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

    def to_json(self) -> dict:
        return {
            "from_day": self.from_day,
            "from_ts": self.from_ts,
            "days": {
                day: {
                    "c": [[*combo[:5], list(combo[5]), *vals] for combo, vals in agg.counters.items()],
                    "l": [[dim, val, dg.to_json()] for (dim, val), dg in agg.latency.items()],
                }
                for day, agg in self.days.items()
            },
        }

    @classmethod
    def from_json(cls, data: dict) -> "Aggregates":
        aggs = cls(from_day=str(data["from_day"]), from_ts=str(data["from_ts"]))
        for day, body in data["days"].items():
            agg = aggs.day(day)
            for row in body["c"]:
                combo = (*row[:5], tuple(row[5]))
                agg.counters[combo] = [*row[6:6 + N_COUNTERS]]
                if len(agg.counters[combo]) != N_COUNTERS:
                    raise ValueError("bad counter row")
            for dim, val, dg in body["l"]:
                agg.latency[(dim, val)] = LatencyDigest.from_json(dg)
        return aggs


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


class DayMapper:
    """Maps a UTC ISO timestamp to its local day (`YYYY-MM-DD`) in the report's time zone.

    Memoised per UTC minute (all real zone offsets are whole minutes); the memo is cleared when
    it grows large so memory stays bounded."""

    def __init__(self, tz: tzinfo | None):
        self.tz = tz
        self.memo: dict[str, str] = {}

    def __call__(self, minute: str) -> str:
        day = self.memo.get(minute)
        if day is None:
            if len(self.memo) > 200_000:
                self.memo.clear()
            dt = datetime.fromisoformat(minute).replace(tzinfo=timezone.utc)
            local = dt.astimezone(self.tz) if self.tz is not None else dt.astimezone()
            day = self.memo[minute] = local.date().isoformat()
        return day


def scan(path: Path, aggs: Aggregates, *, start_offset: int, days: DayMapper,
         warn: Warn) -> ScanResult:
    """Fold the ledger's complete lines from `start_offset` on into `aggs`, keeping records whose
    `ts` is at or after `aggs.from_ts`. A final line without its newline is left for later:
    `end_offset` stops before it."""
    result = ScanResult(start_offset=start_offset, end_offset=start_offset)
    folder = _Folder(aggs, '"' + aggs.from_ts, days, warn, result, path.name)
    with open(path, "rb") as fh:
        fh.seek(start_offset)
        offset, carry = start_offset, b""
        while True:
            block = fh.read(CHUNK_BYTES)
            if not block:
                break
            result.bytes_read += len(block)
            data = carry + block
            cut = data.rfind(b"\n") + 1
            carry = data[cut:]
            if cut:
                folder.chunk(data[:cut].decode("utf-8", "replace"), offset)
                offset += cut
    result.end_offset = offset
    return result


class _Folder:
    """Turns chunks of complete lines into aggregates (the hot loop lives here)."""

    def __init__(self, aggs: Aggregates, from_q: str, days: DayMapper, warn: Warn,
                 result: ScanResult, name: str):
        self.aggs, self.from_q, self.days, self.warn = aggs, from_q, days, warn
        self.result, self.name = result, name
        self._patterns: dict[tuple[str, ...], tuple[re.Pattern, Callable]] = {}
        self._keys: dict[tuple, ComboKey] = {}

    def chunk(self, text: str, offset: int) -> None:
        n_lines = text.count("\n")
        stamps = _TS_RE.findall(text)
        if len(stamps) == n_lines and max(stamps) < self.from_q[1:]:
            self.result.chunks_skipped += 1
            return
        compiled = self._pattern_for(text)
        rows: Iterable[tuple] = ()
        if compiled is not None:
            found = compiled[0].findall(text)
            if len(found) == n_lines:
                rows = map(compiled[1], found)
                self.result.records += n_lines
            else:
                compiled_rows = self._rows_slowly(text, offset, compiled)
                rows = compiled_rows
        else:
            rows = self._rows_slowly(text, offset, None)
        self._fold(rows)

    def _pattern_for(self, text: str) -> tuple[re.Pattern, Callable] | None:
        """The fast regex for this chunk, built from the key order of its first valid record.
        A needed field that record lacks gets its default, provided no line of the chunk has it
        (else None: line by line). A line lacking a field the pattern wants does not match, which
        `chunk` notices from the match count."""
        for line in text.split("\n", 5)[:5]:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if not isinstance(record, dict):
                return None
            order = tuple(k for k in record if k in FIELDS)
            missing = [f for f in FIELDS if f not in record]
            if "ts" not in order or len(order) < 2 or any(f'"{f}":' in text for f in missing):
                return None
            if order not in self._patterns:
                self._patterns[order] = _compile(order)
            return self._patterns[order]
        return None

    def _rows_slowly(self, text: str, offset: int, compiled) -> Iterator[tuple]:
        pattern, getter = compiled if compiled else (None, None)
        for line in text.split("\n")[:-1]:
            start, offset = offset, offset + len(line.encode("utf-8", "replace")) + 1
            if not line.strip():
                continue
            match = pattern.fullmatch(line) if pattern is not None else None
            row = getter(match.groups()) if match else _raw_row(line)
            if row is None:
                self.result.bad_lines += 1
                if self.result.bad_lines <= 5:
                    self.warn(f"{self.name}: skipped an invalid line at byte {start}")
                continue
            self.result.records += 1
            yield row

    def _fold(self, rows: Iterable[tuple]) -> None:
        groups: dict[tuple, list] = {}
        from_q, days = self.from_q, self.days
        memo = days.memo
        for ts, kind, prov, model, target, route, attempt, status, lat, tin, tout, cost, cached, tags in rows:
            if ts < from_q:
                continue
            minute = ts[1:17]
            key = (memo.get(minute) or days(minute), kind, prov, model, target, route, tags)
            a = groups.get(key)
            if a is None:
                a = groups[key] = [0, 0, 0, 0, 0.0, 0, 0, []]
            a[0] += 1
            if status == '"ok"':
                a[1] += 1
                if attempt != "1":
                    a[5] += 1
            if cached == "true":
                a[6] += 1
            if tin != "null":
                a[2] += int(tin)
            if tout != "null":
                a[3] += int(tout)
            if cost != "null":
                a[4] += float(cost)
            if lat != "null":
                a[7].append(lat)
        self._merge(groups)

    def _merge(self, groups: dict[tuple, list]) -> None:
        marginals: dict[tuple[str, str, str], list[float]] = {}
        for (day, *raw), a in groups.items():
            combo = self._combo(tuple(raw))
            lats = [float(x) for x in a[7]]
            counters = [a[0], a[1], a[2], a[3], a[4], a[5], a[6], sum(lats), len(lats)]
            self.aggs.day(day).add_counters(combo, counters)
            if not lats:
                continue
            for marginal in _marginals(combo):
                marginals.setdefault((day, *marginal), []).extend(lats)
        for (day, dim, val), lats in marginals.items():
            self.aggs.day(day).add_latency((dim, val), lats)

    def _combo(self, raw: tuple) -> ComboKey:
        combo = self._keys.get(raw)
        if combo is None:
            *names, tags = raw
            parsed = [_text(n) for n in names]
            tag_list = json.loads(tags) if tags != "null" else []
            tag_tuple = tuple(sorted({str(t) for t in tag_list})) if isinstance(tag_list, list) else ()
            combo = self._keys[raw] = (*parsed, tag_tuple)
        return combo


def _marginals(combo: ComboKey) -> Iterator[tuple[str, str]]:
    kind, provider, model, target, route, tags = combo
    yield ("*", "*")
    yield ("provider", label(provider))
    yield ("model", label(model))
    yield ("target", label(target))
    yield ("route", label(route))
    yield ("kind", label(kind))
    for tag in tags or ("(none)",):
        yield ("tag", tag)


def label(value: str | None) -> str:
    """How an absent field is shown and grouped."""
    return "(none)" if value is None or value == "" else value


def _text(raw: str) -> str | None:
    if raw == "null":
        return None
    if "\\" in raw:
        value = json.loads(raw)
        return value if isinstance(value, str) else str(value)
    return raw[1:-1]


_DEFAULTS = {"attempt": "1", "cached": "false"}


def _compile(order: tuple[str, ...]) -> tuple[re.Pattern, Callable]:
    """A regex capturing `order`'s fields (in that order) from each whole line of a chunk, and a
    function turning its groups into a canonical row."""
    parts = [f'"{k}": ?' + _VALUE_PATTERNS.get(k, f"({_STR}|null)") for k in order]
    pattern = re.compile(r"^\{[^\n]*?" + r"[^\n]*?".join(parts) + r"[^\n]*\}$", re.M)
    if len(order) == len(FIELDS):
        return pattern, itemgetter(*(order.index(f) for f in FIELDS))
    where = [(order.index(f), None) if f in order else (None, _DEFAULTS.get(f, "null"))
             for f in FIELDS]

    def canonical(groups: tuple) -> tuple:
        return tuple(groups[i] if i is not None else default for i, default in where)

    return pattern, canonical


def _raw_row(line: str) -> tuple | None:
    """The canonical raw row of one line parsed with json; None if it is not a usable record."""
    try:
        rec = json.loads(line)
    except ValueError:
        return None
    if not isinstance(rec, dict):
        return None
    ts = rec.get("ts")
    if not isinstance(ts, str) or len(ts) < 16 or ts[4] != "-" or ts[10] != "T":
        return None
    return tuple(_raw_value(f, rec.get(f)) for f in FIELDS)


def _raw_value(name: str, value) -> str:
    if name in ("input_tokens", "output_tokens", "attempt"):
        number = _number(value)
        if number is None:
            return "1" if name == "attempt" else "null"
        return str(int(number))
    if name in ("latency_ms", "cost_usd"):
        number = _number(value)
        return "null" if number is None else repr(float(number))
    if name == "cached":
        return "true" if value is True else "false"
    if name == "tags":
        tags = value if isinstance(value, list) else []
        return json.dumps([str(t) for t in tags])
    if value is None:
        return "null"
    return json.dumps(value if isinstance(value, str) else str(value))


def _number(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return value if math.isfinite(value) else None


def file_identity(path: Path) -> tuple[int, int, int]:
    """(device, inode, size) of the ledger, to notice a replaced or truncated file."""
    st = os.stat(path)
    return st.st_dev, st.st_ino, st.st_size
