"""A batch's routing memory: outcomes queued and folded into one locked write leave exactly the
state that writing each at once leaves (through `RoutingMemory.on_document`)."""

from __future__ import annotations

import pytest

from llmroute.errors import ErrorClass
from llmroute.routing.buffered_memory import BufferedMemory
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


@pytest.mark.parametrize("windowed", [None, frozenset(), frozenset({"p"})],
                         ids=["every provider counted", "none counted", "p counted"])
def test_buffered_outcomes_leave_the_same_state_as_direct_ones(tmp_path, windowed):
    clock_a, clock_b = Clock(), Clock()
    direct = RoutingMemory(tmp_path / "a", clock=clock_a, windowed=windowed)
    outcomes(direct, clock_a)
    ticks = iter(range(100))
    buffered = BufferedMemory(RoutingMemory(tmp_path / "b", clock=clock_b, windowed=windowed),
                              interval=1000, monotonic=lambda: next(ticks))
    buffered.flush()
    outcomes(buffered, clock_b)
    assert buffered.inner.store.read() == {}  # nothing written before the flush
    buffered.flush()
    assert buffered.inner.store.read() == direct.store.read()
    assert buffered.snapshot().breaker(A.id).state == "open"
    assert ("recent" in direct.store.read()) == (windowed != frozenset())


def test_rare_calls_flush_first_and_go_straight_through(tmp_path):
    clock = Clock()
    buffered = BufferedMemory(RoutingMemory(tmp_path, clock=clock), interval=1000, monotonic=lambda: 0.0)
    buffered.record_success(A, 50, None, 1)
    assert buffered.advance_round_robin("k", 3) == 0
    assert buffered.inner.store.read()["latency"] == {A.id: 50.0}


def test_reads_see_the_state_as_of_the_last_flush(tmp_path):
    now = [0.0]
    buffered = BufferedMemory(RoutingMemory(tmp_path, clock=Clock()), interval=10, monotonic=lambda: now[0])
    assert buffered.snapshot().latency_ms == {}
    buffered.record_success(A, 70, None, 1)
    assert buffered.snapshot().latency_ms == {}  # queued, not yet applied
    now[0] = 10.0  # the interval has passed: the next call applies the queue
    assert buffered.snapshot().latency_ms == {A.id: 70.0}


def test_on_document_changes_the_held_document_at_the_given_instant_and_not_the_file(tmp_path):
    memory = RoutingMemory(tmp_path, clock=lambda: 1.0, windowed=frozenset({"p"}))
    document: dict = {}
    held = memory.on_document(document, clock=lambda: 5000.0)
    held.record_success(A, 80, None, 7)
    assert document["latency"] == {A.id: 80.0}
    assert document["recent"] == {"p": [[5000.0, 7]]}  # the given clock, the memory's `windowed`
    assert held.snapshot().latency_ms == {A.id: 80.0}
    assert not (tmp_path / "routing.json").exists()
    assert memory.clock() == 1.0 and memory.store.read() == {}  # the original is untouched


def test_owner_flushed_memory_never_writes_from_calls_and_refresh_reads_other_processes(tmp_path):
    now = [0.0]
    clock = Clock()
    buffered = BufferedMemory(RoutingMemory(tmp_path, clock=clock), interval=0.25,
                              monotonic=lambda: now[0], inline=False)
    assert buffered.snapshot().latency_ms == {}
    now[0] = 100.0  # long past the interval: an inline memory would write now
    buffered.record_success(A, 60, None, 1)
    assert buffered.snapshot().latency_ms == {}
    assert buffered.inner.store.read() == {}  # only the owner's flush writes
    RoutingMemory(tmp_path, clock=clock).trip(Target("p", "b"), "down")  # another process
    buffered.flush(refresh=True)
    snapshot = buffered.snapshot()
    assert snapshot.latency_ms == {A.id: 60.0}
    assert snapshot.breaker("p/b").state == "open"
    assert buffered.inner.store.read()["latency"] == {A.id: 60.0}
