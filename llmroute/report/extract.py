"""Getting the report's 14 fields out of ledger text fast, without `json.loads` per line.

A chunk of complete lines is matched by one regex, run by `findall` over the whole chunk, whose
capture groups are the needed fields as raw JSON text (strings keep their quotes). Two patterns
are built from the key order of the chunk's first record:

* *exact*: every key of that record in order up to the last needed one, compact separators
  (what `Ledger` writes), and value patterns made of single-character loops (`"[^"]*"`,
  `[^,"]*`) that the regex engine runs much faster than the lazy gaps of a free-form pattern.
  Adjacent fields with few distinct values (kind..status, cached+tags) are captured as one
  group, split into fields once per distinct text: fewer groups and objects per record;
* *flexible*: only the needed keys, in that order, with any text between them, so records with
  extra or missing optional keys, other spacing or escaped quotes still match.

A chunk takes a pattern only if it matches every line (the match count equals the line count); a
line that matches neither is read with `json.loads`. A pattern cannot match a wrong value: JSON
escaping means an unescaped `"key":` only ever occurs as a real key of a flat record, and a value
pattern that stops early leaves text the following key literal cannot match.

`skippable` decides cheaply whether a chunk lies wholly before the first day needed.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta

from .model import FIELDS

DEFAULTS = {"attempt": "1", "cached": "false"}
# Fields summed or compared per record, and the fields that (with the day) only decide a
# record's group and counts: see `Columns`.
NUMERIC = ("ts", "latency_ms", "input_tokens", "output_tokens", "cost_usd")
KEY_FIELDS = ("kind", "provider", "model", "target", "route", "tags", "status", "attempt", "cached")

_STR = r'"[^"\\\n]*(?:\\.[^"\\\n]*)*"'
_NUM = r"(-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?|null)"
_VALUE_PATTERNS = {
    "ts": f"({_STR})",
    "attempt": r"(\d+)",
    "status": f"({_STR})",
    "latency_ms": _NUM,
    "cost_usd": _NUM,
    "input_tokens": r"(\d+|null)",
    "output_tokens": r"(\d+|null)",
    "cached": r"(true|false|null)",
    "tags": r'(\[[^\]"\n]*(?:' + _STR + r'[^\]"\n]*)*\]|null)',
}
# The exact pattern's values never give back what they matched: possessive loops (`*+`, `++`,
# Python 3.11+) and atomic groups `(?>...)` for alternatives. What follows a value is always ","
# or "}" (or the end of a captured run), which no shorter run and no other alternative could
# reach either, so this changes no match; the engine just stops saving backtracking state:
# ~6% off the whole-line match (and an optional group like `(?:\.\d+)?` compiles to a general
# repeat that `?+` avoids).
_FAST_NUM = r"(-?\d++(?:\.\d++)?+(?:[eE][-+]?\d++)?+|null)"
_FAST_VALUE_PATTERNS = {
    **_VALUE_PATTERNS,
    "latency_ms": _FAST_NUM,
    "cost_usd": _FAST_NUM,
    "input_tokens": r"(\d++|null)",
    "output_tokens": r"(\d++|null)",
    "attempt": r"(\d++)",
    "ts": r'("[^"]*+")',
    "status": r'("[^"]*+")',
    "tags": r"(\[[^\]]*+\]|null)",
}
_FAST_STR = r'("[^"]*+"|null)'
_FAST_OTHER = r'(?>"[^"]*+"|[^,"]*+)'
_TS_RE = re.compile(r'"ts": ?"([^"\n]*)"')

Compiled = tuple[re.Pattern, Callable[[list], "Columns"]]


def patterns_for(text: str, cache: dict) -> tuple[Compiled | None, Compiled | None]:
    """(exact, flexible) patterns for this chunk, from the key order of its first valid record
    (in its first five lines). A needed field that record lacks gets its default, provided no
    line of the chunk has it; otherwise (or with no usable record) both are None."""
    end = 0
    for _ in range(5):  # the first five lines, without copying the rest of the chunk
        end = text.find("\n", end) + 1
        if not end:
            break
    for line in (text[:end] if end else text).split("\n")[:5]:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if not isinstance(record, dict):
            return None, None
        keys = tuple(record)
        order = tuple(k for k in keys if k in FIELDS)
        missing = [f for f in FIELDS if f not in record]
        if "ts" not in order or len(order) < 2 or any(f'"{f}":' in text for f in missing):
            return None, None
        compact = line.startswith("{" + json.dumps(keys[0]) + ":") and '", "' not in line
        if keys not in cache:
            cache[keys] = (_compile_exact(keys, order) if compact else None,
                           _compile_flexible(order))
        return cache[keys]
    return None, None


def _compile_flexible(order: tuple[str, ...]) -> Compiled:
    parts = [f'"{k}": ?' + _VALUE_PATTERNS.get(k, f"({_STR}|null)") for k in order]
    pattern = re.compile(r"^\{[^\n]*?" + r"[^\n]*?".join(parts) + r"[^\n]*\}$", re.M)
    return pattern, _columns_getter(order)


# Needed fields with few distinct values (per chunk), and unneeded keys allowed between them: a
# run of these is captured as ONE group (fewer objects per record, less regex group work), and
# its fields come from a memo keyed by the run's text (`_span_reader`).
_CATEGORICAL = frozenset({"kind", "target", "provider", "model", "route", "attempt", "status",
                          "cached", "tags"})
_FILLER = frozenset({"strategy"})
_SPAN_MEMO_LIMIT = 50_000


def _compile_exact(keys: tuple[str, ...], order: tuple[str, ...]) -> Compiled | None:
    if any('"' in k or "\\" in k for k in keys):
        return None
    last = max(keys.index(k) for k in order)
    parts, groups, readers = [], [], []  # per capture group: its needed fields, its reader
    for run in _runs(keys[:last + 1]):
        needed = tuple(k for k in run if k in FIELDS)
        inner = ",".join(f'"{k}":' + _value(k, capture=len(run) == 1) for k in run)
        parts.append(inner if len(run) == 1 or not needed else f"({inner})")
        if needed:
            groups.append(needed)
            readers.append(_span_reader(run) if len(run) > 1 else None)
    # Keys after the last needed one are only checked to end the line with "}": a greedy run to
    # the line's end costs far less than matching them key by key.
    # (A branch rather than an optional group `(?:,...)?`, which compiles to a slower general
    # repeat.)
    tail = r"(?:\}|,[^\n]*\})$" if last + 1 < len(keys) else r"\}$"
    pattern = re.compile(r"^\{" + ",".join(parts) + tail, re.M)
    return pattern, _span_getter(groups, readers)


def _value(key: str, capture: bool) -> str:
    """The exact pattern of one key's value, with its capture group only when `capture`."""
    if key not in FIELDS:
        return _FAST_OTHER
    value = _FAST_VALUE_PATTERNS.get(key, _FAST_STR)
    if capture:
        return value
    inner = value[1:-1]
    return inner if "|" not in inner else "(?>" + inner + ")"  # a group costs even so


def _runs(keys: tuple[str, ...]) -> list[tuple[str, ...]]:
    """`keys` cut into runs: maximal stretches of categorical fields with fillers between
    them; every other key is a run of its own."""
    runs: list[list[str]] = []
    for k in keys:
        if runs and runs[-1][0] in _CATEGORICAL and (k in _CATEGORICAL or k in _FILLER):
            runs[-1].append(k)
        else:
            runs.append([k])
    out: list[tuple[str, ...]] = []
    for run in runs:
        trailing: list[str] = []
        while len(run) > 1 and run[-1] in _FILLER:
            trailing.insert(0, run.pop())
        out.append(tuple(run))
        out.extend((k,) for k in trailing)
    return out


class _SpanMemo(dict):
    """Raw values of a run's needed fields by the run's text, worked out once per distinct text
    with the same value patterns as the whole-line match (so the same raw values); cleared when
    large so memory stays bounded."""

    def __init__(self, inner: re.Pattern):
        super().__init__()
        self.inner = inner

    def __missing__(self, text: str) -> tuple:
        if len(self) > _SPAN_MEMO_LIMIT:
            self.clear()
        values = self[text] = self.inner.fullmatch(text).groups()
        return values


def _span_reader(run: tuple[str, ...]) -> Callable[[str], tuple]:
    inner = re.compile(",".join(f'"{k}":' + _value(k, capture=k in FIELDS) for k in run))
    return _SpanMemo(inner).__getitem__


def _span_getter(groups: list[tuple[str, ...]], readers: list) -> Callable[[list], "Columns"]:
    """Turns `findall` rows (one group per run) into `Columns`: the numeric fields as columns,
    the categorical runs as key columns described per distinct key by their readers."""
    at = {g[0]: i for i, g in enumerate(groups) if g[0] in NUMERIC}
    keyed = [i for i, g in enumerate(groups) if g[0] not in NUMERIC]
    describe = _Describe([groups[i] for i in keyed], [readers[i] for i in keyed]).__getitem__

    def columns(rows: list) -> Columns:
        n = len(rows)
        cols = (list(zip(*rows)) if len(groups) > 1 else [tuple(rows)]) if rows else [()] * len(groups)
        numeric = [cols[at[f]] if f in at else (DEFAULTS.get(f, "null"),) * n for f in NUMERIC]
        return Columns(numeric + ([cols[i] for i in keyed] or [("",) * n]), describe)

    return columns


class _Describe(dict):
    """KEY_FIELDS values of one record by its tuple of key-column texts (a run's text goes
    through its reader, a single field is its own value, a field the layout lacks gets its
    default); cleared when large so memory stays bounded."""

    def __init__(self, groups: list[tuple[str, ...]], readers: list):
        super().__init__()
        self.groups, self.readers = groups, readers

    def __missing__(self, key: tuple) -> tuple:
        if len(self) > _SPAN_MEMO_LIMIT:
            self.clear()
        values: dict[str, str] = {}
        for part, fields, reader in zip(key, self.groups, self.readers):
            values.update(zip(fields, reader(part) if reader is not None else (part,)))
        out = self[key] = tuple(values[f] if f in values else DEFAULTS.get(f, "null")
                                for f in KEY_FIELDS)
        return out


def _columns_getter(order: tuple[str, ...]) -> Callable[[list], "Columns"]:
    """Turns `findall` rows (groups in `order`) into `Columns`; a field `order` lacks becomes
    a column of its default."""

    def columns(rows: list) -> Columns:
        if not rows:
            return fields_columns(_reorder(order, [()] * len(order), 0))
        cols = list(zip(*rows)) if len(order) > 1 else [tuple(rows)]
        return fields_columns(_reorder(order, cols, len(rows)))

    return columns


def _reorder(order: tuple[str, ...], cols: list, n: int) -> list:
    """Columns in `order` as FIELDS-ordered columns (a missing field: a column of its default)."""
    where = {f: i for i, f in enumerate(order)}
    return [cols[where[f]] if f in where else (DEFAULTS.get(f, "null"),) * n for f in FIELDS]


@dataclass
class Columns:
    """One chunk's fields as columns of raw JSON text: `cols` holds ts, latency, input and
    output tokens and cost (NUMERIC), then key columns. The tuple of one record's key-column
    values goes through `describe` (a memo: work per distinct tuple, not per record) to its
    KEY_FIELDS values. The fast pattern's key columns are whole runs of fields (one text for
    kind..status), so grouping records costs one short tuple per record."""

    cols: list
    describe: Callable[[tuple], tuple]


def _same(key: tuple) -> tuple:
    return key


def fields_columns(cols: list) -> Columns:
    """`Columns` of FIELDS-ordered columns, each key field its own key column."""
    at = {f: i for i, f in enumerate(FIELDS)}
    return Columns([cols[at[f]] for f in NUMERIC + KEY_FIELDS], _same)


def to_fields(chunk: Columns) -> list:
    """The FIELDS-ordered columns of `chunk` (for the line-by-line path)."""
    numeric = dict(zip(NUMERIC, chunk.cols[:len(NUMERIC)]))
    keys = chunk.cols[len(NUMERIC):]
    described = list(zip(*map(chunk.describe, zip(*keys)))) if keys[0] else [()] * len(KEY_FIELDS)
    keyed = dict(zip(KEY_FIELDS, described))
    return [numeric[f] if f in numeric else keyed[f] for f in FIELDS]


def row_getter(getter: Callable[[list], Columns]) -> Callable[[tuple], tuple]:
    """One canonical row from one match's groups (the line-by-line path)."""
    return lambda groups: tuple(col[0] for col in to_fields(getter([groups])))


def raw_row(line: str) -> tuple | None:
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


def text_value(raw: str) -> str | None:
    """A raw JSON string (or null) as text."""
    if raw == "null":
        return None
    if "\\" in raw:
        try:
            value = json.loads(raw)
        except ValueError:
            return raw[1:-1]
        return value if isinstance(value, str) else str(value)
    return raw[1:-1]


def tag_tuple(raw: str) -> tuple[str, ...]:
    """Raw JSON tags as a sorted tuple of distinct strings."""
    try:
        tags = json.loads(raw) if raw != "null" else []
    except ValueError:
        return ()
    return tuple(sorted({str(t) for t in tags})) if isinstance(tags, list) else ()


def skippable(data: bytes, n_lines: int, from_ts: str) -> bool:
    """True when every line of `data` (complete lines) has a `ts` before `from_ts`.

    Cheap first: a ledger is written in time order, so the first and last stamps suggest the
    chunk's dates. If every line's stamp starts with their common prefix and every string with
    that prefix sorts before `from_ts` (one `bytes.count`, no regex, no objects per line), or
    else with one of the dates between them, the chunk is skipped. A chunk that reaches the
    window is not skipped on that evidence; only when the cheap tests are inconclusive does a
    full `findall` of the stamps decide."""
    first, last = _stamp(data, 0), _stamp(data, data.rfind(b"\n", 0, len(data) - 1) + 1)
    if first is None or last is None or first >= from_ts or last >= from_ts:
        return False
    prefix = os.path.commonprefix([first[:10], last[:10]])
    if prefix and prefix < from_ts[:len(prefix)]:
        if data.count(b'"ts":"' + prefix.encode()) == n_lines:
            return True
    dates = _dates_between(first[:10], last[:10])
    if dates and max(dates) < from_ts[:10]:
        if sum(data.count(b'"ts":"' + d.encode()) for d in dates) == n_lines:
            return True
    stamps = _TS_RE.findall(data.decode("utf-8", "replace"))
    return len(stamps) == n_lines and max(stamps) < from_ts


def _stamp(data: bytes, start: int) -> str | None:
    """The `ts` of the line starting at `start`, None when it has no compact `"ts":"`."""
    end = data.find(b"\n", start)
    line = data[start:end if end >= 0 else len(data)]
    at = line.find(b'"ts":"')
    if at < 0:
        return None
    return line[at + 6:at + 40].split(b'"', 1)[0].decode("ascii", "replace")


def _dates_between(a: str, b: str) -> list[str]:
    """The dates `a`..`b` (ISO), when both parse and at most four days apart; else []."""
    try:
        start, end = date.fromisoformat(a), date.fromisoformat(b)
    except ValueError:
        return []
    if end < start or (end - start).days > 3:
        return []
    return [(start + timedelta(n)).isoformat() for n in range((end - start).days + 1)]


__all__ = ["DEFAULTS", "FIELDS", "KEY_FIELDS", "NUMERIC", "Columns", "fields_columns",
           "patterns_for", "raw_row", "row_getter", "to_fields",
           "skippable", "tag_tuple", "text_value"]
