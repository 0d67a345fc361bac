"""The one call life (`calls.Call`): every kind of call is budgeted, priced by one rule and
recorded by one builder."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import httpx
import pytest
import vcr

from llmroute.calls import Call, CallSite
from llmroute.config.load import parse_config
from llmroute.engine import AskOptions, Engine
from llmroute.errors import ErrorClass, ProviderError
from llmroute.keys import KeyStore
from llmroute.paths import Paths
from llmroute.types import Message, Request, Result, Target, Usage

from .support import fake_server, project_config, read_ledger, run_cli

CASSETTES = Path(__file__).resolve().parent.parent / "cassettes" / "openai"


def test_openrouter_streamed_cost_is_the_reported_cost(isolated_env):
    """OpenRouter's `usage.cost` wins over config prices when streaming too (one price rule)."""
    config = parse_config(
        "version: 1\nproviders:\n  openrouter:\n    type: openai\n    preset: openrouter\n"
        "    models:\n      openai/gpt-4o-mini: {input: 100.0, output: 100.0}\n")
    engine = Engine(config, paths=Paths(isolated_env, isolated_env),
                    keys=KeyStore({"OPENROUTER_API_KEY": "sk-or-test"}), client=httpx.Client())
    replay = vcr.VCR(cassette_library_dir=str(CASSETTES), record_mode="none",
                     match_on=["method", "uri"])
    streamed: list[str] = []
    request = Request(messages=(Message("user", "Hi"),), max_tokens=64)
    with replay.use_cassette("openrouter_stream.yaml"):
        answer = engine.ask(request, AskOptions(stream=True), on_text=streamed.append)
    assert "".join(streamed) == "Hi there!"
    assert answer.cost_usd == pytest.approx(0.00095)
    record = read_ledger(isolated_env)[-1]
    assert record["cost_usd"] == pytest.approx(0.00095) and record["price_source"] == "provider"


class _Provider:
    """A provider double whose call raises what the test says."""

    supports_stream = False

    def __init__(self, outcome):
        self.outcome = outcome

    def complete(self, request, model, *, timeout):
        if isinstance(self.outcome, BaseException):
            raise self.outcome
        return self.outcome


class _Budget:
    def __init__(self):
        self.open: dict[int, tuple[float, int]] = {}
        self.settled: list[tuple[float, int]] = []
        self.released = 0

    def reserve(self, target, provider, usd, tokens):
        handle = len(self.open) + len(self.settled) + self.released + 1
        self.open[handle] = (usd, tokens)
        return handle

    def settle(self, handle, usd, tokens):
        del self.open[handle]
        self.settled.append((usd, tokens))

    def release(self, handle):
        del self.open[handle]
        self.released += 1


def _engine(home: Path, budget=None) -> Engine:
    config = parse_config("version: 1\nproviders:\n  p:\n    type: mock\n"
                          "    models:\n      m: {input: 1.0, output: 2.0}\n")
    return Engine(config, paths=Paths(home, home), keys=KeyStore({}), budget=budget)


REQUEST = Request(messages=(Message("user", "hello"),), max_tokens=10)


@pytest.mark.parametrize("outcome, status, error", [
    (Result(text="hi", usage=Usage(4, 6)), "ok", None),
    (ProviderError(ErrorClass.SERVER_ERROR, "boom", http_status=500), "error", "server_error"),
    (KeyboardInterrupt(), "error", "interrupted"),
])
def test_every_ending_records_once_and_settles_or_releases(isolated_env, outcome, status, error):
    budget = _Budget()
    engine = _engine(isolated_env, budget)
    call = Call(engine, CallSite(REQUEST, kind="ask"), Target("p", "m"))
    assert call.reserve(0.5, 100)
    if status == "ok":
        call.send(_Provider(outcome), 5.0)
    else:
        with pytest.raises(type(outcome)):
            call.send(_Provider(outcome), 5.0)
    records = read_ledger(isolated_env)
    assert len(records) == 1 and records[0]["status"] == status and records[0]["error"] == error
    assert budget.open == {}
    if status == "ok":
        assert budget.settled == [(pytest.approx((4 * 1.0 + 6 * 2.0) / 1e6), 10)]
    else:
        assert budget.released == 1 and budget.settled == []


def test_every_kind_of_record_has_the_same_fields(tmp_path, isolated_env):
    """ask, compare, health --deep and a cache hit all come from `records.build_record`."""
    with fake_server("openai", reply="an answer") as url:
        project_config(tmp_path).write_text(
            "version: 1\ndefaults: {retries: 0}\ncache: {enabled: true}\nproviders:\n"
            f"  fake:\n    type: openai\n    base_url: {url}/v1\n"
            "    models:\n      m: {input: 1.0, output: 1.0}\n")
        for args in (["hello"], ["hello"], ["compare", "hello", "-t", "fake/m"], ["health", "--deep"]):
            done = run_cli(args, cwd=tmp_path)
            assert done.returncode == 0, done.stderr
    records = read_ledger(isolated_env)
    kinds = [(r["kind"], r["cached"]) for r in records]
    assert kinds == [("ask", False), ("ask", True), ("compare", False), ("health", False)]
    extras = {"compare_id", "conversation_id"}  # fields a record carries when relevant (SPEC §5)
    shapes = {tuple(k for k in r if k not in extras) for r in records}
    assert len(shapes) == 1, shapes


def test_health_deep_is_refused_by_a_used_up_budget(tmp_path, isolated_env):
    """`health --deep` sends paid prompts: with the daily budget used up and on_exhaust: block,
    nothing is sent and the exit code is 4."""
    log = tmp_path / "server.jsonl"
    with fake_server("openai", log=log) as url:
        project_config(tmp_path).write_text(
            "version: 1\nproviders:\n"
            f"  fake:\n    type: openai\n    base_url: {url}/v1\n"
            "    models:\n      m: {input: 1.0, output: 1.0}\n"
            "budget:\n  daily: 0.01\n  on_exhaust: block\n  alert_at: []\n  timezone: UTC\n")
        isolated_env.mkdir(exist_ok=True)
        now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        (isolated_env / "ledger.jsonl").write_text(json.dumps({
            "v": 1, "ts": now, "request_id": "r1", "kind": "ask", "target": "fake/m",
            "provider": "fake", "model": "m", "attempt": 1, "status": "ok", "cost_usd": 0.02,
            "input_tokens": 10, "output_tokens": 10}) + "\n")
        done = run_cli(["health", "--deep"], cwd=tmp_path)
        assert done.returncode == 4, done.stderr
        assert "blocked by budget" in done.stderr.decode()
        assert not log.exists() or log.read_text() == ""
        assert [r["kind"] for r in read_ledger(isolated_env)] == ["ask"]
        free_probe = run_cli(["health"], cwd=tmp_path)  # listing models costs nothing: allowed
        assert free_probe.returncode == 0, free_probe.stderr


def test_one_provider_cache_per_engine(isolated_env):
    """Sync and async callers get their providers from the engine's one cache."""
    engine = _engine(isolated_env)
    assert engine.provider("p") is engine.provider("p")
    client = httpx.AsyncClient()
    assert engine.async_provider("p", client) is engine.async_provider("p", client)


@pytest.mark.parametrize("error_class", [ErrorClass.EMPTY, ErrorClass.INVALID_OUTPUT])
def test_an_answer_that_cannot_be_used_is_still_charged_and_settled(isolated_env, error_class):
    """`empty` and `invalid_output` answers were billed by the provider: the attempt fails (the
    fallback moves on) but its cost is recorded and settled, never released, so the budget
    counts what was spent."""
    budget = _Budget()
    engine = _engine(isolated_env, budget)
    call = Call(engine, CallSite(REQUEST, kind="ask"), Target("p", "m"))
    assert call.reserve(0.5, 100)
    billed = Result(text="not json", usage=Usage(4, 6))
    with pytest.raises(ProviderError):
        call.send(_Provider(ProviderError(error_class, "unusable", billed=billed)), 5.0)
    record = read_ledger(isolated_env)[0]
    assert record["status"] == "error" and record["error"] == error_class.value
    assert record["cost_usd"] == pytest.approx((4 * 1.0 + 6 * 2.0) / 1e6)
    assert (record["input_tokens"], record["output_tokens"]) == (4, 6)
    assert budget.released == 0 and budget.settled == [(pytest.approx(16 / 1e6), 10)]


def test_the_budget_counts_a_billed_failure_and_not_an_unbilled_one():
    from llmroute.budget.spend import charged
    from llmroute.ledger.reader import SpendCall

    ts = "2026-01-01T00:00:00.000Z"
    billed = SpendCall(ts=ts, status="error", error="empty", cost_usd=0.25, input_tokens=10,
                       output_tokens=5)
    unbilled = SpendCall(ts=ts, status="error", error="server_error", cost_usd=0.0, input_tokens=100,
                         output_tokens=0)
    assert charged(billed) == (250_000_000_000, 15, 15)
    assert charged(unbilled) == (0, 0, 0)
