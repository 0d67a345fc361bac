"""Batch throughput helpers: buffered routing-memory updates replay exactly like direct ones;
the sharded transport spreads requests over small pools behind one client."""

from __future__ import annotations

import asyncio

import httpx

from llmroute.batch_support import BufferedMemory, ShardedTransport
from llmroute.errors import ErrorClass
from llmroute.routing.memory import RoutingMemory
from llmroute.types import Target

A = Target("p", "a")


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def outcomes(memory, clock):
    for i in range(3):
        clock.now += 1
        memory.record_success(A, 100 + i, None, 10)
    for _ in range(3):
        clock.now += 1
        memory.record_failure(A, ErrorClass.SERVER_ERROR, None, None, 20.0)


def test_buffered_outcomes_leave_the_same_state_as_direct_ones(tmp_path):
    clock_a, clock_b = Clock(), Clock()
    direct = RoutingMemory(tmp_path / "a", clock=clock_a)
    outcomes(direct, clock_a)
    ticks = iter(range(100))
    buffered = BufferedMemory(RoutingMemory(tmp_path / "b", clock=clock_b), interval=1000,
                              monotonic=lambda: next(ticks))
    buffered.flush()
    outcomes(buffered, clock_b)
    assert buffered.inner.store.read() == {}  # nothing written before the flush
    buffered.flush()
    assert buffered.inner.store.read() == direct.store.read()
    assert buffered.snapshot().breaker(A.id).state == "open"


def test_rare_calls_flush_first_and_go_straight_through(tmp_path):
    clock = Clock()
    buffered = BufferedMemory(RoutingMemory(tmp_path, clock=clock), interval=1000, monotonic=lambda: 0.0)
    buffered.record_success(A, 50, None, 1)
    assert buffered.advance_round_robin("k", 3) == 0
    assert buffered.inner.store.read()["latency"] == {A.id: 50.0}


def test_sharded_transport_uses_several_pools_behind_one_client():
    seen = []

    def handler(request):
        seen.append(request.url.path)
        return httpx.Response(200, json={"ok": True})

    transport = ShardedTransport(32, pool_size=8)
    assert len(transport.pools) == 4
    transport.pools = [httpx.MockTransport(handler) for _ in transport.pools]  # stand-ins: no sockets

    async def go():
        async with httpx.AsyncClient(transport=transport) as client:
            responses = await asyncio.gather(*(client.get(f"http://x/{i}") for i in range(10)))
        return [r.json() for r in responses]

    assert asyncio.run(go()) == [{"ok": True}] * 10
    assert sorted(seen) == sorted(f"/{i}" for i in range(10)) and transport.busy == [0, 0, 0, 0]
