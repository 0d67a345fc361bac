"""The JSONL ledger: one line per provider call, appended safely by many processes (SPEC §5).

The ledger owns its facts: where it is (`ledger_path`), how a record is built
(`records.build_record`, one builder for every kind of call), how it is written (here) and how
it is read (`reader`: one tolerant, typed reader for every total, exact in any line order).

Why writing is built this way:

* Many llmroute processes append at once (`xargs -P 8`). Each record is written with one
  `os.write` of a whole line on an `O_APPEND` descriptor while holding an exclusive `flock` of
  the ledger file itself, so lines never interleave, even when a record is larger than PIPE_BUF
  (where O_APPEND alone stops being enough).
* A `kill -9` in the middle of a write can leave a torn last line with no newline. The next
  append first adds the missing newline, so the torn fragment stays one bad line on its own and
  the new record stays readable.
* A write that fails part-way (disk full, quota, I/O error) is undone before the error is
  raised: still under the lock, the file is truncated back to its size before the write, so a
  failed append leaves no torn line behind (the lock guarantees no other writer appended since).
  What a failed write means for the call being recorded is the caller's decision (`on_error`).
* Readers never fail on a bad line (`reader`): a torn or hand-edited line is skipped and
  counted, and a trailing line without its newline is left for a later read.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterable

from ..errors import LLMRouteError
from ..paths import ensure_private_dir

FILE_MODE = 0o600
SCHEMA_VERSION = 1



Writer = Callable[[int, memoryview], int]


class LedgerWriteError(LLMRouteError):
    """The ledger could not be written and `ledger.required: true` makes that a failure (exit 1)."""


class Ledger:
    """Appends records to one ledger file. Holds no open descriptor between calls, so it is
    safe to keep for the whole invocation and to share between threads.

    `write` is the system call that writes bytes (`os.write`; tests inject one that fails).
    `on_error`, when given, is handed the `OSError` of a failed append instead of it being
    raised: the engine uses it to keep a paid answer when the ledger cannot be written."""

    def __init__(self, path: Path, *, write: Writer = os.write,
                 on_error: Callable[[OSError], None] | None = None):
        self.path = Path(path)
        self._os_write = write
        self.on_error = on_error

    def append(self, record: dict) -> None:
        """Write one record as one line."""
        self.append_many([record])

    def append_many(self, records: Iterable[dict]) -> None:
        """Write several records as consecutive lines in a single write (one lock, one syscall)."""
        data = b"".join(encode_record(r) for r in records)
        if not data:
            return
        try:
            self._write(data)
        except OSError as error:
            if self.on_error is None:
                raise
            self.on_error(error)

    def _write(self, data: bytes) -> None:
        ensure_private_dir(self.path.parent)
        # O_RDWR rather than O_WRONLY: under the lock we peek at the last byte to repair a torn
        # line. Writes still go to the end because of O_APPEND.
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            size = os.fstat(fd).st_size
            if _needs_newline(fd, size):
                data = b"\n" + data
            try:
                _write_all(fd, data, self._os_write)
            except OSError:
                _truncate_quietly(fd, size)
                raise
        finally:
            os.close(fd)  # closing releases the flock


def encode_record(record: dict) -> bytes:
    """One record as one UTF-8 line ending in `\\n`, with `"v": 1` added when missing.

    Text that cannot be UTF-8 encoded (lone surrogates from odd input) is written with ASCII
    escapes instead, which is still valid JSON, rather than failing the call being recorded."""
    if not isinstance(record, dict):
        raise TypeError(f"a ledger record must be a dict, not {type(record).__name__}")
    full = record if "v" in record else {"v": SCHEMA_VERSION, **record}
    text = json.dumps(full, separators=(",", ":"), ensure_ascii=False)
    try:
        return text.encode("utf-8") + b"\n"
    except UnicodeEncodeError:
        return json.dumps(full, separators=(",", ":"), ensure_ascii=True).encode("ascii") + b"\n"


def _needs_newline(fd: int, size: int) -> bool:
    return size > 0 and os.pread(fd, 1, size - 1) != b"\n"


def _write_all(fd: int, data: bytes, write: Writer = os.write) -> None:
    """Loop on short writes; we hold the lock, so the pieces stay contiguous."""
    view = memoryview(data)
    while view:
        written = write(fd, view)
        view = view[written:]


def _truncate_quietly(fd: int, size: int) -> None:
    """Undo a partly written append (we hold the lock, so the tail is ours alone). Truncating
    frees space and so works on a full disk; if even that fails, the torn tail is what a
    `kill -9` leaves, and the next append isolates it on its own line."""
    try:
        os.ftruncate(fd, size)
    except OSError:
        pass


def make_ts(epoch: float) -> str:
    """`2025-01-31T12:00:00.123Z`: UTC, millisecond precision, as the ledger stores it."""
    moment = datetime.fromtimestamp(epoch, tz=timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def prompt_sha256(text: str) -> str:
    """Hex SHA-256 of the prompt's UTF-8 bytes: lets reports group identical prompts without
    storing them. Lone surrogates are hashed as-is rather than failing."""
    return hashlib.sha256(text.encode("utf-8", errors="surrogatepass")).hexdigest()


def ledger_path(config, paths) -> Path:
    """The one answer to "which ledger": `ledger.path` in the config, else `<data>/ledger.jsonl`.
    The engine writes there and budget, report, health and feedback read there."""
    configured = config.ledger.path
    return Path(configured).expanduser() if configured else paths.ledger
