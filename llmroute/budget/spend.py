"""Fast spend totals: an incremental index of the ledger (SPEC §6 "checks stay fast").

The ledger stays the single source of truth. The index is a small JSON object (kept inside the
budget state document, see `guard.py`) holding:

* which ledger it describes — device, inode, the byte `offset` read up to — and the budget time
  zone its days are in;
* per local day, from `from` (the first day any current window needs) on: dollars, metered
  tokens, A/B samples, and the same dollars/tokens per provider. Days, not records: a window
  total is a sum over at most 31 small buckets, whatever the ledger's length;
* `pending`: ledger lines read while the reservation of the call that wrote them may still be
  open (see below).

Each check stats the ledger and reads only the bytes appended since `offset`
(`ledger.read_from`), so a million-record ledger costs what an empty one does. The index is
rebuilt from byte 0 when it is missing or unreadable, the ledger shrank or was replaced (other
inode), the time zone changed, or a window now needs a day older than `from`.

Counting each call exactly once. The engine appends a call's ledger line and *then* settles its
reservation; another process may read that line in between. Counting the line and the still-open
reservation would count the call twice. So a line whose target still has an open reservation
(made no later than the line) is held as `pending` — not counted — while that reservation stands
for it. `settle` (same locked section, see guard.py) moves the line matching its own target,
cost and tokens from `pending` into the totals as it removes the reservation; any pending line
left over with no reservation to stand for it is counted (`reconcile`). All of this happens
under the budget store's exclusive lock, in one atomic document write.

Metered tokens: tokens of calls whose price source is `free` (local models, Ollama, free tiers)
are not counted against token limits; free targets are exempt from every limit so that
`on_exhaust: free` keeps them usable.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from ..ledger import read_from, seek_time
from .windows import Window, Zone

INDEX_VERSION = 1
SEEK_MIN_BYTES = 1 << 16  # below this a rebuild just reads the whole ledger
SEEK_SLACK_S = 86400.0  # how far out of time order a ledger line may be and still be found
AB_RECENT = 64  # ab_ids remembered to count each A/B sample once, though it spans several lines

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
    if reason is not None and stat.st_size > SEEK_MIN_BYTES:
        index["offset"] = seek_day(ledger, stat.st_size, zone.midnight(_date(from_day)) - SEEK_SLACK_S)
    if stat.st_size != index["offset"]:
        _fold_from(index, ledger, open_for, zone, warn)
    _prune(index, from_day)
    return index, reason


def seek_day(ledger: Path, size: int, epoch: float) -> int:
    """The offset of a line start at or before the first line stamped `epoch` or later
    (`ledger.seek_time`: a binary search on the lines' `ts`, so a rebuild of the current windows
    skips the older part of a long ledger without reading it)."""
    return seek_time(ledger, size, epoch, min_bytes=SEEK_MIN_BYTES)


def _date(day: str):
    from datetime import date

    return date.fromisoformat(day)


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
    days_of: dict[str, str] = {}  # "YYYY-MM-DDTHH:MM" -> local day, per catch-up
    from_day = index["from"]
    for end, record in read_from(ledger, index["offset"], warn=warn):
        index["offset"] = end
        line = _spend_line(record, zone, days_of, end)
        if line is None or line["d"] < from_day:
            continue
        waiting = sum(1 for p in index["pending"] if p["target"] == line["target"])
        if open_for(line["target"], line["ts"]) > waiting:
            index["pending"].append(line)
        else:
            add_line(index, line)


def _spend_line(record: dict, zone: Zone, days_of: dict[str, str], offset: int) -> dict | None:
    """The part of a ledger record that spend totals need, or None if it adds nothing."""
    ts = record.get("ts")
    if not isinstance(ts, str):
        return None
    day = days_of.get(ts[:16])
    try:
        epoch = _epoch(ts)
    except ValueError:
        return None
    if day is None:
        day = days_of[ts[:16]] = zone.day_key(epoch)
    ab_id = record.get("ab_id")
    ok = record.get("status") == "ok"
    cost = _number(record.get("cost_usd")) if ok else 0.0
    raw_tokens = int(_number(record.get("input_tokens")) + _number(record.get("output_tokens"))) if ok else 0
    metered = 0 if record.get("price_source") == "free" else raw_tokens
    if cost == 0 and metered == 0 and not ab_id:
        return None
    return {"o": offset, "ts": epoch, "d": day, "target": str(record.get("target")),
            "p": str(record.get("provider")), "u": cost, "t": metered, "k": raw_tokens,
            "ab": str(ab_id) if ab_id else None}


def _epoch(ts: str) -> float:
    if ts.endswith("Z"):
        ts = ts[:-1] + "+00:00"
    moment = datetime.fromisoformat(ts)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def _number(value) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0.0


def add_line(index: dict, line: dict) -> None:
    """Count one spend line in its day's bucket."""
    bucket = index["days"].setdefault(line["d"], {"u": 0.0, "t": 0, "ab": 0, "p": {}})
    bucket["u"] += line["u"]
    bucket["t"] += line["t"]
    if line["u"] or line["t"]:
        per = bucket["p"].setdefault(line["p"], [0.0, 0])
        per[0] += line["u"]
        per[1] += line["t"]
    ab_id = line.get("ab")
    if ab_id and ab_id not in index["ab_recent"]:
        bucket["ab"] += 1
        index["ab_recent"] = (index["ab_recent"] + [ab_id])[-AB_RECENT:]


def settle_line(index: dict, target: str, cost: float, tokens: int) -> bool:
    """Count the pending line of a call that settles as (`target`, `cost`, `tokens`).

    Lines of one target with equal cost and tokens are interchangeable for the totals, so
    taking the first match is exact. False when no such line is pending (it was already
    counted, or the ledger write never happened)."""
    for position, line in enumerate(index["pending"]):
        if line["target"] == target and line["u"] == cost and line["k"] == tokens:
            add_line(index, index["pending"].pop(position))
            return True
    return False


def reconcile(index: dict, open_counts: dict[str, int]) -> None:
    """Count pending lines that no open reservation stands for any more (oldest first)."""
    kept: list[dict] = []
    seen: dict[str, int] = {}
    for line in index["pending"]:
        target = line["target"]
        seen[target] = seen.get(target, 0) + 1
        if seen[target] > open_counts.get(target, 0):
            add_line(index, line)
        else:
            kept.append(line)
    index["pending"] = kept


def _prune(index: dict, from_day: str) -> None:
    """Drop days no current window needs; `from` only moves forward."""
    if from_day > index["from"]:
        index["from"] = from_day
        index["days"] = {d: b for d, b in index["days"].items() if d >= from_day}


def totals(index: dict, window: Window) -> Totals:
    """Sum the day buckets inside `window`."""
    return totals_by_window(index, {window.kind: window})[window.kind]


def totals_by_window(index: dict, windows: dict[str, Window]) -> dict[str, Totals]:
    """Totals of several windows in one pass over the day buckets."""
    result = {kind: Totals() for kind in windows}
    for day, bucket in index["days"].items():
        inside = [result[kind] for kind, window in windows.items() if window.contains_day(day)]
        if not inside:
            continue
        usd, tokens, ab = bucket["u"], int(bucket["t"]), int(bucket.get("ab", 0))
        for total in inside:
            total.usd += usd
            total.tokens += tokens
            total.ab += ab
            for name, (p_usd, p_tokens) in bucket["p"].items():
                per = total.providers.setdefault(name, [0.0, 0])
                per[0] += p_usd
                per[1] += int(p_tokens)
    return result
