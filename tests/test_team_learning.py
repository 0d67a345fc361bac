"""SPEC §15 + issue 19: with `state.backend: redis` the evidence routing learns from — judged
pairs, thumbs votes, the per-prompt learner — is the team's, so a verdict given on one machine
moves `quality`/`auto` on every other. On a real Redis (test_team's server, stopped by PID)."""

from __future__ import annotations

import json
import multiprocessing
import random
import shutil
from datetime import datetime, timezone
from pathlib import Path

import pytest

from .support import fake_server, refused_url, run_cli
from .test_learner import A, B, MATHS_TEST, PROSE_TEST, config, fill
from .test_learner import MATHS_TRAIN, PROSE_TRAIN
from .test_team import RedisServer, redis_server  # noqa: F401  (the fixture)

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server not installed")


def machine(tmp_path: Path, url: str, name: str, warnings: list | None = None):
    """One machine's routing memory on the team's Redis (its own data directory)."""
    import redis

    from llmroute.routing.redis_memory import RedisRoutingMemory

    directory = tmp_path / name
    directory.mkdir(exist_ok=True)
    sink = warnings.append if warnings is not None else (lambda message: None)
    return RedisRoutingMemory(directory, client=redis.Redis.from_url(url, socket_timeout=2),
                              namespace="team-a", url=url, warn=sink)


def first(memory, prompt: str) -> str:
    from llmroute.routing.learner import load_view
    from llmroute.routing.planner import PlanInputs, make_plan
    from llmroute.types import Message, Request

    inputs = PlanInputs(config=config("auto"), request=Request((Message("user", prompt),)),
                        now=datetime.now(timezone.utc), learner=load_view(memory.state_dir, memory))
    return make_plan(inputs, memory).candidates[0].target.id


def test_verdicts_on_one_machine_move_routing_on_another(tmp_path, redis_server):
    from llmroute.quality import QualityStore
    from llmroute.routing.learner import load_view

    one, other = machine(tmp_path, redis_server.url, "one"), machine(tmp_path, redis_server.url, "two")
    rng = random.Random(1)
    store = QualityStore(one.state_dir, memory=one)
    for i in range(200):  # B wins on maths, A on prose (test_learner's world)
        if i % 2:
            store.record_pair(A, B, "b", prompt=fill(rng.choice(MATHS_TRAIN), rng))
        else:
            store.record_pair(A, B, "a", prompt=fill(rng.choice(PROSE_TRAIN), rng))
    assert load_view(other.state_dir, other).evidence(A, B) == 200
    assert set(other.snapshot().quality) == {A, B}  # the Bradley–Terry scores are shared too
    assert first(other, fill(MATHS_TEST[0], rng)) == B
    assert first(other, fill(PROSE_TEST[0], rng)) == A
    for name in ("learner.json", "quality.json", "feedback.json", "routing.json"):
        assert not (one.state_dir / name).exists() and not (other.state_dir / name).exists()
    client = redis_server.client()
    assert client.ttl("team-a:learner:doc") == -1 and client.ttl("team-a:quality:doc") == -1  # kept


def test_the_team_view_is_read_again_only_after_a_change(tmp_path, redis_server):
    from llmroute.routing.learner import Learner, load_view

    one, other = machine(tmp_path, redis_server.url, "one"), machine(tmp_path, redis_server.url, "two")
    Learner(one.state_dir, memory=one).record(A, B, "write a poem about rain")
    seen = load_view(other.state_dir, other)
    assert seen.evidence(A, B) == 1 and load_view(other.state_dir, other) is seen
    Learner(one.state_dir, memory=one).record(B, A, "solve x + 1 = 2")
    assert load_view(other.state_dir, other).evidence(A, B) == 2


def _updater(url: str, directory: str, index: int) -> None:
    from llmroute.routing.learner import Learner

    memory = machine(Path(directory), url, f"m{index}")
    for j in range(5):
        winner, loser = (A, B) if (index + j) % 2 else (B, A)
        Learner(memory.state_dir, memory=memory).record(winner, loser, f"prompt {index} number {j}")


def test_twenty_processes_on_several_machines_lose_no_verdict(tmp_path, redis_server):
    from llmroute.routing.learner import load_view

    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_updater, args=(redis_server.url, str(tmp_path), i)) for i in range(20)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    assert all(p.exitcode == 0 for p in procs)
    reader = machine(tmp_path, redis_server.url, "reader")
    assert load_view(reader.state_dir, reader).evidence(A, B) == 100
    assert int(redis_server.client().get("team-a:learner:version")) == 100


def test_unreachable_redis_learns_on_this_machine_with_one_warning(tmp_path):
    from llmroute.quality import QualityStore
    from llmroute.routing.learner import FILE, load_view

    warnings: list[str] = []
    memory = machine(tmp_path, refused_url().replace("http://", "redis://"), "alone", warnings)
    QualityStore(memory.state_dir, memory=memory).record_pair(A, B, "a", prompt="write a poem")
    assert (memory.state_dir / FILE).exists()
    assert load_view(memory.state_dir, memory).evidence(A, B) == 1
    assert len(warnings) >= 1 and all("unreachable" in w for w in warnings)


def test_feedback_on_one_machine_shows_in_the_report_of_another(tmp_path, redis_server):
    with fake_server(reply="an answer") as url:
        path = tmp_path / "llmroute.yaml"
        path.write_text(
            "version: 1\nproviders:\n"
            f"  fake:\n    type: openai\n    base_url: {url}/v1\n    models:\n      fake-model: {{input: 1, output: 1}}\n"
            "ledger: {log_prompts: true}\n"
            "state:\n  backend: redis\n  url_env: TEAM_REDIS\n  namespace: team-a\n")
        homes = {}
        for name in ("a", "b"):
            (tmp_path / name).mkdir()
            homes[name] = {"LLMROUTE_HOME": str(tmp_path / name), "TEAM_REDIS": redis_server.url}
        asked = run_cli(["--config", str(path), "write a haiku about tea"], env=homes["a"])
        assert asked.returncode == 0, asked.stderr
        voted = run_cli(["--config", str(path), "feedback", "last", "up"], env=homes["a"])
        assert voted.returncode == 0, voted.stderr
        report = run_cli(["--config", str(path), "abtest", "report", "--json"], env=homes["b"])
    assert report.returncode == 0, report.stderr
    data = json.loads(report.stdout)
    assert data["feedback"] == {"fake/fake-model": {"up": 1, "down": 0}}
    assert [p["verdicts"] for p in data["learner"]] == [1]
