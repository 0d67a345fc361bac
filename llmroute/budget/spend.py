"""Fast spend totals: an incremental index of the ledger (SPEC §6 "checks stay fast").

The ledger stays the single source of truth. The index is a small JSON object (kept inside the
budget state document, see `guard.py`) holding:

* which ledger it describes — device, inode, the byte `offset` read up to — and the budget time
  zone its days are in;
* per local day, from `from` (the first day any current window needs) on: dollars (as integer
  picodollars, so a sum does not depend on the order of its terms), metered tokens, A/B samples,
  and the same dollars/tokens per provider. Days, not records: a window total is a sum over at
  most 31 small buckets, whatever the ledger's length;
* `ab_recent`: [ab_id, local day] of each A/B sample counted, the day being the earliest of its
  lines, so a sample spread over several lines counts once wherever they are in the ledger;
* `pending`: ledger lines read while the reservation of the call that wrote them may still be
  open (see below).

Each check stats the ledger and reads only the bytes appended since `offset`, through the
ledger reader shared with `report` (`ledger.reader`), so a million-record ledger costs what an
empty one does. Nothing assumes the lines are in time order (merged ledgers, clock changes, late
appends): every line counts in its own day, a line before `from` is outside every window the
index serves, and a rebuild reads every line of the ledger (a block whose every stamp is older
than `from` is passed over on that evidence, never on a binary search). The index is rebuilt
from byte 0 when it is missing or unreadable, the ledger shrank or was replaced (other inode),
the time zone changed, or a window now needs a day older than `from`.

Counting each call exactly once. The engine appends a call's ledger line and *then* settles its
reservation; another process may read that line in between. Counting the line and the still-open
reservation would count the call twice. So a line whose target still has an open reservation
(made no later than the line) is held as `pending` — not counted — while that reservation stands
for it. `settle` (same locked section, see guard.py) moves the line matching its own target,
cost and tokens from `pending` into the totals as it removes the reservation; any pending line
left over with no reservation to stand for it is counted (`reconcile`). All of this happens
under the budget store's exclusive lock, in one atomic document write.

What a record counts is decided in one place, `charged`: answered calls of every kind, at their
cost and tokens; failed attempts and cache hits count nothing. Metered tokens: tokens of calls
whose price source is `free` (local models, Ollama, free tiers) are not counted against token
limits; free targets are exempt from every limit so that `on_exhaust: free` keeps them usable.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Callable

from ..ledger.reader import DayMapper, ReadStats, SpendCall, read_calls
from .windows import Window, Zone

INDEX_VERSION = 4  # 3: cache hits count nothing (`charged`); 4: billed failures count
# Failures whose answer the provider gave, and billed, though it could not be used.
BILLED_FAILURES = frozenset({"empty", "invalid_output"})
PICO = 1e12  # dollars are counted in integer picodollars

Warn = Callable[[str], None]
OpenFor = Callable[[str, float], int]  # (target id, line epoch) -> open reservations made by then


@dataclass
class Totals:
    """Spend within one window: dollars, metered tokens, A/B samples, per provider."""

    usd: float = 0.0
    tokens: int = 0
    ab: int = 0
    providers: dict[str, list[float]] = field(default_factory=dict)  # name -> [usd, tokens]

    def provider(self, name: str) -> tuple[float, int]:
        usd, tokens = self.providers.get(name, (0.0, 0))
        return usd, int(tokens)


def empty_index(zone: Zone, from_day: str) -> dict:
    return {"v": INDEX_VERSION, "tz": zone.name, "dev": None, "ino": None, "offset": 0,
            "from": from_day, "days": {}, "pending": [], "ab_recent": []}


def catch_up(index: dict | None, ledger: Path, zone: Zone, from_day: str, open_for: OpenFor,
             warn: Warn | None = None) -> tuple[dict, str | None]:
    """Bring `index` up to the ledger's end; returns the (possibly new) index and why it was
    rebuilt, or None when it was only extended."""
    try:
        stat = os.stat(ledger)
    except FileNotFoundError:
        stat = None
    reason = _stale(index, stat, zone, from_day)
    if reason is not None:
        index = empty_index(zone, from_day)
    if stat is None:
        return index, reason
    index["dev"], index["ino"] = stat.st_dev, stat.st_ino
    if stat.st_size != index["offset"]:
        _fold_from(index, ledger, open_for, zone, warn)
    _prune(index, from_day)
    return index, reason


def _stale(index: dict | None, stat: os.stat_result | None, zone: Zone, from_day: str) -> str | None:
    if not isinstance(index, dict) or index.get("v") != INDEX_VERSION:
        return "no index"
    if index.get("tz") != zone.name:
        return "time zone changed"
    if from_day < index.get("from", ""):
        return "a window needs older days"
    if stat is None:
        return "ledger missing" if index.get("offset") else None
    if index.get("ino") is not None and (index["ino"], index["dev"]) != (stat.st_ino, stat.st_dev):
        return "ledger replaced"
    if stat.st_size < index.get("offset", 0):
        return "ledger shrank"
    return None


def _fold_from(index: dict, ledger: Path, open_for: OpenFor, zone: Zone, warn: Warn | None) -> None:
    from_day = index["from"]
    days, epochs = DayMapper(zone.tz), _Epochs()
    first_hour = datetime.fromtimestamp(zone.midnight(date.fromisoformat(from_day)), timezone.utc)
    stats = ReadStats()
    firsts = _ab_firsts(index)
    for _, calls in read_calls(ledger, index["offset"], None, stats,
                               before_hour=first_hour.strftime("%Y-%m-%dT%H"), kind=SpendCall):
        for call in calls:
            line = _spend_line(call, days, epochs)
            if line is None or line["d"] < from_day:
                continue
            waiting = sum(1 for p in index["pending"] if p["target"] == line["target"])
            if open_for(line["target"], line["ts"]) > waiting:
                index["pending"].append(line)
            else:
                add_line(index, line, firsts)
    index["offset"] = stats.end_offset
    stats.warn_bad(ledger.name, warn)


def charged(call: SpendCall) -> tuple[int, int, int]:
    """What one ledger record counts against the limits: (picodollars, metered tokens, tokens).

    The one rule of what counts, behind the guard, `llmroute budget` and the report's budget
    lines (which read these totals):

    * an answered call of any kind counts — ask, batch, compare, abtest, judge, `health --deep`,
      transcribe: each was a paid provider call, budgeted before it was sent — at its recorded
      cost and tokens (the provider's usage, or the estimate when it reported none);
    * a failed attempt counts what it was billed: nothing, unless the provider answered but the
      answer could not be used (`empty`, `invalid_output`), which is recorded with its cost and
      tokens and settled like an answer;
    * a cache hit counts nothing: no provider was called;
    * the tokens of a free target (price source `free`) count against no token limit.
    """
    if call.cached or (call.status != "ok" and call.error not in BILLED_FAILURES):
        return 0, 0, 0
    tokens = (call.input_tokens or 0) + (call.output_tokens or 0)
    return (round((call.cost_usd or 0.0) * PICO), 0 if call.price_source == "free" else tokens,
            tokens)


def _spend_line(call: SpendCall, days: DayMapper, epochs: "_Epochs") -> dict | None:
    """The part of a ledger record that spend totals need, or None if it adds nothing."""
    cost, metered, raw_tokens = charged(call)
    if cost == 0 and metered == 0 and not call.ab_id:
        return None
    day, epoch = days(call.ts), epochs(call.ts)
    if day is None or epoch is None:
        return None
    return {"ts": epoch, "d": day, "target": str(call.target), "p": str(call.provider),
            "u": cost, "t": metered, "k": raw_tokens, "ab": call.ab_id or None}


class _Epochs:
    """Epoch seconds of a ledger stamp (`...T12:00:00.123Z`), each minute worked out once."""

    def __init__(self) -> None:
        self.minutes: dict[str, float | None] = {}

    def __call__(self, ts: str) -> float | None:
        if len(ts) < 20 or not ts.endswith("Z"):
            return _parse(ts)
        if ts[:16] not in self.minutes:
            if len(self.minutes) > 100_000:
                self.minutes.clear()
            self.minutes[ts[:16]] = _parse(ts[:16])
        minute = self.minutes[ts[:16]]
        try:
            return None if minute is None else minute + float(ts[17:-1])
        except ValueError:
            return _parse(ts)


def _parse(text: str) -> float | None:
    try:
        moment = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).timestamp()


def add_line(index: dict, line: dict, firsts: dict[str, list] | None = None) -> None:
    """Count one spend line in its day's bucket (an A/B sample in the day of its first line;
    `firsts` is `_ab_firsts(index)`, kept by a caller that adds many lines)."""
    bucket = _bucket(index, line["d"])
    bucket["u"] += line["u"]
    bucket["t"] += line["t"]
    if line["u"] or line["t"]:
        per = bucket["p"].setdefault(line["p"], [0, 0])
        per[0] += line["u"]
        per[1] += line["t"]
    ab_id = line.get("ab")
    if ab_id:
        firsts = _ab_firsts(index) if firsts is None else firsts
        seen = firsts.get(ab_id)
        if seen is None:
            seen = firsts[ab_id] = [ab_id, line["d"]]
            index["ab_recent"].append(seen)
        elif line["d"] < seen[1]:
            _bucket(index, seen[1])["ab"] -= 1
            seen[1] = line["d"]
        else:
            return
        bucket["ab"] += 1


def _ab_firsts(index: dict) -> dict[str, list]:
    """ab_id -> its [ab_id, day] pair in `ab_recent` (the same list, changed in place)."""
    return {pair[0]: pair for pair in index["ab_recent"]}


def _bucket(index: dict, day: str) -> dict:
    return index["days"].setdefault(day, {"u": 0, "t": 0, "ab": 0, "p": {}})


def settle_line(index: dict, target: str, cost: float, tokens: int) -> bool:
    """Count the pending line of a call that settles as (`target`, `cost`, `tokens`).

    Lines of one target with equal cost and tokens are interchangeable for the totals, so
    taking the first match is exact. False when no such line is pending (it was already
    counted, or the ledger write never happened)."""
    pico = round(cost * PICO)
    for position, line in enumerate(index["pending"]):
        if line["target"] == target and line["u"] == pico and line["k"] == tokens:
            add_line(index, index["pending"].pop(position))
            return True
    return False


def reconcile(index: dict, open_counts: dict[str, int]) -> None:
    """Count pending lines that no open reservation stands for any more (oldest first)."""
    kept: list[dict] = []
    seen: dict[str, int] = {}
    firsts = _ab_firsts(index)
    for line in index["pending"]:
        target = line["target"]
        seen[target] = seen.get(target, 0) + 1
        if seen[target] > open_counts.get(target, 0):
            add_line(index, line, firsts)
        else:
            kept.append(line)
    index["pending"] = kept


def _prune(index: dict, from_day: str) -> None:
    """Drop days no current window needs; `from` only moves forward."""
    if from_day > index["from"]:
        index["from"] = from_day
        index["days"] = {d: b for d, b in index["days"].items() if d >= from_day}
        index["ab_recent"] = [pair for pair in index["ab_recent"] if pair[1] >= from_day]


def totals(index: dict, window: Window) -> Totals:
    """Sum the day buckets inside `window`."""
    return totals_by_window(index, {window.kind: window})[window.kind]


def totals_by_window(index: dict, windows: dict[str, Window]) -> dict[str, Totals]:
    """Totals of several windows in one pass over the day buckets."""
    sums = {kind: [0, 0, 0, {}] for kind in windows}
    for day, bucket in index["days"].items():
        for kind, window in windows.items():
            if window.contains_day(day):
                acc = sums[kind]
                acc[0] += bucket["u"]
                acc[1] += int(bucket["t"])
                acc[2] += int(bucket.get("ab", 0))
                for name, (p_usd, p_tokens) in bucket["p"].items():
                    per = acc[3].setdefault(name, [0, 0])
                    per[0] += p_usd
                    per[1] += int(p_tokens)
    return {kind: Totals(usd / PICO, tokens, ab, {name: [u / PICO, t] for name, (u, t) in per.items()})
            for kind, (usd, tokens, ab, per) in sums.items()}
