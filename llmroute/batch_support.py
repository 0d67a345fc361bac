"""What lets one process keep dozens of prompts in flight without its bookkeeping becoming the
bottleneck (measured: 1,000 prompts at -P 32 against a 100 ms server).

- `ShardedTransport`: httpcore's async pool rescans every connection (and builds a list of them
  per idle connection) each time a request starts or ends, which costs ~6 ms of CPU per request
  at 32 connections. Spreading the connections over a few small pools behind ONE
  `httpx.AsyncClient` keeps the client single while cutting that to ~2 ms.
- `BufferedMemory`: the routing memory writes its state file (lock, fsync, rename) on every
  call's outcome, ~9 ms each. A batch folds the outcomes of the last fraction of a second into
  one locked update, replaying them through `RoutingMemory`'s own methods in order and at their
  own timestamps, so breakers, rate-limit windows and latency averages come out the same.
"""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, Iterator

import httpx

from .routing.memory import MemorySnapshot, RoutingMemory

POOL_SIZE = 8  # connections per shard


class ShardedTransport(httpx.AsyncBaseTransport):
    """Sends each request through the least busy of several small connection pools."""

    def __init__(self, connections: int, *, pool_size: int = POOL_SIZE):
        shards = max(1, -(-connections // pool_size))
        per = max(1, -(-connections // shards))
        tls = httpx.create_ssl_context()  # one CA bundle load (~45 ms) shared by every shard
        self.pools = [httpx.AsyncHTTPTransport(verify=tls, limits=httpx.Limits(max_connections=per, max_keepalive_connections=per))
                      for _ in range(shards)]
        self.busy = [0] * shards

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        index = min(range(len(self.pools)), key=self.busy.__getitem__)
        self.busy[index] += 1
        try:
            response = await self.pools[index].handle_async_request(request)
            await response.aread()  # the body is read while the slot is counted as busy
            return response
        finally:
            self.busy[index] -= 1

    async def aclose(self) -> None:
        for pool in self.pools:
            await pool.aclose()


def async_client(concurrency: int, headers: dict[str, str]) -> httpx.AsyncClient:
    """The one client a batch shares across all its prompts."""
    return httpx.AsyncClient(headers=headers, transport=ShardedTransport(concurrency))


class _DocStore:
    """A stand-in `StateStore` whose `update()` hands out an already locked document."""

    def __init__(self, document: dict):
        self.document = document

    @contextmanager
    def update(self) -> Iterator[dict]:
        yield self.document


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
                    replay = RoutingMemory.__new__(RoutingMemory)
                    replay.state_dir = self.inner.state_dir
                    replay.store = _DocStore(document)
                    for method, args, at in pending:
                        replay.clock = lambda at=at: at
                        getattr(replay, method)(*args)
            self._snapshot = None
