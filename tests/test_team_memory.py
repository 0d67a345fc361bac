"""SPEC §15: the routing memory (breakers, one half-open trial, rate limits, latency, round-robin)
shared by several machines (data homes) on a real Redis; `health` shows the state backend.

The Redis server is test_team's (a free loopback port, stopped by its PID)."""

from __future__ import annotations

import json
import shutil
import threading
import time
from pathlib import Path

import pytest

from .support import fake_server, refused_url, run_cli
from .test_team import RedisServer, redis_server  # noqa: F401  (the fixture)

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server not installed")


def _config(directory: Path, bad: str, good: str, *, namespace: str = "team-a") -> Path:
    """Two providers, no budget: the routing memory is the only thing on Redis."""
    path = directory / "llmroute.yaml"
    path.write_text(
        "version: 1\ndefaults: {retries: 0}\nproviders:\n"
        f"  bad:\n    type: openai\n    base_url: {bad}/v1\n    models:\n      fake-model: {{input: 1, output: 1}}\n"
        f"  good:\n    type: openai\n    base_url: {good}/v1\n    models:\n      fake-model: {{input: 1, output: 1}}\n"
        "routes:\n  default: [bad, good]\n"
        f"state:\n  backend: redis\n  url_env: TEAM_REDIS\n  namespace: {namespace}\n")
    return path


def _home(tmp_path: Path, name: str) -> dict:
    home = tmp_path / name
    home.mkdir()
    return {"LLMROUTE_HOME": str(home)}


def _memory(tmp_path: Path, redis_server, name: str, clock=time.time):
    from llmroute.routing.redis_memory import RedisRoutingMemory

    directory = tmp_path / name
    directory.mkdir(exist_ok=True)
    return RedisRoutingMemory(directory, clock=clock, client=redis_server.client(), namespace="team-a",
                              url=redis_server.url, warn=lambda message: None)


def _target(provider: str = "bad"):
    from llmroute.types import Target

    return Target(provider, "fake-model")


def test_a_breaker_opened_on_one_machine_skips_the_target_on_another(tmp_path, redis_server):
    log = tmp_path / "bad.log"
    with fake_server(mode="error:500", log=log) as bad, fake_server(reply="fine") as good:
        config = _config(tmp_path, bad, good)
        env_a = {**_home(tmp_path, "a"), "TEAM_REDIS": redis_server.url}
        env_b = {**_home(tmp_path, "b"), "TEAM_REDIS": redis_server.url}
        for i in range(3):  # three consecutive failures open `bad`'s breaker
            done = run_cli(["--config", str(config), f"a {i}"], env=env_a)
            assert done.returncode == 0, done.stderr
        calls_to_bad = len(log.read_text().splitlines())
        assert calls_to_bad == 3
        done = run_cli(["--config", str(config), "b 0"], env=env_b)  # another machine
        assert done.returncode == 0 and b"fine" in done.stdout, done.stderr
        assert len(log.read_text().splitlines()) == calls_to_bad  # skipped: not called again
        assert b"unreachable" not in done.stderr
    assert not (tmp_path / "b" / "state" / "routing.json").exists()  # nothing kept locally
    stored = json.loads(redis_server.client().get("team-a:routing:doc"))
    assert stored["breakers"]["bad/fake-model"]["opens"] == 1
    assert redis_server.client().ttl("team-a:routing:doc") > 0
    assert redis_server.client().get("other:routing:doc") is None


def test_only_one_machine_gets_the_half_open_trial(tmp_path, redis_server):
    from llmroute.errors import ErrorClass

    start = time.time()
    opener = _memory(tmp_path, redis_server, "m0", clock=lambda: start - 31)  # cooldown 30 s: over now
    opener.trip(_target(), "down")
    machines = [_memory(tmp_path, redis_server, f"m{i}") for i in range(1, 9)]
    assert machines[0].snapshot().breaker("bad/fake-model").state == "half_open"
    barrier, won = threading.Barrier(len(machines)), []

    def claim(memory):
        barrier.wait()
        won.append(memory.claim_trial(_target()))

    threads = [threading.Thread(target=claim, args=(m,)) for m in machines]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(won) == [False] * 7 + [True]
    assert machines[3].snapshot().breaker("bad/fake-model").trial_in_progress
    assert redis_server.client().ttl(next(iter(redis_server.client().keys("team-a:routing:trial:*")))) > 0
    # The trial fails: re-opened with the next cooldown; a success elsewhere closes it.
    machines[0].record_failure(_target(), ErrorClass.SERVER_ERROR, None, None, 10.0)
    view = machines[5].snapshot().breaker("bad/fake-model")
    assert (view.state, view.opens) == ("open", 2)
    machines[1].record_success(_target(), 120.0, None, 7)
    assert machines[7].snapshot().breaker("bad/fake-model").state == "closed"
    assert machines[2].claim_trial(_target())


def test_latency_and_round_robin_are_shared(tmp_path, redis_server):
    a, b = _memory(tmp_path, redis_server, "a"), _memory(tmp_path, redis_server, "b")
    a.record_success(_target("good"), 100.0, None, 5)
    b.record_success(_target("good"), 200.0, None, 5)
    assert a.snapshot().latency_ms["good/fake-model"] == pytest.approx(130.0)
    turns = [m.advance_round_robin("default", 3) for m in (a, b, a, b)]
    assert turns == [0, 1, 2, 0]


def test_buffered_memory_writes_through_to_redis(tmp_path, redis_server):
    from llmroute.errors import ErrorClass
    from llmroute.routing.buffered_memory import BufferedMemory

    buffered = BufferedMemory(_memory(tmp_path, redis_server, "a"), interval=3600)
    for _ in range(3):
        buffered.record_failure(_target(), ErrorClass.SERVER_ERROR, None, None, 10.0)
    other = _memory(tmp_path, redis_server, "b")
    assert other.snapshot().breaker("bad/fake-model").state == "closed"  # still queued
    buffered.flush()
    assert other.snapshot().breaker("bad/fake-model").state == "open"


def test_redis_unreachable_without_a_budget_answers_from_local_state_with_one_warning(tmp_path):
    with fake_server(reply="fine") as good:
        config = _config(tmp_path, refused_url(), good)
        env = {**_home(tmp_path, "a"), "TEAM_REDIS": "redis://:secret@127.0.0.1:1/0"}
        done = run_cli(["--config", str(config), "hello"], env=env)
    assert done.returncode == 0, done.stderr
    assert b"fine" in done.stdout
    warnings = [line for line in done.stderr.decode().splitlines() if "Redis" in line]
    assert len(warnings) == 1 and "127.0.0.1:1" in warnings[0] and "secret" not in done.stderr.decode()
    assert (tmp_path / "a" / "state" / "routing.json").exists()  # the local memory learned


def test_redis_dying_mid_run_falls_back_to_local_state_once(tmp_path):
    server = RedisServer(tmp_path)
    server.start()
    try:
        warnings = []
        from llmroute.routing.redis_memory import RedisRoutingMemory

        memory = RedisRoutingMemory(tmp_path / "m", client=server.client(), namespace="team-a",
                                    url=server.url, warn=warnings.append)
        memory.record_success(_target("good"), 50.0, None, 1)
    finally:
        server.kill()
    memory.record_success(_target("good"), 50.0, None, 1)
    assert memory.advance_round_robin("default", 2) == 0
    assert memory.claim_trial(_target())
    assert len(warnings) == 1 and "unreachable" in warnings[0]
    assert (tmp_path / "m" / "routing.json").exists()


def test_health_shows_the_state_backend_and_its_round_trip(tmp_path, redis_server):
    with fake_server(reply="fine") as good:
        config = _config(tmp_path, good, good)
        env = {**_home(tmp_path, "a"), "TEAM_REDIS": redis_server.url}
        table = run_cli(["--config", str(config), "health"], env=env)
        as_json = run_cli(["--config", str(config), "health", "--json"], env=env)
        local = tmp_path / "local.yaml"
        local.write_text(config.read_text().split("state:")[0])
        plain = run_cli(["--config", str(local), "health", "--json"], env=env)
    assert table.returncode == 0, table.stderr
    line = [x for x in table.stdout.decode().splitlines() if x.startswith("state:")]
    assert len(line) == 1 and f"redis redis://127.0.0.1:{redis_server.port}/0" in line[0]
    assert "namespace team-a" in line[0] and "round trip" in line[0]
    rows = json.loads(as_json.stdout)
    assert rows[0]["state"]["backend"] == "redis" and rows[0]["state"]["rtt_ms"] >= 0
    assert all("state" not in row for row in json.loads(plain.stdout))  # local: unchanged
