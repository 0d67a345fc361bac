"""Folding one chunk's extracted fields into `Aggregates`, column-wise.

A Python loop over every record is what made a cold report slow (~16 us a record here), so the
fold works on whole columns (tuples of raw JSON text, one per field) with C-level building
blocks instead: `map` with memo dicts (`__missing__` computes a day or a latency bin once per
distinct value), `zip` + `Counter` to count (group, status, attempt, cached) and
(day, marginal value, latency bin) tuples, and one stable argsort by group so each group's token,
cost and latency sums are `sum(map(int, slice))`. Python-level work is per distinct group or
histogram cell, not per record.

Latency digests must come out exactly as `LatencyDigest.add_many` of the raw values would make
them: a (day, marginal value) whose digest would still hold at most `EXACT_LIMIT` values gets the
exact values (picked out with `itertools.compress`); the rest get bin counts (`add_bins`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from itertools import compress, repeat
from operator import itemgetter

from .extract import tag_tuple, text_value
from .model import (
    CACHED, COST, EXACT_LIMIT, FALLBACK, LAT_N, LAT_SUM, N_COUNTERS, OK, REQ, TIN, TOUT,
    Aggregates, ComboKey, DayMapper, LatencyDigest, bin_of, label,
)

_MINUTE = itemgetter(slice(1, 17))
_MEMO_LIMIT = 200_000


class _Memo(dict):
    """A dict that computes a missing value with `fn` (so lookups run as C `map`s); cleared when
    large so memory stays bounded."""

    def __init__(self, fn: Callable):
        super().__init__()
        self.fn = fn

    def __missing__(self, key):
        if len(self) > _MEMO_LIMIT:
            self.clear()
        value = self[key] = self.fn(key)
        return value


class _Ids(dict):
    """Numbers distinct keys 0, 1, 2, ... in first-seen order."""

    def __missing__(self, key):
        value = self[key] = len(self)
        return value


def _bin_raw(raw: str) -> int | None:
    return None if raw == "null" else bin_of(float(raw))


def _combo_of(raw: tuple) -> ComboKey:
    *names, tags = raw
    return (*[text_value(n) for n in names], tag_tuple(tags))


class ColumnFolder:
    """Folds chunks (as FIELDS-ordered columns) into `aggs`, keeping records at or after
    `from_q` (`"` + the first needed UTC timestamp, compared with the raw quoted `ts`)."""

    def __init__(self, aggs: Aggregates, from_q: str, days: DayMapper):
        self.aggs, self.from_q = aggs, from_q
        self.day_of = _Memo(days)
        self.bin_of = _Memo(_bin_raw)
        self.combo_of = _Memo(_combo_of)
        self.labels_of = _Memo(_labels)

    def fold(self, cols: list[Sequence[str]]) -> int:
        """Fold the columns; returns how many records had an unusable `ts` (not folded)."""
        if not cols[0]:
            return 0
        if min(cols[0]) < self.from_q:
            keep = list(map(self.from_q.__le__, cols[0]))
            cols = [tuple(compress(c, keep)) for c in cols]
            if not cols[0]:
                return 0
        day = list(map(self.day_of.__getitem__, map(_MINUTE, cols[0])))
        bad = 0
        if None in day:
            keep = [d is not None for d in day]
            bad = len(day) - sum(keep)
            cols = [tuple(compress(c, keep)) for c in cols]
            day = [d for d in day if d is not None]
            if not day:
                return bad
        self._counters(day, cols)
        self._latency(day, cols)
        return bad

    def _counters(self, day: list, cols: list) -> None:
        _, kind, prov, model, target, route, attempt, status, lat, tin, tout, cost, cached, tags = cols
        ids = _Ids()
        gids = list(map(ids.__getitem__, zip(day, kind, prov, model, target, route, tags)))
        acc = [[0, 0, 0, 0, 0.0, 0, 0, 0.0, 0] for _ in range(len(ids))]
        for (g, st, att, ca), k in Counter(zip(gids, status, attempt, cached)).items():
            a = acc[g]
            a[REQ] += k
            if st == '"ok"':
                a[OK] += k
                if att != "1":
                    a[FALLBACK] += k
            if ca == "true":
                a[CACHED] += k
        order = sorted(range(len(gids)), key=gids.__getitem__)
        tin_s, tout_s, cost_s, lat_s = ([*map(c.__getitem__, order)] for c in (tin, tout, cost, lat))
        start = 0
        for g, key in enumerate(ids):
            a = acc[g]
            end = start + a[REQ]
            a[TIN] = _sum(int, tin_s[start:end])
            a[TOUT] = _sum(int, tout_s[start:end])
            a[COST] = _sum(float, cost_s[start:end], 0.0)
            lats = _present(lat_s[start:end])
            a[LAT_SUM], a[LAT_N] = sum(map(float, lats)), len(lats)
            start = end
            self.aggs.day(key[0]).add_counters(self.combo_of[key[1:]], a)

    def _latency(self, day: list, cols: list) -> None:
        bins = list(map(self.bin_of.__getitem__, cols[8]))
        if bins.count(None) == len(bins):
            return
        dims = (("*", repeat("*")), ("provider", cols[2]), ("model", cols[3]),
                ("target", cols[4]), ("route", cols[5]), ("kind", cols[1]), ("tag", cols[13]))
        for dim, col in dims:
            cells: dict[tuple, dict[int, int]] = {}
            totals: dict[tuple, int] = {}
            raws: dict[tuple, set] = {}
            for (d, raw, b), k in Counter(zip(day, col, bins)).items():
                if b is None:
                    continue
                for value in self.labels_of[(dim, raw)]:
                    key = (d, value)
                    hist = cells.get(key)
                    if hist is None:
                        hist, totals[key], raws[key] = cells.setdefault(key, {}), 0, set()
                    hist[b] = hist.get(b, 0) + k
                    totals[key] += k
                    raws[key].add(raw)
            small = self._add_bins(dim, cells, totals)
            if small:
                self._add_exact(dim, small, {(d, r) for d, v in small for r in raws[(d, v)]},
                                day, col if dim != "*" else repeat("*"), cols[8])

    def _add_bins(self, dim: str, cells: dict, totals: dict) -> set:
        """Add the bin counts of every (day, value) that ends up binned; return the others."""
        small = set()
        for (d, value), hist in cells.items():
            latency = self.aggs.day(d).latency
            digest = latency.get((dim, value))
            held = 0 if digest is None else digest.count
            if (digest is None or digest.exact is not None) and held + totals[(d, value)] <= EXACT_LIMIT:
                small.add((d, value))
                continue
            if digest is None:
                digest = latency[(dim, value)] = LatencyDigest()
            digest.add_bins(hist, totals[(d, value)])
        return small

    def _add_exact(self, dim: str, small: set, wanted: set, day: list, col, lat) -> None:
        exact: dict[tuple, list[float]] = {}
        picked = compress(zip(day, col, lat), map(wanted.__contains__, zip(day, col)))
        for d, raw, value in picked:
            if value == "null":
                continue
            for name in self.labels_of[(dim, raw)]:
                if (d, name) in small:
                    exact.setdefault((d, name), []).append(float(value))
        for (d, name), values in exact.items():
            self.aggs.day(d).add_latency((dim, name), values)


def _labels(key: tuple[str, str]) -> tuple[str, ...]:
    """The marginal values one raw field value counts under."""
    dim, raw = key
    if dim == "*":
        return ("*",)
    if dim == "tag":
        return tag_tuple(raw) or ("(none)",)
    return (label(text_value(raw)),)


def _present(values: list) -> list:
    return [v for v in values if v != "null"] if "null" in values else values


def _sum(convert: Callable, values: list, start=0):
    return sum(map(convert, _present(values)), start)
