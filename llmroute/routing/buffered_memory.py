"""`BufferedMemory`: the routing memory as one `batch` uses it, with outcomes written in bulk.

The routing memory writes its state file (lock, fsync, rename) on every call's outcome, ~9 ms
each, which at dozens of prompts in flight becomes the batch's bottleneck. A batch instead
queues the outcomes and folds those of the last fraction of a second into one locked update,
replaying them through `RoutingMemory`'s own methods (`RoutingMemory.on_document`) in order and
at their own timestamps, so breakers, rate-limit windows and latency averages come out exactly
as if each had been written at once.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Callable

from .memory import MemorySnapshot, RoutingMemory


@dataclass
class BufferedMemory:
    """A `RoutingMemory` front for one batch: outcomes are queued and applied together at most
    every `interval` seconds (and on `flush()`); reads see the state as of the last flush."""

    inner: RoutingMemory
    interval: float = 0.25
    monotonic: Callable[[], float] = time.monotonic
    _pending: list = field(default_factory=list)
    _snapshot: MemorySnapshot | None = None
    _flushed_at: float = float("-inf")
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def snapshot(self) -> MemorySnapshot:
        self._maybe_flush()
        if self._snapshot is None:
            self._snapshot = self.inner.snapshot()
        return self._snapshot

    def record_success(self, *args) -> None:
        self._queue("record_success", args)

    def record_failure(self, *args) -> None:
        self._queue("record_failure", args)

    def __getattr__(self, name: str):
        # claim_trial, advance_round_robin, trip, set_quality: rare, and they must be atomic
        # across processes now: apply what is queued first, then go straight through.
        if name.startswith("_"):
            raise AttributeError(name)
        self.flush()
        return getattr(self.inner, name)

    def _queue(self, method: str, args: tuple) -> None:
        with self._lock:
            self._pending.append((method, args, self.inner.clock()))
        self._maybe_flush()

    def _maybe_flush(self) -> None:
        if self.monotonic() - self._flushed_at >= self.interval:
            self.flush()

    def flush(self) -> None:
        """Apply every queued outcome in one locked read-modify-write of the state file."""
        with self._lock:
            pending, self._pending = self._pending, []
            self._flushed_at = self.monotonic()
            if pending:
                with self.inner.store.update() as document:
                    at = 0.0  # the replayed outcome's own instant, read by the clock below
                    replay = self.inner.on_document(document, clock=lambda: at)
                    for method, args, at in pending:
                        getattr(replay, method)(*args)
            self._snapshot = None
