"""`llmroute batch`: input parsing, ordering under varied latencies, resume, budget stop,
JSONL system/model, cancellation, and the async fallback loop's equivalence with the sync one."""

from __future__ import annotations

import asyncio
import io
import json
import random
from pathlib import Path

import pytest

from llmroute.batch import (NOT_RUN_BUDGET, BatchItem, BatchRunner, BatchSettings, OrderedWriter,
                            Progress, done_ids, pending_items)
from llmroute.prompt_input import parse_prompt_lines as parse_items
from llmroute.config.load import load_config
from llmroute.engine import AskOptions, Engine
from llmroute.engine_async import AsyncEngine, arun_with_fallback
from llmroute.errors import ErrorClass, ProviderError, UsageError
from llmroute.keys import KeyStore
from llmroute.paths import Paths
from llmroute.resilience import RetryPolicy, run_with_fallback
from llmroute.routing.plan import Candidate
from llmroute.types import Result, Target, Usage

from .test_cli_ask import invoke
from .support import project_config

CONFIG = """\
version: 1
providers:
  demo:
    type: mock
    reply: "echo: {prompt}"
    models:
      small: {input: 1.0, output: 2.0}
      large: {input: 1.0, output: 2.0, tier: large}
routes:
  default: [demo/small]
  strong: [demo/large]
defaults:
  strategy: priority
"""


class GatedProvider:
    """A provider whose answers finish only when the test opens each prompt's gate, so the
    completion order is chosen by the test, not by timing."""

    supports_stream = False

    def __init__(self):
        self.gates: dict[str, asyncio.Event] = {}
        self.seen: list[tuple[str, str | None, str]] = []

    def gate(self, prompt: str) -> asyncio.Event:
        return self.gates.setdefault(prompt, asyncio.Event())

    async def acomplete(self, request, model, *, timeout):
        prompt = request.messages[0].content
        self.seen.append((prompt, request.system, model))
        await self.gate(prompt).wait()
        return Result(text=f"answer {prompt}", usage=Usage(3, 4))


@pytest.fixture
def engine(tmp_path, isolated_env):
    path = tmp_path / "llmroute.yaml"
    path.write_text(CONFIG)
    config = load_config(path)
    return Engine(config, paths=Paths(data_dir=isolated_env, config_dir=isolated_env), keys=KeyStore({}))


def settings(**kw) -> BatchSettings:
    base = dict(options=AskOptions(), system=None, max_tokens=100, temperature=None, concurrency=4)
    return BatchSettings(**{**base, **kw})


def runner(engine, items, provider=None, **kw):
    out = io.StringIO()
    aengine = AsyncEngine(engine, aclient=None)
    if provider is not None:
        aengine.provider = lambda name: provider  # the test double answers for every target
    run = BatchRunner(aengine, items, settings(**kw), OrderedWriter(out, len(items)),
                      Progress(None, len(items), lambda: 0.0))
    return run, out


def lines(out: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def ledger(home: Path) -> list[dict]:
    return [json.loads(line) for line in (home / "ledger.jsonl").read_text().splitlines()]


# --- input ---------------------------------------------------------------------------------


def test_text_lines_get_their_line_number_as_id_and_blank_lines_are_skipped():
    items = parse_items("first\n\nsecond\n")
    assert items == [BatchItem(1, "first"), BatchItem(3, "second")]


def test_jsonl_items_carry_id_system_and_model():
    items = parse_items('{"id": "a", "prompt": "hi", "system": "be brief", "model": "strong"}\n{"prompt": "yo"}\n')
    assert items == [BatchItem("a", "hi", "be brief", "strong"), BatchItem(2, "yo")]


@pytest.mark.parametrize("text, message", [
    ("", "no prompts"),
    ('{"prompt": "a"}\nnot json\n', "line 2: not valid JSON"),
    ('{"id": 1, "prompt": "a"}\n{"id": 1, "prompt": "b"}\n', "duplicate id"),
    ('{"prompt": ""}\n', "non-empty string"),
    ('{"prompt": "a", "colour": 1}\n', "unknown field"),
    ('{"prompt": "a", "id": [1]}\n', "string or an integer"),
    ('[1]\n', None),
])
def test_bad_input_is_a_usage_error_naming_the_line(text, message):
    if message is None:  # a JSON array line is just a text prompt
        assert parse_items(text)[0].prompt == "[1]"
        return
    with pytest.raises(UsageError) as error:
        parse_items(text)
    assert message in str(error.value)


def test_done_ids_count_only_answered_lines_and_ignore_a_torn_tail():
    text = '{"id": 1, "error": null}\n{"id": 2, "error": "boom"}\n{"id": "x", "error": null}\n{"id": 3, "te'
    assert done_ids(text) == {"1", '"x"'}
    items = [BatchItem(1, "a"), BatchItem(2, "b"), BatchItem("x", "c"), BatchItem(3, "d")]
    assert [i.id for i in pending_items(items, done_ids(text))] == [2, 3]


# --- ordering --------------------------------------------------------------------------------


def test_results_are_written_in_input_order_as_soon_as_the_next_one_is_ready(engine, isolated_env):
    provider = GatedProvider()
    items = [BatchItem(i, f"p{i}") for i in range(1, 6)]
    run, out = runner(engine, items, provider, concurrency=5)

    async def scenario():
        task = asyncio.create_task(run.run())
        await _until(lambda: len(provider.seen) == 5)
        for prompt in ("p5", "p3", "p2"):  # later prompts finish first
            provider.gate(prompt).set()
        await _until(lambda: run.summary.ok == 3)
        assert out.getvalue() == ""  # p1 is not done: nothing may be written yet
        provider.gate("p1").set()
        await _until(lambda: run.summary.ok == 4)
        assert [r["id"] for r in lines(out)] == [1, 2, 3]  # p4 still pending, p5 waits for it
        provider.gate("p4").set()
        return await task

    summary = asyncio.run(scenario())
    assert summary.exit_code == 0
    results = lines(out)
    assert [r["id"] for r in results] == [1, 2, 3, 4, 5]
    assert results[0] == {"id": 1, "text": "answer p1", "target": "demo/small",
                          "usage": {"input_tokens": 3, "output_tokens": 4},
                          "cost_usd": pytest.approx(3e-6 + 8e-6), "error": None, "cached": False}
    records = ledger(isolated_env)
    assert len(records) == 5 and {r["kind"] for r in records} == {"batch"}
    assert len({r["batch_id"] for r in records}) == 1


def test_mock_provider_runs_through_the_thread_fallback_in_order(tmp_path, isolated_env):
    path = tmp_path / "c.yaml"
    path.write_text(CONFIG.replace('reply: "echo: {prompt}"', 'reply: "echo: {prompt}"\n    latency_ms: 5'))
    config = load_config(path)
    engine = Engine(config, paths=Paths(data_dir=isolated_env, config_dir=isolated_env), keys=KeyStore({}),
                    sleep=lambda seconds: None)
    items = [BatchItem(i, f"p{i}") for i in (1, 2, 3)]
    run, out = runner(engine, items, concurrency=3)
    assert asyncio.run(run.run()).exit_code == 0
    assert [(r["id"], r["text"]) for r in lines(out)] == [(1, "echo: p1"), (2, "echo: p2"), (3, "echo: p3")]


def test_jsonl_system_and_model_reach_the_provider_and_the_plan(engine):
    provider = GatedProvider()
    items = parse_items('{"id": "a", "prompt": "pa", "system": "own", "model": "strong"}\n{"id": "b", "prompt": "pb"}\n')
    run, out = runner(engine, items, provider, system="global")
    for prompt in ("pa", "pb"):
        provider.gate(prompt).set()
    asyncio.run(run.run())
    assert sorted(provider.seen) == [("pa", "own", "large"), ("pb", "global", "small")]
    assert [(r["id"], r["target"]) for r in lines(out)] == [("a", "demo/large"), ("b", "demo/small")]


def test_a_failed_prompt_is_an_error_line_and_exit_1(engine):
    class Failing(GatedProvider):
        async def acomplete(self, request, model, *, timeout):
            if request.messages[0].content == "bad":
                raise ProviderError(ErrorClass.BAD_REQUEST, "nope", http_status=400)
            return Result(text="fine", usage=Usage(1, 1))

    run, out = runner(engine, [BatchItem(1, "ok"), BatchItem(2, "bad")], Failing())
    summary = asyncio.run(run.run())
    results = lines(out)
    assert results[0]["error"] is None and "refused as invalid" in results[1]["error"]
    assert summary.exit_code == 1 and summary.failed == 1


# --- budget ----------------------------------------------------------------------------------


class StingyBudget:
    """A BudgetGuard that allows `k` reservations, then refuses every one."""

    def __init__(self, k: int):
        self.k = k
        self.reserved = 0
        self.settled: list[float] = []

    def plan_filter(self):
        return None

    def used_fraction(self):
        return 0.0

    def reserve(self, target, provider, worst_case_usd, worst_case_tokens):
        if self.reserved >= self.k:
            return None
        self.reserved += 1
        return self.reserved

    def settle(self, handle, cost_usd, tokens):
        self.settled.append(cost_usd)

    def release(self, handle):
        pass

    def exhausted_error(self, plan):
        return None


def test_budget_refusal_stops_new_prompts_and_reports_the_rest_as_not_run(engine, isolated_env):
    engine.budget = StingyBudget(k=3)
    items = [BatchItem(i, f"p{i}") for i in range(1, 9)]
    run, out = runner(engine, items, concurrency=1)
    summary = asyncio.run(run.run())
    results = lines(out)
    assert [r["id"] for r in results] == list(range(1, 9))
    assert [r["error"] for r in results[:3]] == [None] * 3
    assert all(r["error"] == NOT_RUN_BUDGET for r in results[3:])
    assert summary.exit_code == 4 and summary.not_run == 5
    assert len(ledger(isolated_env)) == 3 and len(engine.budget.settled) == 3


# --- resume and interruption -----------------------------------------------------------------


def test_cancellation_writes_every_finished_result_and_reports_interrupted(engine):
    provider = GatedProvider()
    items = [BatchItem(i, f"p{i}") for i in range(1, 5)]
    run, out = runner(engine, items, provider, concurrency=4)

    async def scenario():
        task = asyncio.create_task(run.run())
        await _until(lambda: len(provider.seen) == 4)
        provider.gate("p1").set()
        provider.gate("p3").set()
        await _until(lambda: run.summary.ok == 2)
        task.cancel()  # what asyncio.run does on Ctrl-C
        return await task

    summary = asyncio.run(scenario())
    assert summary.interrupted and summary.exit_code == 130
    assert [r["id"] for r in lines(out)] == [1, 3]  # p3 waited for p2, written on interrupt


def test_cli_resume_skips_answered_ids_and_appends(tmp_path, isolated_env):
    project_config(tmp_path).write_text(CONFIG)
    (tmp_path / "in.txt").write_text("a\nb\nc\n")
    out = tmp_path / "out.jsonl"
    out.write_text('{"id": 1, "text": "old", "error": null}\n{"id": 2, "error": "boom"}\n{"id": 3, "te')
    code, stdout, err = invoke(["batch", str(tmp_path / "in.txt"), "--out", str(out), "--resume"])
    assert code == 0, err
    assert stdout == ""
    rows = out.read_text().splitlines()
    assert rows[0].startswith('{"id": 1, "text": "old"')
    assert [json.loads(r)["id"] for r in rows[3:]] == [2, 3]  # torn line closed, 2 and 3 re-run
    assert len(ledger(isolated_env)) == 2


def test_cli_resume_needs_out(tmp_path):
    (tmp_path / "in.txt").write_text("a\n")
    code, _, err = invoke(["batch", str(tmp_path / "in.txt"), "--resume"])
    assert code == 2 and "--out" in err


def test_cli_reads_stdin_and_rejects_an_unknown_model_at_once(tmp_path, isolated_env):
    project_config(tmp_path).write_text(CONFIG)
    code, stdout, _ = invoke(["batch", "-", "-P", "2"], input="x\ny\n")
    assert code == 0 and [json.loads(l)["text"] for l in stdout.splitlines()] == ["echo: x", "echo: y"]
    code, stdout, err = invoke(["batch", "-", "-m", "nosuch"], input="x\n")
    assert code == 2 and stdout == "" and "nosuch" in err


def test_cli_bad_utf8_is_exit_2(tmp_path):
    code, _, err = invoke(["batch", "-"], input=b"\xff\xfe\n")
    assert code == 2 and "UTF-8" in err


def test_progress_bar_shows_done_failed_spend_and_rate():
    stream = io.StringIO()
    ticks = iter([0.0, 2.0])
    from llmroute.batch import BatchSummary

    Progress(stream, 10, lambda: next(ticks)).update(BatchSummary(total=10, ok=3, failed=1, spend_usd=0.5), final=True)
    text = stream.getvalue()
    assert "4/10 done, 1 failed, $0.50, 2.0/s" in text and text.endswith("\n")


# --- the async fallback loop is the sync one's twin ------------------------------------------

SCENARIOS = {
    "first ok": [None],
    "retry then ok": [ErrorClass.SERVER_ERROR, None],
    "move on after auth": [ErrorClass.AUTH, None],
    "stop on bad request": [ErrorClass.BAD_REQUEST],
    "all fail": [ErrorClass.TIMEOUT] * 8,
    "context length skips smaller": [ErrorClass.CONTEXT_LENGTH, None],
}


@pytest.mark.parametrize("name", SCENARIOS)
def test_async_loop_matches_the_sync_loop(name):
    candidates = [Candidate(Target("p", m), "r", context=c) for m, c in (("a", 1000), ("b", 500), ("c", 4000))]
    policy = RetryPolicy(retries=1, max_attempts=4)

    def script():
        outcomes = iter(SCENARIOS[name])
        calls = []

        def attempt(candidate, number):
            calls.append((candidate.target.model, number))
            error = next(outcomes, None)
            if error is not None:
                raise ProviderError(error, "x")
            return candidate.target.model
        return attempt, calls

    sync_attempt, sync_calls = script()
    slept_sync: list[float] = []
    sync = run_with_fallback(candidates, sync_attempt, policy, sleep=slept_sync.append, rng=random.Random(1))
    async_attempt, async_calls = script()
    slept_async: list[float] = []

    async def asleep(delay):
        slept_async.append(delay)

    async def aattempt(candidate, number):
        return async_attempt(candidate, number)

    result = asyncio.run(arun_with_fallback(candidates, aattempt, policy, sleep=asleep, rng=random.Random(1)))
    assert async_calls == sync_calls and slept_async == slept_sync
    assert (result.value, result.stopped, result.exhausted, len(result.failures)) == \
        (sync.value, sync.stopped, sync.exhausted, len(sync.failures))


async def _until(condition, steps: int = 2000) -> None:
    """Yield to the loop until `condition()` holds (bounded by steps, not by time)."""
    for _ in range(steps):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition never held")
