"""Ledger: one line per record, safe under concurrent appends, tolerant reading (SPEC §5)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from llmroute.ledger import Ledger, encode_record, make_ts, prompt_sha256
from llmroute.ledger.reader import ReadStats, read_calls, reverse_calls


def collect(path: Path) -> tuple[list[dict], list[str]]:
    """Every JSON object line of the file (the write side's tests look at whole records), and
    one warning per line that is not one."""
    records, warnings = [], []
    if not path.exists():
        return records, warnings
    for number, raw in enumerate(path.read_bytes().splitlines(), 1):
        try:
            value = json.loads(raw)
        except ValueError:
            value = None
        if isinstance(value, dict):
            records.append(value)
        elif raw.strip():
            warnings.append(f"{path.name}:{number}: skipped an unreadable record")
    return records, warnings


def test_append_then_read_round_trips_and_adds_version(tmp_path):
    ledger = Ledger(tmp_path / "ledger.jsonl")
    ledger.append({"kind": "ask", "text": "héllo ☃"})
    ledger.append({"v": 2, "kind": "health"})
    records, warnings = collect(ledger.path)
    assert records == [{"v": 1, "kind": "ask", "text": "héllo ☃"}, {"v": 2, "kind": "health"}]
    assert warnings == []
    raw = ledger.path.read_bytes()
    assert raw.count(b"\n") == 2 and raw.endswith(b"\n")
    assert "☃".encode() in raw  # ensure_ascii=False keeps text readable


def test_record_is_one_compact_line_even_with_newlines_in_text():
    line = encode_record({"text": "a\nb\r\nc\u2028d"})
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert b", " not in line and b": " not in line
    assert json.loads(line)["text"] == "a\nb\r\nc\u2028d"


def test_lone_surrogates_are_escaped_not_fatal():
    line = encode_record({"text": "bad \udc80 byte"})
    assert json.loads(line)["text"] == "bad \udc80 byte"


def test_non_dict_record_is_refused():
    with pytest.raises(TypeError):
        encode_record(["not", "a", "dict"])  # type: ignore[arg-type]


def test_append_many_writes_all_lines_in_order(tmp_path):
    ledger = Ledger(tmp_path / "ledger.jsonl")
    ledger.append_many([{"n": i} for i in range(5)])
    ledger.append_many([])
    records, _ = collect(ledger.path)
    assert [r["n"] for r in records] == list(range(5))


def test_file_is_0600_and_new_dirs_0700(tmp_path):
    path = tmp_path / "deep" / "data" / "ledger.jsonl"
    Ledger(path).append({"kind": "ask"})
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(path.parent.parent.stat().st_mode) == 0o700


def test_torn_last_line_is_isolated_and_skipped_with_warning(tmp_path):
    path = tmp_path / "ledger.jsonl"
    ledger = Ledger(path)
    ledger.append({"n": 1})
    with open(path, "ab") as handle:  # what kill -9 mid-write leaves behind
        handle.write(b'{"n": 2, "kind": "as')
    ledger.append({"n": 3})
    records, warnings = collect(path)
    assert [r["n"] for r in records] == [1, 3]
    assert warnings == ["ledger.jsonl:2: skipped an unreadable record"]


def test_invalid_and_non_object_lines_are_skipped_one_warning_each(tmp_path):
    path = tmp_path / "ledger.jsonl"
    path.write_bytes(b'{"n":1}\nnot json\n[1,2]\n\n"text"\n\xff\xfe\n{"n":2}')
    records, warnings = collect(path)
    assert [r["n"] for r in records] == [1, 2]  # last line without newline still read
    assert warnings == [
        "ledger.jsonl:2: skipped an unreadable record",
        "ledger.jsonl:3: skipped an unreadable record",
        "ledger.jsonl:5: skipped an unreadable record",
        "ledger.jsonl:6: skipped an unreadable record",
    ]


TS = '"ts":"2026-01-01T00:00:00.000Z"'


def read(path: Path, start: int = 0) -> tuple[list, ReadStats]:
    """The reader's calls from `start`, and what the read saw."""
    stats = ReadStats()
    calls = [call for _, block in read_calls(path, start, None, stats) for call in block]
    return calls, stats


def line(n: int) -> bytes:
    return b'{"v":1,' + TS.encode() + b',"request_id":"r%d"}\n' % n


def test_missing_file_reads_as_empty(tmp_path):
    assert collect(tmp_path / "nope.jsonl") == ([], [])
    assert list(reverse_calls(tmp_path / "nope.jsonl")) == []


def test_the_reader_resumes_at_offsets(tmp_path):
    path = tmp_path / "ledger.jsonl"
    path.write_bytes(line(1) + line(2))
    calls, stats = read(path)
    assert [c.request_id for c in calls] == ["r1", "r2"] and stats.end_offset == path.stat().st_size
    with open(path, "ab") as handle:
        handle.write(line(3))
    resumed, _ = read(path, stats.end_offset)
    assert [c.request_id for c in resumed] == ["r3"]


def test_the_reader_leaves_an_unfinished_last_line_for_later(tmp_path):
    path = tmp_path / "ledger.jsonl"
    path.write_bytes(line(1) + line(2)[:-3])
    calls, stats = read(path)
    assert [c.request_id for c in calls] == ["r1"] and stats.end_offset == len(line(1))
    with open(path, "ab") as handle:
        handle.write(line(2)[-3:])
    assert [c.request_id for c in read(path, stats.end_offset)[0]] == ["r2"]


def test_the_reader_skips_bad_lines_with_one_warning(tmp_path):
    path = tmp_path / "ledger.jsonl"
    path.write_bytes(line(1) + b"garbage\n[1, 2]\n" + line(2))
    calls, stats = read(path)
    assert [c.request_id for c in calls] == ["r1", "r2"]
    warnings: list[str] = []
    stats.warn_bad(path.name, warnings.append)
    assert warnings == [f"ledger.jsonl: skipped 2 invalid lines (the first at or after byte {len(line(1))})"]


def test_reverse_calls_reads_from_the_end_across_blocks(tmp_path):
    path = tmp_path / "ledger.jsonl"
    path.write_bytes(b"".join(line(n) for n in range(50)) + b"{torn")
    assert [c.request_id for c in reverse_calls(path, block=64)] == [f"r{n}" for n in reversed(range(50))]


def test_timestamps_are_utc_millis_with_z():
    assert make_ts(0) == "1970-01-01T00:00:00.000Z"
    assert make_ts(1700000000.1234) == "2023-11-14T22:13:20.123Z"


def test_prompt_sha256():
    assert prompt_sha256("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert prompt_sha256("odd \udc80") != prompt_sha256("odd ")


WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from llmroute.ledger import Ledger

    ledger = Ledger(Path(sys.argv[1]))
    worker = int(sys.argv[2])
    for i in range(10):
        ledger.append({"worker": worker, "i": i, "pad": str(worker % 10) * 5000})
    """
)


def test_concurrent_processes_never_interleave_or_lose_lines(tmp_path):
    path = tmp_path / "ledger.jsonl"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(w)], env=env)
        for w in range(20)
    ]
    assert all(p.wait(timeout=120) == 0 for p in procs)
    records, warnings = collect(path)
    assert warnings == []
    assert len(records) == 200
    assert len(path.read_bytes().splitlines()) == 200
    for record in records:
        assert record["pad"] == str(record["worker"] % 10) * 5000
    assert sorted((r["worker"], r["i"]) for r in records) == [(w, i) for w in range(20) for i in range(10)]


# --- a write that fails part-way (disk full) leaves no torn line ---------------------------------


def _full_disk_after(limit: int):
    """An `os.write` that writes at most `limit` bytes in all, then fails like a full disk."""
    import errno

    written = [0]

    def write(fd, data):
        room = limit - written[0]
        if room <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        n = os.write(fd, bytes(data[:room]))
        written[0] += n
        return n

    return write


@pytest.mark.parametrize("room", [0, 1, 17])
def test_a_write_that_fails_part_way_is_truncated_back(tmp_path, room):
    path = tmp_path / "ledger.jsonl"
    Ledger(path).append({"kind": "ask", "n": 1})
    before = path.read_bytes()
    with pytest.raises(OSError) as failure:
        Ledger(path, write=_full_disk_after(room)).append({"kind": "ask", "n": 2, "pad": "x" * 100})
    assert failure.value.strerror == os.strerror(28)
    assert path.read_bytes() == before  # nothing half-written
    Ledger(path).append({"kind": "ask", "n": 3})
    records, warnings = collect(path)
    assert [r["n"] for r in records] == [1, 3] and warnings == []


def test_a_failed_repair_of_a_torn_line_is_undone_too(tmp_path):
    """The newline that isolates an earlier torn line is part of the failed write: undone."""
    path = tmp_path / "ledger.jsonl"
    path.write_bytes(b'{"kind": "ask", "n": 1}\n{"torn')
    before = path.read_bytes()
    with pytest.raises(OSError):
        Ledger(path, write=_full_disk_after(5)).append({"kind": "ask", "n": 2})
    assert path.read_bytes() == before


def test_on_error_receives_the_failure_instead_of_an_exception(tmp_path):
    path = tmp_path / "ledger.jsonl"
    errors: list[OSError] = []
    Ledger(path, write=_full_disk_after(0), on_error=errors.append).append({"kind": "ask"})
    assert len(errors) == 1 and isinstance(errors[0], OSError)
    assert path.read_bytes() == b""
