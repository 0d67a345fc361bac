"""A small JSON document store shared by concurrent llmroute processes.

Circuit breakers, rate-limit buckets, the round-robin cursor, latency statistics and similar
facts must survive between invocations and stay correct while several invocations run at once.
Each concern gets its own `StateStore` file (e.g. `state/breakers.json`), so unrelated updates
do not contend for one lock and a damaged file loses only one concern's memory.

* `update()` is a read-modify-write under an exclusive `flock` on a sibling `.lock` file, so
  concurrent increments are never lost.
* Every write is an atomic replace (`locking.atomic_write`), so a `kill -9` never leaves a torn
  document; readers see the old or the new version.
* State is only a cache of recent history: a corrupt file is moved aside as
  `<name>.corrupt-<timestamp>` (kept for inspection) and rebuilt from empty, never fatal, with
  one warning. "Corrupt" includes valid JSON of the wrong shape: each store may declare the
  shape it expects (`valid`, e.g. `sections(breakers=dict)`), checked on every read, so code
  that uses a document never meets a list where it expects an object.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterator, Mapping

from .locking import atomic_write, locked


Validator = Callable[[dict], bool]


class _Corrupt(Exception):
    """The file exists but does not hold a JSON object of the expected shape."""


def stderr_warning(message: str) -> None:
    """The default `warn`: one `llmroute: warning:` line on stderr."""
    sys.stderr.write(f"llmroute: warning: {message}\n")
    sys.stderr.flush()


def sections(**expected: type | tuple[type, ...]) -> Validator:
    """A shape check: each named top-level key, when present, holds a value of that JSON type
    (`dict`, `list`, `str`, `int`, `float`; `True`/`False` never count as numbers)."""

    def valid(document: dict) -> bool:
        return all(is_json_type(document[name], kind) for name, kind in expected.items()
                   if name in document)

    return valid


def is_json_type(value: object, kind: type | tuple[type, ...]) -> bool:
    """`isinstance` for decoded JSON, except that a bool is not an int or a float, and that
    `Infinity`/`NaN` (which Python's json reads, though JSON has no such numbers) are not
    floats."""
    if isinstance(value, bool):
        kinds = kind if isinstance(kind, tuple) else (kind,)
        return bool in kinds
    if isinstance(value, float) and not math.isfinite(value):
        return False
    return isinstance(value, kind)


def mapping_of(value: object, check: Callable[[object], bool]) -> bool:
    """`value` is a JSON object whose every value passes `check`."""
    return isinstance(value, Mapping) and all(check(v) for v in value.values())


class StateStore:
    """One JSON object in one file, read under a shared lock and updated under an exclusive one.

    `clock` names the moved-aside copies of corrupt files; `warn` is told when that happens
    (default: one line on stderr); `valid` checks a decoded document's shape, and a document it
    rejects is handled exactly like a corrupt file."""

    def __init__(
        self,
        path: Path,
        *,
        clock: Callable[[], float] = time.time,
        warn: Callable[[str], None] | None = stderr_warning,
        valid: Validator | None = None,
    ):
        self.path = Path(path)
        self.lock_path = self.path.with_name(self.path.name + ".lock")
        self._clock = clock
        self._warn = warn
        self._valid = valid

    def read(self) -> dict:
        """A snapshot of the document; `{}` when the file is missing or was corrupt."""
        with locked(self.lock_path, shared=True):
            try:
                return self._load()[0]
            except _Corrupt:
                pass
        # Moving the damaged file aside needs the exclusive lock; another process may have
        # repaired it in between, so look again under that lock.
        with locked(self.lock_path):
            return self._load_or_reset()[0]

    @contextmanager
    def update(self) -> Iterator[dict]:
        """Yield the document for mutation, then write it back atomically.

        Nothing is written if the block raises or leaves the document unchanged. The exclusive
        lock is held for the whole block, so keep the block short and free of network calls."""
        with locked(self.lock_path):
            document, original = self._load_or_reset()
            yield document
            data = _encode(document)
            if data != original:
                atomic_write(self.path, data)

    def _load_or_reset(self) -> tuple[dict, bytes | None]:
        """Load under the exclusive lock, moving a corrupt file aside."""
        try:
            return self._load()
        except _Corrupt:
            kept = self._move_aside()
            if self._warn is not None:
                self._warn(f"{self.path.name} was unreadable; kept it as {kept.name} and started afresh")
            return {}, None

    def _load(self) -> tuple[dict, bytes | None]:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return {}, None
        if not raw.strip():
            return {}, raw
        try:
            document = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise _Corrupt() from exc
        if not isinstance(document, dict):
            raise _Corrupt()
        if self._valid is not None:
            try:
                ok = self._valid(document)
            except (TypeError, ValueError, AttributeError, KeyError, IndexError):
                ok = False  # a validator meeting a shape it did not foresee: still the wrong shape
            if not ok:
                raise _Corrupt()
        return document, raw

    def _move_aside(self) -> Path:
        stamp = datetime.fromtimestamp(self._clock(), tz=timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
        candidate = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        counter = 1
        while candidate.exists():
            candidate = self.path.with_name(f"{self.path.name}.corrupt-{stamp}-{counter}")
            counter += 1
        os.replace(self.path, candidate)
        return candidate


def _encode(document: dict) -> bytes:
    """Compact, ASCII-escaped JSON: key order is kept, so an unchanged document re-encodes to
    the same bytes and the write can be skipped."""
    return json.dumps(document, separators=(",", ":")).encode("ascii")
