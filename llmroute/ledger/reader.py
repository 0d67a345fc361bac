"""The one reader behind every ledger total (`report`, `budget`): typed decoding of the fields
they need, tolerant of bad lines, and no assumption about the order of lines (SPEC §5).

* Lines are decoded by `msgspec` straight into `Call`, a struct of the fields a total needs;
  other fields are skipped, missing optional ones take their defaults. A block of complete lines
  is decoded at once (`decode_lines`); when that fails, its lines are decoded one by one and
  those that fail (torn, not JSON, not an object, a field of the wrong type) are counted and
  skipped. Decoding is linear, so a torn line of any length costs what reading it costs.
* Nothing relies on lines being in time order (two machines' ledgers merged, a clock change, a
  long call appended late): every line is looked at. A block is only passed over unread when
  each of its lines is in the shape llmroute writes (`{"v":1,"ts":"...`) and every one of those
  stamps lies before the first UTC hour a caller needs; that check reads each line's own stamp
  (a fixed prefix, no backtracking) and costs a fraction of decoding.
* `DayMapper` turns a UTC stamp into its local day in the caller's zone, memoised per UTC hour
  (minute by minute only in hours that local midnight splits, as in UTC+5:30).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone, tzinfo
from pathlib import Path
from typing import Annotated

import msgspec

CHUNK_BYTES = 8 << 20
Warn = Callable[[str], None]


class Call(msgspec.Struct, gc=False):
    """What a report reads of one ledger record (SPEC §5); other fields are ignored. A latency
    or cost outside any real range makes the line invalid, like a wrong type."""

    ts: str
    request_id: str | None = None
    kind: str | None = None
    target: str | None = None
    provider: str | None = None
    model: str | None = None
    route: str | None = None
    attempt: int = 1
    status: str | None = None
    latency_ms: (Annotated[int, msgspec.Meta(ge=0, le=10**12)]
                 | Annotated[float, msgspec.Meta(ge=0, le=1e12)] | None) = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cached_input_tokens: int | None = None
    cost_usd: Annotated[float, msgspec.Meta(ge=-1e9, le=1e9)] | None = None
    cached: bool | None = None
    tags: tuple[str, ...] | None = None


class SpendCall(Call, gc=False):
    """What the budget reads: a `Call`, how it was priced, why it failed (a billed failure
    counts), and its A/B sample. (Fields the report does not need stay out of `Call`, which it
    decodes by the million.)"""

    price_source: str | None = None
    ab_id: str | None = None
    error: str | None = None


class LogCall(Call, gc=False):
    """What `llmroute logs` reads: a `Call`, why it failed, its conversation, and its text when
    `ledger.log_prompts` stored it (kept out of `Call`, which the report decodes by the million)."""

    error: str | None = None
    conversation_id: str | None = None
    prompt: str | None = None
    answer: str | None = None


_DECODERS = {kind: msgspec.json.Decoder(kind) for kind in (Call, SpendCall, LogCall)}
# A line as llmroute writes it starts with its stamp: `_PREFIX` then the UTC hour.
_PREFIX = b'{"v":1,"ts":"'
_HOUR = rb"(\d{4}-\d\d-\d\dT\d\d)"
_FIRST_HOUR = re.compile(re.escape(_PREFIX) + _HOUR)
_NEXT_HOURS = re.compile(rb"\n" + re.escape(_PREFIX) + _HOUR)


@dataclass
class ReadStats:
    """What a read did: the byte range, records decoded, bad lines (and where the first was),
    blocks passed over because every line was older than needed."""

    start_offset: int = 0
    end_offset: int = 0
    bytes_read: int = 0
    records: int = 0
    bad_lines: int = 0
    first_bad: int | None = None
    chunks_skipped: int = 0

    def bad(self, offset: int, count: int = 1) -> None:
        self.bad_lines += count
        if self.first_bad is None or offset < self.first_bad:
            self.first_bad = offset

    def add(self, other: "ReadStats") -> None:
        """Take in the figures of a read of another part of the same file."""
        self.start_offset = min(self.start_offset, other.start_offset)
        self.end_offset = max(self.end_offset, other.end_offset)
        self.bytes_read += other.bytes_read
        self.records += other.records
        self.chunks_skipped += other.chunks_skipped
        if other.bad_lines:
            self.bad(other.first_bad or 0, other.bad_lines)

    def warn_bad(self, name: str, warn: Warn | None) -> None:
        """One warning for every bad line of this read."""
        if self.bad_lines and warn is not None:
            plural = "s" if self.bad_lines > 1 else ""
            warn(f"{name}: skipped {self.bad_lines} invalid line{plural} "
                 f"(the first at or after byte {self.first_bad})")


def read_calls(path: Path, start: int, end: int | None, stats: ReadStats, *,
               before_hour: str = "", kind: type[Call] = Call) -> Iterator[tuple[int, list]]:
    """(offset, calls) for each block of complete lines from `start` to `end` (None: the end of
    the file; otherwise a line boundary). A last line without its newline is left for later:
    `stats.end_offset` stops before it. Blocks whose every stamp is before `before_hour`
    (`YYYY-MM-DDTHH`, UTC) are passed over (see the module docstring). `kind` is the struct
    each line is decoded into."""
    stats.start_offset = stats.end_offset = start
    for offset, block, cut in _blocks(path, start, end, stats):
        if before_hour and _all_before(block, cut, before_hour.encode()):
            stats.chunks_skipped += 1
        else:  # a view, not a copy of the block's complete lines
            yield offset, decode_block(memoryview(block)[:cut], offset, stats, kind)


def _blocks(path: Path, offset: int, end: int | None, stats: ReadStats) -> Iterator[tuple[int, bytes, int]]:
    """(offset, block, length of its complete lines) from `offset` to `end`."""
    with open(path, "rb") as fh:
        while end is None or offset < end:
            want = CHUNK_BYTES if end is None else min(CHUNK_BYTES, end - offset)
            fh.seek(offset)
            block = fh.read(want)
            cut = block.rfind(b"\n") + 1
            if not cut:
                if len(block) < want:  # nothing, or a last line still being written
                    return
                block += fh.readline()  # one line longer than a block
                if not block.endswith(b"\n"):
                    return
                cut = len(block)
            stats.bytes_read += cut
            yield offset, block, cut
            offset += cut
            stats.end_offset = offset


def _all_before(block: bytes, cut: int, hour: bytes) -> bool:
    """Whether every line of `block[:cut]` starts with a stamp, all of them before `hour`. The
    first and the last line are looked at first: a block of recent lines is rejected at once."""
    first = _FIRST_HOUR.match(block)
    last = _FIRST_HOUR.match(block, block.rfind(b"\n", 0, cut - 1) + 1)
    if first is None or last is None or max(first.group(1), last.group(1)) >= hour:
        return False
    stamps = _NEXT_HOURS.findall(block, 0, cut)
    return len(stamps) == block.count(b"\n", 0, cut) - 1 and max(stamps, default=b"") < hour


def decode_block(data: bytes | memoryview, offset: int, stats: ReadStats,
                 kind: type[Call] = Call) -> list:
    """The calls of a block of complete lines; bad lines are counted in `stats` and skipped."""
    decoder = _DECODERS[kind]
    try:
        calls = decoder.decode_lines(data)
    except msgspec.DecodeError:
        calls = []
        for line in bytes(data).split(b"\n"):
            if line.strip():
                try:
                    calls.append(decoder.decode(line))
                except msgspec.DecodeError:
                    stats.bad(offset)
            offset += len(line) + 1
    stats.records += len(calls)
    return calls


def line_starts(path: Path, start: int, end: int, parts: int) -> list[int]:
    """`parts` + 1 line boundaries splitting `start`..`end` into about equal byte ranges."""
    bounds = [start]
    with open(path, "rb") as fh:
        for n in range(1, parts):
            fh.seek(max(bounds[-1], start + (end - start) * n // parts))
            fh.readline()
            bounds.append(min(fh.tell(), end))
    return [*bounds, end]


class DayMapper:
    """Local day (`YYYY-MM-DD`) of a UTC ledger stamp in zone `tz` (None: the machine's zone);
    None when the stamp is not one. `hours` maps a UTC hour (`ts[:13]`) to its day, or to ""
    when local midnight falls inside it: a caller may look there first and call only on a miss."""

    def __init__(self, tz: tzinfo | None):
        self.tz = tz
        self.hours: dict[str, str] = {}
        self.minutes: dict[str, str | None] = {}

    def __call__(self, ts: str) -> str | None:
        hour = ts[:13]
        day = self.hours.get(hour)
        if day is None:
            if len(self.hours) > 100_000:  # only garbage stamps make it this large
                self.hours.clear()
            first, last = self._local(hour + ":00"), self._local(hour + ":59")
            whole = first is not None and last is not None and first.date() == last.date()
            day = self.hours[hour] = first.date().isoformat() if whole else ""
        if day:
            return day
        minute = ts[:16]
        if minute not in self.minutes:
            if len(self.minutes) > 100_000:
                self.minutes.clear()
            local = self._local(minute) if len(minute) == 16 else None
            self.minutes[minute] = local.date().isoformat() if local is not None else None
        return self.minutes[minute]

    def _local(self, minute: str) -> datetime | None:
        try:
            moment = datetime.fromisoformat(minute).replace(tzinfo=timezone.utc)
        except ValueError:
            return None
        return moment.astimezone(self.tz) if self.tz is not None else moment.astimezone()

    def __getstate__(self) -> dict:
        return {"tz": self.tz}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["tz"])


def reverse_calls(path: Path, *, block: int = 1 << 16, kind: type[Call] = Call) -> Iterator[Call]:
    """The ledger's records from its last line to its first, decoded like every other read (bad
    lines skipped): "the last answer" costs one block read however long the ledger is. `kind`
    is the struct each line is decoded into."""
    decode = _DECODERS[kind].decode
    try:
        handle = open(path, "rb")
    except FileNotFoundError:
        return
    with handle:
        position = handle.seek(0, 2)
        rest = b""
        while True:
            step = min(block, position)
            position -= step
            handle.seek(position)
            lines = (handle.read(step) + rest).split(b"\n")
            rest = lines[0] if position else b""
            for raw in reversed(lines[1:] if position else lines):
                if raw.strip():
                    try:
                        yield decode(raw)
                    except msgspec.DecodeError:  # torn, not JSON, or a field of the wrong type
                        continue
            if not position:
                return
