"""Folding one chunk's extracted fields into `Aggregates`, column-wise.

A Python loop over every record is what made a cold report slow (~16 us a record here), so the
fold works on whole columns (`extract.Columns`: tuples of raw JSON text) with C-level building
blocks instead: `map` with memo dicts (`__missing__` computes a day or a latency bin once per
distinct value); records numbered by (day, key-column texts), where the fast pattern's key
columns are whole runs of fields (kind..status as one text), so the fields of a key are worked
out once per distinct key; `Counter` of those numbers for requests, ok, fallbacks and cache hits;
and one stable argsort by group so each group's token, cost and latency sums are sums of slices
and each marginal value's latency histogram a `Counter` over its groups' chained bin slices.
Python-level work is per distinct key, group, cell or histogram bin, not per record.

Latency digests must come out exactly as `LatencyDigest.add_many` of the raw values would make
them: a (day, marginal value) whose digest would still hold at most `EXACT_LIMIT` values gets the
exact values (its groups' latency slices); the rest get bin counts (`add_bins`).
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Callable
from itertools import accumulate, chain, compress, repeat
from operator import add, is_not, itemgetter

from .extract import KEY_FIELDS, Columns, tag_tuple, text_value
from .model import (
    CACHED, COST, EXACT_LIMIT, FALLBACK, LAT_N, LAT_SUM, OK, REQ, TIN, TOUT,
    Aggregates, ComboKey, DayMapper, LatencyDigest, bin_of, label,
)

_HOUR, _MINUTE = itemgetter(slice(1, 14)), itemgetter(slice(1, 17))
_FLOAT_MAX = sys.float_info.max
# A record's group is its day and the first KEY_FIELDS: kind, provider, model, target, route,
# tags (the rest, status, attempt and cached, are only counted).
_COMBO_FIELDS = KEY_FIELDS.index("tags") + 1
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
    """The latency's bin (None for null)."""
    if raw == "null":
        return None
    value = float(raw)
    return bin_of(value if value < _FLOAT_MAX else _FLOAT_MAX)


def _combo_of(raw: tuple) -> ComboKey:
    *names, tags = raw
    return (*[text_value(n) for n in names], tag_tuple(tags))


class ColumnFolder:
    """Folds chunks (as FIELDS-ordered columns) into `aggs`, keeping records at or after
    `from_q` (`"` + the first needed UTC timestamp, compared with the raw quoted `ts`)."""

    def __init__(self, aggs: Aggregates, from_q: str, days: DayMapper):
        self.aggs, self.from_q = aggs, from_q
        self.day_of = _Memo(days)
        self.hour_day = _Memo(days.hour_day)
        self.bin_of = _Memo(_bin_raw)
        self.combo_of = _Memo(_combo_of)
        self.int_of = _Memo(_int_raw)
        self.marginals_of = _Memo(_marginals)

    def fold(self, chunk: Columns) -> int:
        """Fold the chunk; returns how many records had an unusable `ts` (not folded)."""
        cols = chunk.cols
        if not cols[0]:
            return 0
        if min(cols[0]) < self.from_q:
            keep = list(map(self.from_q.__le__, cols[0]))
            cols = [tuple(compress(c, keep)) for c in cols]
            if not cols[0]:
                return 0
        day = list(map(self.hour_day.__getitem__, map(_HOUR, cols[0])))
        if "" in day:  # hours that are not one local day (or not hours): minute by minute
            day = [d or self.day_of[_MINUTE(ts)] for d, ts in zip(day, cols[0])]
        bad = 0
        if None in day:
            keep = [d is not None for d in day]
            bad = len(day) - sum(keep)
            cols = [tuple(compress(c, keep)) for c in cols]
            day = [d for d in day if d is not None]
            if not day:
                return bad
        _, lat, tin, tout, cost, *keys = cols
        groups, gids, acc = self._group(day, keys, chunk.describe)
        bins_s, lat_f, bounds = self._sums(groups, gids, acc, lat, tin, tout, cost)
        self._latency(list(groups), bins_s, lat_f, bounds)
        return bad

    @staticmethod
    def _group(day: list, keys: list, describe) -> tuple[dict, list, list]:
        """Each record's group (day + combination) id, and per group its counters with requests,
        ok, fallbacks and cache hits counted. Records are first numbered by (day, key-column
        texts), which `describe` turns into fields once per distinct value, not per record."""
        by_key = _Ids()
        key_ids = list(map(by_key.__getitem__, zip(day, *keys)))
        groups, to_group, described = _Ids(), [], []
        for d, *key in by_key:
            fields = describe(tuple(key))
            described.append(fields)
            to_group.append(groups[(d, *fields[:_COMBO_FIELDS])])
        acc = [[0, 0, 0, 0, 0.0, 0, 0, 0.0, 0] for _ in range(len(groups))]
        for k, n in Counter(key_ids).items():
            *_, status, attempt, cached = described[k]
            a = acc[to_group[k]]
            a[REQ] += n
            if status == '"ok"':
                a[OK] += n
                if attempt != "1":
                    a[FALLBACK] += n
            if cached == "true":
                a[CACHED] += n
        return groups, list(map(to_group.__getitem__, key_ids)), acc

    def _sums(self, groups: dict, gids: list, acc: list, lat, tin, tout, cost
              ) -> tuple[list, list, list]:
        """Token, cost and latency sums per group, then every group into its day's counters.
        Returns the records' latency bins (None: no latency) and latencies ordered by group,
        and each group's start in that order (plus the end), for `_latency`."""
        order = sorted(range(len(gids)), key=gids.__getitem__)
        # Text becomes numbers in record order, and only the numbers are then gathered in group
        # order: the text of a chunk (~6 MB of small strings) does not fit in the CPU cache, so
        # reading it in group order (random in memory) cost more than converting it. Integer
        # sums come from prefix sums (exact); float sums per slice, in record order, so they
        # equal adding the records one by one.
        int_of = self.int_of.__getitem__
        tin_p = [*accumulate(map([*map(int_of, tin)].__getitem__, order), initial=0)]
        tout_p = [*accumulate(map([*map(int_of, tout)].__getitem__, order), initial=0)]
        cost_s = [*map([*map(float, _present(cost, "0.0"))].__getitem__, order)]
        bins_s = [*map([*map(self.bin_of.__getitem__, lat)].__getitem__, order)]
        if "null" in lat:
            lat_n = [*accumulate(map(is_not, bins_s, repeat(None)), initial=0)]
        else:  # every latency present: the count before position i is i
            lat_n = range(len(bins_s) + 1)
        lat_f = [*map([*map(float, _present(lat, "0.0"))].__getitem__, order)]
        bounds = [0]
        start = 0
        for g, key in enumerate(groups):
            a = acc[g]
            end = start + a[REQ]
            bounds.append(end)
            a[TIN], a[TOUT] = tin_p[end] - tin_p[start], tout_p[end] - tout_p[start]
            a[COST] = sum(cost_s[start:end], 0.0)
            a[LAT_SUM], a[LAT_N] = sum(lat_f[start:end], 0.0), lat_n[end] - lat_n[start]
            start = end
            counters = self.aggs.day(key[0]).counters
            combo = self.combo_of[key[1:]]
            mine = counters.get(combo)
            if mine is None:
                counters[combo] = a
            else:
                mine[:] = map(add, mine, a)
        return bins_s, lat_f, bounds

    def _latency(self, groups: list, bins_s: list, lat_f: list, bounds: list) -> None:
        """Latency digests per (day, marginal value). Records are ordered by group, so a group's
        latencies are one slice; every marginal value's cell is a list of groups, and its
        histogram one C-level `Counter` over the chained bin slices of those groups: the
        Python-level work is per (group, dimension) and per distinct bin of a cell, not per
        record and dimension."""
        if bins_s.count(None) == len(bins_s):
            return
        members: dict[tuple, list[int]] = {}
        for g, key in enumerate(groups):
            day = key[0]
            for dim, value in self.marginals_of[key[1:]]:
                cell = (dim, day, value)
                group_list = members.get(cell)
                if group_list is None:
                    members[cell] = [g]
                else:
                    group_list.append(g)
        slices = [*map(slice, bounds, bounds[1:])]
        for (dim, d, value), gs in members.items():
            spans = [*map(slices.__getitem__, gs)]
            counted = Counter(chain.from_iterable(map(bins_s.__getitem__, spans)))
            counted.pop(None, None)
            total = sum(counted.values())
            if not total:  # only null latencies
                continue
            latency = self.aggs.day(d).latency
            digest = latency.get((dim, value))
            held = 0 if digest is None else digest.count
            if (digest is None or digest.exact is not None) and held + total <= EXACT_LIMIT:
                values = chain.from_iterable(map(lat_f.__getitem__, spans))
                bins = chain.from_iterable(map(bins_s.__getitem__, spans))
                present = map(is_not, bins, repeat(None))  # a null latency has no bin
                self.aggs.day(d).add_latency((dim, value), [*compress(values, present)])
                continue
            if digest is None:
                digest = latency[(dim, value)] = LatencyDigest()
            digest.add_bins(counted, total)


def _marginals(combo: tuple) -> tuple[tuple[str, str], ...]:
    """The (dimension, marginal value) pairs whose latency digests the records of a combination
    (kind, provider, model, target, route, tags as raw text) count in, every day."""
    pairs = [(dim, value) for dim, at in _DIMS for value in _labels(dim, combo[at])]
    return (*pairs, ("*", "*"))


# Each marginal dimension with its place in a combination (kind, provider, model, target, route,
# tags); every record also counts under ("*", "*").
_DIMS = (("provider", 1), ("model", 2), ("target", 3), ("route", 4), ("kind", 0), ("tag", 5))


def _labels(dim: str, raw: str) -> tuple[str, ...]:
    """The marginal values one raw field value counts under."""
    if dim == "tag":
        return tag_tuple(raw) or ("(none)",)
    return (label(text_value(raw)),)


def _present(values: list, zero: str) -> list:
    """`values` with every "null" replaced by `zero` (adding it changes no float sum)."""
    return [zero if v == "null" else v for v in values] if "null" in values else values


def _int_raw(raw: str) -> int:
    return 0 if raw == "null" else int(raw)
