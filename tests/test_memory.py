"""Routing memory: circuit breakers, rate limits, latency, round-robin — across processes."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from llmroute.errors import ErrorClass
from llmroute.routing.memory import (
    MAX_COOLDOWN_S, MemorySnapshot, RoutingMemory, cooldown_for, snapshot_from,
)
from llmroute.types import RateLimitInfo, Target

T = Target("openai", "gpt-4o")
OTHER = Target("anthropic", "claude-haiku-4-5")


class Clock:
    def __init__(self, now: float = 1_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def memory(tmp_path, clock):
    return RoutingMemory(tmp_path / "state", clock=clock)


def fail(memory, target=T, cls=ErrorClass.SERVER_ERROR, retry_after=None, limits=None, budget=20.0):
    memory.record_failure(target, cls, retry_after, limits, budget)


def test_empty_memory_is_closed_everywhere(memory):
    snap = memory.snapshot()
    assert snap.breaker(T.id).state == "closed"
    assert snap.rate_limits == {} and snap.latency_ms == {} and snap.round_robin == {}


def test_breaker_opens_after_three_consecutive_failures(memory, clock):
    fail(memory)
    fail(memory)
    assert memory.snapshot().breaker(T.id).state == "closed"
    assert memory.snapshot().breaker(T.id).failures == 2
    fail(memory)
    view = memory.snapshot().breaker(T.id)
    assert view.state == "open"
    assert view.open_until == clock.now + 30
    assert view.opens == 1


def test_success_in_between_resets_the_count(memory):
    fail(memory)
    fail(memory)
    memory.record_success(T, 100, None, 10)
    fail(memory)
    fail(memory)
    assert memory.snapshot().breaker(T.id).state == "closed"


@pytest.mark.parametrize("cls", [ErrorClass.BAD_REQUEST, ErrorClass.CONTEXT_LENGTH, ErrorClass.BUDGET])
def test_request_errors_do_not_count_against_the_target(memory, cls):
    for _ in range(5):
        fail(memory, cls=cls)
    assert memory.snapshot().breaker(T.id).state == "closed"
    assert memory.snapshot().breaker(T.id).failures == 0


def test_auth_failures_count(memory):
    for _ in range(3):
        fail(memory, cls=ErrorClass.AUTH)
    assert memory.snapshot().breaker(T.id).state == "open"


def test_half_open_after_cooldown_allows_one_trial_across_instances(tmp_path, clock):
    a = RoutingMemory(tmp_path / "state", clock=clock)
    b = RoutingMemory(tmp_path / "state", clock=clock)
    for _ in range(3):
        fail(a)
    assert not a.claim_trial(T)  # still open
    clock.now += 30
    assert b.snapshot().breaker(T.id).state == "half_open"
    assert a.claim_trial(T) is True
    assert b.claim_trial(T) is False  # the other process keeps skipping it
    assert b.snapshot().breaker(T.id).trial_in_progress
    clock.now += 61  # the trial holder died: after 60 s someone else may try
    assert b.claim_trial(T) is True


def test_trial_success_closes_and_resets(memory, clock):
    for _ in range(3):
        fail(memory)
    clock.now += 30
    assert memory.claim_trial(T)
    memory.record_success(T, 50, None, 5)
    view = memory.snapshot().breaker(T.id)
    assert view.state == "closed" and view.opens == 0 and view.failures == 0


def test_trial_failure_reopens_with_longer_cooldown(memory, clock):
    for _ in range(3):
        fail(memory)
    clock.now += 30
    assert memory.claim_trial(T)
    fail(memory)  # one failure is enough while half-open
    view = memory.snapshot().breaker(T.id)
    assert view.state == "open" and view.opens == 2
    assert view.open_until == clock.now + 60
    clock.now += 60
    assert memory.claim_trial(T)
    fail(memory)
    assert memory.snapshot().breaker(T.id).open_until == clock.now + 120


def test_cooldown_grows_and_is_capped():
    assert [cooldown_for(n) for n in (1, 2, 3, 4)] == [30, 60, 120, 240]
    assert cooldown_for(6) == MAX_COOLDOWN_S == 900
    assert cooldown_for(50) == 900


def test_failure_while_open_does_not_lengthen_cooldown(memory, clock):
    for _ in range(3):
        fail(memory)
    until = memory.snapshot().breaker(T.id).open_until
    fail(memory)  # a call planned before the breaker opened
    assert memory.snapshot().breaker(T.id).open_until == until


def test_429_with_long_retry_after_opens_at_once(memory, clock):
    fail(memory, cls=ErrorClass.RATE_LIMITED, retry_after=120, budget=20)
    snap = memory.snapshot()
    assert snap.breaker(T.id).state == "open"
    assert snap.rate_limits[T.id].blocked_until == clock.now + 120


def test_429_with_short_retry_after_marks_rate_limited_only(memory, clock):
    fail(memory, cls=ErrorClass.RATE_LIMITED, retry_after=10, budget=20)
    snap = memory.snapshot()
    assert snap.breaker(T.id).state == "closed"
    assert snap.rate_limits[T.id].blocked_until == clock.now + 10
    clock.now += 11
    memory.record_success(OTHER, 10, None, 1)  # any write prunes expired facts
    assert T.id not in memory.snapshot().rate_limits


def test_ratelimit_headers_are_remembered_with_reset(memory, clock):
    info = RateLimitInfo(remaining_requests=0, reset_requests_s=20, remaining_tokens=500, reset_tokens_s=5)
    memory.record_success(T, 100, info, 10)
    view = memory.snapshot().rate_limits[T.id]
    assert view.requests_remaining == 0 and view.requests_reset_at == clock.now + 20
    assert view.tokens_remaining == 500 and view.tokens_reset_at == clock.now + 5


def test_ratelimit_zero_without_reset_assumes_a_minute(memory, clock):
    memory.record_failure(T, ErrorClass.RATE_LIMITED, None, RateLimitInfo(remaining_requests=0), 20)
    assert memory.snapshot().rate_limits[T.id].requests_reset_at == clock.now + 60


def test_recent_requests_are_counted_per_provider_and_pruned(memory, clock):
    memory.record_success(T, 10, None, 100)
    clock.now += 30
    fail(memory)
    count, tokens, oldest = memory.snapshot().requests_in_window("openai", clock.now)
    assert (count, tokens, oldest) == (2, 100, clock.now - 30)
    clock.now += 31
    memory.record_success(T, 10, None, 7)
    assert memory.snapshot().requests_in_window("openai", clock.now)[:2] == (2, 7)
    doc = json.loads((memory.state_dir / "routing.json").read_text())
    assert len(doc["recent"]["openai"]) == 2  # the first entry was pruned from the file


def test_latency_is_an_ewma(memory):
    memory.record_success(T, 1000, None, 1)
    memory.record_success(T, 0, None, 1)
    assert memory.snapshot().latency_ms[T.id] == pytest.approx(700)


def test_round_robin_rotates_across_instances(tmp_path, clock):
    turns = [RoutingMemory(tmp_path / "s", clock=clock).advance_round_robin("route:default", 3)
             for _ in range(7)]
    assert turns == [0, 1, 2, 0, 1, 2, 0]
    assert RoutingMemory(tmp_path / "s").snapshot().round_robin["route:default"] == 7


def test_trip_opens_and_repeated_trips_keep_the_cooldown(memory, clock):
    memory.trip(T, "health: down")
    view = memory.snapshot().breaker(T.id)
    assert view.state == "open" and view.reason == "health: down"
    memory.trip(T, "health: down")
    assert memory.snapshot().breaker(T.id).opens == 1


def test_quality_scores_round_trip(memory):
    memory.set_quality(T, 7.5, 12)
    assert memory.snapshot().quality[T.id] == (7.5, 12)


def test_corrupt_state_is_empty_memory_not_fatal(tmp_path, clock):
    state = tmp_path / "state"
    state.mkdir()
    (state / "routing.json").write_text("{not json")
    memory = RoutingMemory(state, clock=clock)
    assert memory.snapshot().breakers == {}
    fail(memory)
    assert memory.snapshot().breaker(T.id).failures == 1


def test_damaged_shapes_are_ignored():
    doc = {"breakers": {"a/b": "x", "c/d": {"open_until": "soon"}}, "limits": [], "recent": {"p": [[1, 2], "x"]},
           "latency": {"a/b": "fast"}, "quality": {"a/b": [1]}, "round_robin": {"k": -3}}
    snap = snapshot_from(doc, 10.0)
    assert isinstance(snap, MemorySnapshot)
    assert snap.breaker("c/d").state == "closed" and "a/b" not in snap.breakers
    assert snap.recent["p"] == ((1.0, 2),)
    assert snap.latency_ms == {} and snap.quality == {} and snap.round_robin == {}


WORKER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from llmroute.errors import ErrorClass
    from llmroute.routing.memory import RoutingMemory
    from llmroute.types import Target
    memory = RoutingMemory(Path(sys.argv[1]))
    target = Target("openai", "gpt-4o")
    for i in range(int(sys.argv[2])):
        memory.record_failure(target, ErrorClass.SERVER_ERROR, None, None, 20.0)
        memory.record_success(target, 100 + i, None, 10)
        memory.advance_round_robin("route:default", 4)
""")


def test_concurrent_processes_keep_the_file_valid_and_count_exactly(tmp_path):
    state = tmp_path / "shared-state"
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    n = 15
    procs = [subprocess.Popen([sys.executable, str(script), str(state), str(n)]) for _ in range(20)]
    assert [p.wait(timeout=120) for p in procs] == [0] * 20
    doc = json.loads((state / "routing.json").read_text())
    assert doc["round_robin"]["route:default"] == 20 * n
    assert len(doc["recent"]["openai"]) == 2 * 20 * n  # every request noted, none lost
    assert not list(Path(state).glob("*.corrupt-*"))


def test_only_windowed_providers_are_counted_for_rpm(tmp_path):
    from llmroute.routing.memory import RoutingMemory as Memory
    from llmroute.types import Target as T

    memory = Memory(tmp_path, clock=lambda: 1000.0, windowed=frozenset({"limited"}))
    memory.record_success(T("limited", "m"), 100, None, 10)
    memory.record_success(T("free", "m"), 100, None, 10)
    snapshot = memory.snapshot()
    assert snapshot.requests_in_window("limited", 1000.0)[0] == 1
    assert snapshot.requests_in_window("free", 1000.0)[0] == 0


def test_window_pruning_keeps_recent_and_drops_old(tmp_path):
    from llmroute.routing.memory import RoutingMemory as Memory
    from llmroute.types import Target as T

    now = [1000.0]
    memory = Memory(tmp_path, clock=lambda: now[0])
    for step in range(5):
        now[0] = 1000.0 + step * 20  # 0, 20, 40, 60, 80 s
        memory.record_success(T("p", "m"), 100, None, 1)
    requests, _, oldest = memory.snapshot().requests_in_window("p", now[0])
    assert requests == 3 and oldest == 1040.0  # 40, 60, 80 are inside the last 60 s
