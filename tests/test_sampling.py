"""Sampled A/B in ordinary use: when to sample, the budget gate, judging now or later."""

from __future__ import annotations

import random

from llmroute.abtest import ABTestStore, ManualJudge
from llmroute.config.load import parse_config
from llmroute.engine import AskOptions
from llmroute.sampling import PendingStore, decide_sample, judge_pending, maybe_sample, run_sample, sampled_name
from llmroute.types import Message, Request, Target

from .abtest_support import FakeBudget, FakeProviders, config_text, ledger, make_engine

T = Target.parse
LONG = Request(messages=(Message("user", "please explain the difference between a list and a tuple in python"),),
               max_tokens=50)


def ab_section(rate=1.0, judge=None, min_tokens=5):
    text = f"abtest:\n  sample_rate: {rate}\n  min_tokens: {min_tokens}\n  targets: [good/m, bad/m]\n"
    return text + (f"  judge: {judge}\n" if judge else "")


class Draw:
    def __init__(self, value):
        self.value = value
        self.draws = 0

    def random(self):
        self.draws += 1
        return self.value


def test_decide_sample_conditions():
    config = parse_config(config_text(["good", "bad"], ab_section(rate=0.3)))
    assert decide_sample(config, LONG, Draw(0.29))
    assert decide_sample(config, LONG, Draw(0.3)) is None
    short = Request(messages=(Message("user", "hi"),))
    draw = Draw(0.0)
    assert decide_sample(config, short, draw) is None and draw.draws == 0
    off = parse_config(config_text(["good", "bad"]))
    draw = Draw(0.0)
    assert decide_sample(off, LONG, draw) is None and draw.draws == 0


def routed_answer(engine, ab_id):
    """The routed call as the CLI makes it: the ab_id decided before, on every record."""
    options = AskOptions(model="good/m", no_fallback=True, extra_record={"ab_id": ab_id})
    return engine.ask(LONG, options), options


def test_sampled_pair_is_judged_at_once_with_a_judge(isolated_env):
    fakes = FakeProviders({"good": "GOOD answer", "bad": "weak answer", "j": "judge"})
    engine = _engine_with_sync_fakes(isolated_env, fakes, config_text(["good", "bad", "j"], ab_section(judge="j/m")))
    answer, _ = routed_answer(engine, "ab1")
    outcome = run_sample(engine, LONG, answer, "ab1", aclient=fakes.client())
    assert outcome.other.target == T("bad/m") and outcome.outcome == "a" and not outcome.queued
    records = ledger(isolated_env)
    assert [(r["kind"], r["target"]) for r in records][:2] == [("ask", "good/m"), ("abtest", "bad/m")]
    assert {r["ab_id"] for r in records} == {"ab1"}
    assert sorted(r["kind"] for r in records) == ["abtest", "ask", "judge", "judge"]
    prompts = [p for name, p in fakes.calls if name in ("good", "bad")]
    assert prompts[0] == prompts[1]  # the identical request
    test = ABTestStore(engine.paths.state_dir).tests()[sampled_name(T("good/m"), T("bad/m"))]
    assert [p["o"] for p in test["pairs"]] == ["a"]


def _engine_with_sync_fakes(home, fakes, text, budget=None):
    import httpx

    return make_engine(home, text, budget=budget, client=httpx.Client(transport=httpx.MockTransport(fakes.handler)))


def test_without_a_judge_the_pair_is_queued_then_judged_later(isolated_env):
    fakes = FakeProviders({"good": "GOOD answer", "bad": "weak answer", "j": "judge"})
    engine = _engine_with_sync_fakes(isolated_env, fakes, config_text(["good", "bad", "j"], ab_section()))
    answer, _ = routed_answer(engine, "ab2")
    outcome = run_sample(engine, LONG, answer, "ab2", aclient=fakes.client())
    assert outcome.queued and outcome.outcome is None
    pending = PendingStore(engine.paths.state_dir).items()
    assert pending["ab2"]["text_a"] == "GOOD answer" and pending["ab2"]["text_b"] == "weak answer"
    done = judge_pending(engine, judge=T("j/m"), aclient=fakes.client())
    assert [p.outcome for p in done] == ["a"]
    assert PendingStore(engine.paths.state_dir).items() == {}
    assert judge_pending(engine, judge=T("j/m"), aclient=fakes.client()) == []


def test_pending_pairs_can_be_judged_by_a_person(isolated_env):
    fakes = FakeProviders({"good": "GOOD answer", "bad": "weak answer"})
    engine = _engine_with_sync_fakes(isolated_env, fakes, config_text(["good", "bad"], ab_section()))
    answer, _ = routed_answer(engine, "ab3")
    run_sample(engine, LONG, answer, "ab3", aclient=fakes.client())
    done = judge_pending(engine, manual=ManualJudge(ask=lambda q: "t", show=lambda s: None, rng=random.Random(0)))
    assert [p.outcome for p in done] == ["tie"]


def test_never_runs_when_the_budget_would_not_allow_the_second_call(isolated_env):
    fakes = FakeProviders({"good": "GOOD answer", "bad": "weak answer", "j": "judge"})
    budget = FakeBudget(refuse={"bad/m"})
    engine = _engine_with_sync_fakes(isolated_env, fakes, config_text(["good", "bad", "j"], ab_section(judge="j/m")),
                                     budget=budget)
    answer, options = routed_answer(engine, "ab4")
    assert run_sample(engine, LONG, answer, "ab4", aclient=fakes.client()) is None
    assert maybe_sample(engine, LONG, answer, options, engine.config, random.Random(0), aclient=fakes.client()) is None
    assert [name for name, _ in fakes.calls] == ["good"]  # only the routed call went out
    assert [r["kind"] for r in ledger(isolated_env)] == ["ask"]
    assert PendingStore(engine.paths.state_dir).items() == {}
    assert ABTestStore(engine.paths.state_dir).tests() == {}


def test_an_answer_from_outside_the_pair_is_not_sampled(isolated_env):
    fakes = FakeProviders({"good": "x", "bad": "y", "other": "z"})
    engine = _engine_with_sync_fakes(isolated_env, fakes, config_text(["good", "bad", "other"], ab_section()))
    answer = engine.ask(LONG, AskOptions(model="other/m", no_fallback=True))
    assert run_sample(engine, LONG, answer, "ab5", aclient=fakes.client()) is None
    assert [name for name, _ in fakes.calls] == ["other"]


def test_maybe_sample_decides_when_the_options_carry_no_ab_id(isolated_env):
    fakes = FakeProviders({"good": "GOOD", "bad": "meh"})
    engine = _engine_with_sync_fakes(isolated_env, fakes, config_text(["good", "bad"], ab_section(rate=0.5)))
    options = AskOptions(model="good/m", no_fallback=True)
    answer = engine.ask(LONG, options)
    assert maybe_sample(engine, LONG, answer, options, engine.config, Draw(0.99)) is None
    ab_id = maybe_sample(engine, LONG, answer, options, engine.config, Draw(0.0), aclient=fakes.client())
    assert ab_id and ab_id in PendingStore(engine.paths.state_dir).items()


# --- the second call in a background worker --------------------------------------------------------

BUDGET = "budget: {daily: 5}\n"


def _guarded_engine(home, fakes, text):
    from llmroute.budget.guard import guard_for
    from llmroute.paths import Paths

    config = parse_config(text)
    return _engine_with_sync_fakes(home, fakes, text, budget=guard_for(config, Paths(home, home)))


def _reservations(home) -> dict:
    import json

    return json.loads((home / "state" / "budget.json").read_text())["reservations"]


class Spawned:
    """A stand-in worker: a live process we control, started where the real one would be."""

    def __init__(self):
        self.jobs = []
        self.processes = []

    def __call__(self, job, env):
        import subprocess
        import sys

        self.jobs.append(job)
        self.processes.append(subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"]))
        return self.processes[-1].pid

    def kill(self):
        for process in self.processes:
            process.kill()
            process.wait()


def test_start_sample_reserves_here_and_hands_the_reservation_to_the_worker(isolated_env):
    import os
    import stat

    from llmroute.sampling import ConfigFile, start_sample

    fakes = FakeProviders({"good": "GOOD answer", "bad": "weak answer", "j": "judge"})
    engine = _guarded_engine(isolated_env, fakes, config_text(["good", "bad", "j"], ab_section(judge="j/m") + BUDGET))
    answer, _ = routed_answer(engine, "ab6")
    spawned = Spawned()
    try:
        started = start_sample(engine, LONG, answer, "ab6", config_file=ConfigFile("/some/config.yaml"),
                               spawn=spawned)
        assert started.target == T("bad/m") and started.pid == spawned.processes[0].pid
        assert [name for name, _ in fakes.calls] == ["good"]  # nothing sent here
        [held] = _reservations(isolated_env).values()
        assert held["target"] == "bad/m" and held["pid"] == started.pid != os.getpid()
        [job] = spawned.jobs
        assert stat.S_IMODE(job.stat().st_mode) == 0o600 and job.parent == isolated_env / "state" / "sampled"
        import json

        data = json.loads(job.read_text())
        assert (data["ab_id"], data["other"], data["judge"]) == ("ab6", "bad/m", "j/m")
        assert data["config"] == {"path": "/some/config.yaml", "project": False}
        assert data["routed"]["text"] == "GOOD answer" and data["handle"]["target"] == "bad/m"
    finally:
        spawned.kill()
    # A killed worker's reservation expires as any dead process's does.
    engine.budget.snapshot()
    assert _reservations(isolated_env) == {}


def test_the_worker_sends_under_the_handed_over_reservation_and_settles_it(isolated_env):
    from llmroute.sampling import ConfigFile, read_job, resume_sample, start_sample

    fakes = FakeProviders({"good": "GOOD answer", "bad": "weak answer", "j": "judge"})
    text = config_text(["good", "bad", "j"], ab_section(judge="j/m") + BUDGET)
    engine = _guarded_engine(isolated_env, fakes, text)
    answer, _ = routed_answer(engine, "ab7")
    spawned = Spawned()
    try:
        start_sample(engine, LONG, answer, "ab7", config_file=ConfigFile(None), spawn=spawned)
        job = read_job(spawned.jobs[0])
        assert not spawned.jobs[0].exists()  # read once, then gone
        worker = _guarded_engine(isolated_env, fakes, text)
        outcome = resume_sample(worker, job, aclient=fakes.client())
    finally:
        spawned.kill()
    assert outcome.other.target == T("bad/m") and outcome.outcome == "a"
    records = ledger(isolated_env)
    assert sorted(r["kind"] for r in records) == ["abtest", "ask", "judge", "judge"]
    assert {r["ab_id"] for r in records} == {"ab7"}
    [second] = [r for r in records if r["kind"] == "abtest"]
    assert second["request_id"] == job["request_id"]
    assert _reservations(isolated_env) == {}  # settled, not left to expire
    prompts = [p for name, p in fakes.calls if name in ("good", "bad")]
    assert prompts[0] == prompts[1]


def test_start_sample_sends_nothing_when_the_budget_refuses(isolated_env):
    from llmroute.sampling import ConfigFile, start_sample

    fakes = FakeProviders({"good": "GOOD answer", "bad": "weak answer"})
    engine = _engine_with_sync_fakes(isolated_env, fakes, config_text(["good", "bad"], ab_section()),
                                     budget=FakeBudget(refuse={"bad/m"}))
    answer, _ = routed_answer(engine, "ab8")
    spawned = Spawned()
    assert start_sample(engine, LONG, answer, "ab8", config_file=ConfigFile(None), spawn=spawned) is None
    assert spawned.jobs == []


def test_a_failed_spawn_releases_the_reservation_and_removes_the_job(isolated_env):
    import pytest

    from llmroute.sampling import ConfigFile, start_sample

    fakes = FakeProviders({"good": "GOOD answer", "bad": "weak answer"})
    engine = _guarded_engine(isolated_env, fakes, config_text(["good", "bad"], ab_section() + BUDGET))
    answer, _ = routed_answer(engine, "ab9")

    def cannot(job, env):
        raise OSError("no processes left")

    with pytest.raises(OSError):
        start_sample(engine, LONG, answer, "ab9", config_file=ConfigFile(None), spawn=cannot)
    assert _reservations(isolated_env) == {}
    assert list((isolated_env / "state" / "sampled").iterdir()) == []


def test_the_worker_reads_a_project_config_only_while_it_is_still_trusted(tmp_path, isolated_env):
    from llmroute.paths import Paths
    from llmroute.sampling import ConfigFile
    from llmroute.sampling_worker import load_job_config

    from .support import project_config

    text = config_text(["good", "bad"], ab_section())
    path = project_config(tmp_path).write_text(text)
    paths = Paths(isolated_env, isolated_env)
    spec = ConfigFile.of(_loaded(None, tmp_path, paths), None, {}, tmp_path, paths)
    assert spec == ConfigFile(str(path), True)
    named = ConfigFile.of(_loaded(str(path), tmp_path, paths), str(path), {}, tmp_path, paths)
    assert named == ConfigFile(str(path), False)  # `--config` is the user's own choice: no trust needed
    assert set(load_job_config(spec.__dict__, {}, paths).providers) == {"good", "bad"}
    path.write_text(text + "# edited after the user's process read it\n")
    assert load_job_config(spec.__dict__, {}, paths) is None


def _loaded(explicit, cwd, paths):
    from llmroute.config.defaults import discover_and_load

    return discover_and_load(explicit, {}, cwd, paths)
