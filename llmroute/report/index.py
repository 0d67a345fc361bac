"""The report's incremental aggregates cache (`<data>/state/report-index.pickle`).

A million-record ledger takes seconds to fold; a repeat `llmroute report` should not pay that
again. The index stores the per-day aggregates (`Aggregates`) of the ledger's first `offset`
bytes, together with what identifies that ledger: device, inode, the offset reached and a hash of
the first bytes. On the next run only the bytes appended since `offset` are read and merged.

It is a pickle of the `Aggregates` objects themselves: on a million-record ledger writing it takes
~20 ms and reading it ~50 ms, against ~180 and ~160 ms for JSON (mostly float formatting and
rebuilding the objects). Loading goes through `_IndexUnpickler`, which resolves no name but the
three aggregate classes, so a tampered file cannot make loading run code; it simply fails to load
and is rebuilt.

It is thrown away and rebuilt from byte 0 when the ledger shrank, was replaced (other inode or
first bytes), the report's time zone changed (days are local days), the index does not reach back
to the first day now needed, or the file is unreadable/corrupt. It is written to a temporary file
and `os.replace`d, so a concurrent reader sees the old or the new index, never half of one; two
concurrent writers just race to write equally valid files.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..ledger import parse_ts, seek_time
from .aggregate import Aggregates, DayMapper, ScanResult, Warn, file_identity, scan

# Bump whenever Aggregates, DayAgg or LatencyDigest change shape: an index pickled from the old
# classes is then thrown away ("index format ... changed") instead of half-loading.
INDEX_VERSION = 2
HEAD_BYTES = 4096


COLD_SEEK_SLACK_S = 86400.0  # how far out of time order a ledger line may be and still count


@dataclass
class IndexOutcome:
    """How the aggregates were obtained: `rebuilt` when the index could not be used."""

    aggregates: Aggregates
    scan: ScanResult
    rebuilt: bool
    reason: str


def load_aggregates(ledger: Path, index_path: Path | None, *, from_day: str, from_ts: str,
                    tz_key: str, days: DayMapper, warn: Warn) -> IndexOutcome:
    """Aggregates of every ledger record of local day `from_day` (whose UTC start is `from_ts`)
    or later, using and refreshing the index at `index_path` when given."""
    if not ledger.exists():
        return IndexOutcome(Aggregates(from_day, from_ts), ScanResult(), True, "no ledger")
    dev, ino, size = file_identity(ledger)
    cached, reason = _usable(index_path, ledger, dev, ino, size, from_day, tz_key)
    if cached is not None:
        aggs, start = cached
    else:
        aggs, start = Aggregates(from_day, from_ts), _cold_start(ledger, size, from_ts)
    # Appended records are kept from the index's own first day on, so it stays complete.
    result = scan(ledger, aggs, start_offset=start, days=days, warn=warn)
    if index_path is not None and (cached is None or result.end_offset != start):
        _write(index_path, ledger, aggs, dev, ino, result.end_offset, tz_key, warn)
    return IndexOutcome(aggs, result, cached is None, reason)


def _cold_start(ledger: Path, size: int, from_ts: str) -> int:
    """Where a build from scratch starts reading: a binary search on `ts` skips the part of the
    ledger older than the first day needed (with a day of slack for lines written out of order);
    the skipped lines could only have been skipped again by the per-chunk time check."""
    try:
        epoch = parse_ts(from_ts.replace("Z", "+00:00"))
    except ValueError:
        return 0
    return seek_time(ledger, size, epoch - COLD_SEEK_SLACK_S)


def _usable(index_path: Path | None, ledger: Path, dev: int, ino: int, size: int, from_day: str,
            tz_key: str) -> tuple[tuple[Aggregates, int] | None, str]:
    if index_path is None:
        return None, "no index"
    try:
        data = _IndexUnpickler(io.BytesIO(index_path.read_bytes())).load()
        meta = data["ledger"]
        offset = int(meta["offset"])
        if data.get("version") != INDEX_VERSION or data.get("tz") != tz_key:
            return None, "index format or time zone changed"
        if (meta["dev"], meta["ino"]) != (dev, ino) or offset > size:
            return None, "ledger replaced or truncated"
        if meta["head"] != _head_hash(ledger, offset):
            return None, "ledger replaced"
        aggs = data["aggregates"]
        if not isinstance(aggs, Aggregates):
            raise TypeError("not aggregates")
    except FileNotFoundError:
        return None, "no index yet"
    except (OSError, EOFError, pickle.UnpicklingError, ValueError, KeyError, TypeError,
            IndexError, AttributeError):
        return None, "index unreadable"
    if aggs.from_day > from_day:
        return None, "index starts after the window"
    return (aggs, offset), "index used"


def _head_hash(ledger: Path, offset: int) -> str:
    with open(ledger, "rb") as fh:
        return hashlib.sha256(fh.read(min(offset, HEAD_BYTES))).hexdigest()


def _write(index_path: Path, ledger: Path, aggs: Aggregates, dev: int, ino: int, offset: int,
           tz_key: str, warn: Warn) -> None:
    body = {
        "version": INDEX_VERSION,
        "tz": tz_key,
        "ledger": {"dev": dev, "ino": ino, "offset": offset, "head": _head_hash(ledger, offset)},
        "aggregates": aggs,
    }
    try:
        index_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".report-index.", dir=index_path.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(pickle.dumps(body, protocol=pickle.HIGHEST_PROTOCOL))
            os.chmod(tmp, 0o600)
            os.replace(tmp, index_path)
        except BaseException:
            os.unlink(tmp)
            raise
    except OSError as exc:
        warn(f"could not save the report index {index_path}: {exc.strerror or exc}")


class _IndexUnpickler(pickle.Unpickler):
    """Rebuilds only plain data and the aggregate classes: any other name in the file (what a
    pickle would need to run code) makes loading fail."""

    _ALLOWED = frozenset({"Aggregates", "DayAgg", "LatencyDigest"})

    def find_class(self, module: str, name: str):
        if module == Aggregates.__module__ and name in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"{module}.{name} has no place in a report index")
