"""The report's incremental index (`<data>/state/report-index.pickle`).

It stores the `Aggregates` of the ledger's first `offset` bytes (every record of local day
`from_day` or later, wherever its line is) with what identifies that ledger: device, inode, the
offset reached and a hash of the first bytes. Days more than `KEEP_DAYS` before the first one a
report needs are dropped, so it stays as small as the windows it serves. The next run folds only the bytes appended since
`offset`. Nothing here assumes time order: an appended line lands in its own day, a line older
than `from_day` is outside every window this index can answer (a report that needs older days
rebuilds it), and a line of a request seen before moves that request's counts (`fold.py`).

A restricted pickle of the aggregates: fast to write and read on a million records, and loading
resolves no name but the aggregate classes, so a tampered file fails to load (and is rebuilt)
instead of running code. It is thrown away and rebuilt from byte 0 when the ledger shrank or was
replaced (other inode or first bytes), the time zone changed, a window needs days before
`from_day`, or the file is unreadable. Written to a temporary file and `os.replace`d, so a
concurrent reader sees the old or the new index, never half of one.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import tempfile
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from pathlib import Path

from ..ledger.reader import DayMapper, ReadStats, Warn
from .fold import Aggregates, fold_file, safe_loads

# Bump whenever the pickled classes change shape: an older index is then rebuilt.
INDEX_VERSION = 5  # 5: cached input tokens (fold.TCACHED)
HEAD_BYTES = 4096
KEEP_DAYS = 62  # days kept before the first one a report needs (a month and a week fit)


@dataclass
class IndexOutcome:
    """How the aggregates were obtained: `rebuilt` when the index could not be used."""

    aggregates: Aggregates
    scan: ReadStats
    rebuilt: bool
    reason: str


def midnight_utc(day: date, tz: tzinfo | None) -> str:
    """Local midnight starting `day`, as the ledger's UTC ISO format."""
    local = datetime.combine(day, time(0), tzinfo=tz) if tz is not None else datetime.combine(day, time(0))
    return local.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def tz_key(tz: tzinfo | None) -> str:
    if tz is not None:
        return str(tz)
    import time as _time

    return "local:" + "/".join(_time.tzname) + f":{_time.timezone}"


def load_aggregates(ledger: Path, index_path: Path | None, *, from_day: str, tz: tzinfo | None,
                    warn: Warn, workers: int | None = None) -> IndexOutcome:
    """Aggregates of every ledger record of local day `from_day` or later, using and refreshing
    the index at `index_path` when given."""
    if not ledger.exists():
        return IndexOutcome(Aggregates(from_day), ReadStats(), True, "no ledger")
    st = os.stat(ledger)
    cached, reason = _usable(index_path, ledger, st, from_day, tz_key(tz))
    aggs, start = cached if cached is not None else (Aggregates(from_day), 0)
    keep = (date.fromisoformat(from_day) - timedelta(KEEP_DAYS)).isoformat()
    pruned = aggs.from_day < keep
    if pruned:  # the index stays as small as the windows it serves
        aggs.drop_before(keep)
    before = midnight_utc(date.fromisoformat(aggs.from_day), tz)[:13]
    stats = fold_file(ledger, aggs, start=start, days=DayMapper(tz), before_hour=before,
                      workers=workers)
    stats.warn_bad(ledger.name, warn)
    if index_path is not None and (cached is None or pruned or stats.end_offset != start):
        _write(index_path, ledger, aggs, st, stats.end_offset, tz_key(tz), warn)
    return IndexOutcome(aggs, stats, cached is None, reason)


def _usable(index_path: Path | None, ledger: Path, st: os.stat_result, from_day: str,
            tz: str) -> tuple[tuple[Aggregates, int] | None, str]:
    if index_path is None:
        return None, "no index"
    try:
        data = safe_loads(index_path.read_bytes())
        meta, aggs = data["ledger"], data["aggregates"]
        if data.get("version") != INDEX_VERSION or data.get("tz") != tz:
            return None, "index format or time zone changed"
        if (meta["dev"], meta["ino"]) != (st.st_dev, st.st_ino) or meta["offset"] > st.st_size:
            return None, "ledger replaced or truncated"
        if meta["head"] != _head_hash(ledger, meta["offset"]):
            return None, "ledger replaced"
        if not isinstance(aggs, Aggregates):
            raise TypeError("not aggregates")
    except FileNotFoundError:
        return None, "no index yet"
    except (OSError, EOFError, pickle.UnpicklingError, ValueError, KeyError, TypeError,
            IndexError, AttributeError):
        return None, "index unreadable"
    if aggs.from_day > from_day:
        return None, "index starts after the window"
    return (aggs, meta["offset"]), "index used"


def _head_hash(ledger: Path, offset: int) -> str:
    with open(ledger, "rb") as fh:
        return hashlib.sha256(fh.read(min(offset, HEAD_BYTES))).hexdigest()


def _write(index_path: Path, ledger: Path, aggs: Aggregates, st: os.stat_result, offset: int,
           tz: str, warn: Warn) -> None:
    body = {"version": INDEX_VERSION, "tz": tz, "aggregates": aggs,
            "ledger": {"dev": st.st_dev, "ino": st.st_ino, "offset": offset,
                       "head": _head_hash(ledger, offset)}}
    try:
        index_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".report-index.", dir=index_path.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                pickle.dump(body, fh, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, index_path)
        except BaseException:
            os.unlink(tmp)
            raise
    except OSError as exc:
        warn(f"could not save the report index {index_path}: {exc.strerror or exc}")
