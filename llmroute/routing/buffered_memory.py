"""`BufferedMemory`: the routing memory as `batch` and `serve` use it, with outcomes written in bulk.

The routing memory writes its state file (lock, fsync, rename) on every call's outcome, ~9 ms
each, which at dozens of prompts in flight becomes the bottleneck (and, in the gateway, blocks
the event loop that every client's request shares). A batch or the gateway instead queues the
outcomes and folds those of the last fraction of a second into one locked update, replaying them
through `RoutingMemory`'s own methods (`RoutingMemory.on_document`) in order and at their own
timestamps, so breakers, rate-limit windows and latency averages come out exactly as if each had
been written at once.

Staleness is bounded by `interval`: other processes see this one's outcomes at most that late,
and this one sees theirs (its snapshot is dropped or re-read at every flush). A batch flushes
inline, from whichever call comes after the interval. The gateway (`inline=False`) flushes from a
worker thread every `interval` (`flush(refresh=True)`), so neither the write nor the re-read of
the state file ever runs on its event loop.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Callable

from .memory import MemorySnapshot, RoutingMemory


@dataclass
class BufferedMemory:
    """A `RoutingMemory` front: outcomes are queued and applied together at most every
    `interval` seconds (and on `flush()`); reads see the state as of the last flush. With
    `inline=False` nothing is written from `record_*`/`snapshot`: the owner calls `flush`
    every `interval` (from another thread if it likes; queueing and reading stay cheap)."""

    inner: RoutingMemory
    interval: float = 0.25
    monotonic: Callable[[], float] = time.monotonic
    inline: bool = True
    _pending: list = field(default_factory=list)
    _snapshot: MemorySnapshot | None = None
    _flushed_at: float = float("-inf")
    _lock: threading.Lock = field(default_factory=threading.Lock)  # guards `_pending`
    _flushing: threading.Lock = field(default_factory=threading.Lock)  # one flush at a time

    def snapshot(self) -> MemorySnapshot:
        self._maybe_flush()
        snapshot = self._snapshot
        if snapshot is None:
            snapshot = self._snapshot = self.inner.snapshot()
        return snapshot

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
        if self.inline and self.monotonic() - self._flushed_at >= self.interval:
            self.flush()

    def flush(self, *, refresh: bool = False) -> None:
        """Apply every queued outcome in one locked read-modify-write of the state file, then
        drop the cached snapshot so the next read sees other processes' outcomes too; with
        `refresh`, read the new snapshot now (here, not in whoever reads it next)."""
        with self._flushing:
            with self._lock:  # held only to take the queue: queueing never waits for the disk
                pending, self._pending = self._pending, []
                self._flushed_at = self.monotonic()
            if pending:
                with self.inner.store.update() as document:
                    at = 0.0  # the replayed outcome's own instant, read by the clock below
                    replay = self.inner.on_document(document, clock=lambda: at)
                    for method, args, at in pending:
                        getattr(replay, method)(*args)
            self._snapshot = self.inner.snapshot() if refresh else None
