"""compare: identical concurrent requests, one record each with a shared compare_id, budget
reserved per target (skipped ones shown), failures reported, pairwise ranking."""

from __future__ import annotations

import asyncio

from llmroute.compare import Caller, acompare, run_compare
from llmroute.types import Message, Request, Target

from .abtest_support import FakeBudget, FakeProviders, config_text, ledger, make_engine

REQUEST = Request(messages=(Message("user", "What is a monad?"),), system="be brief", max_tokens=50)
T = Target.parse


def test_every_target_gets_the_identical_request_and_one_record(isolated_env):
    fakes = FakeProviders({"p1": "one", "p2": "two GOOD", "p3": "three"})
    engine = make_engine(isolated_env, config_text(["p1", "p2", "p3"]))
    outcome = run_compare(engine, REQUEST, [T("p1/m"), T("p2/m"), T("p3/m")], aclient=fakes.client())
    assert [r.status for r in outcome.results] == ["ok", "ok", "ok"]
    assert [r.text for r in outcome.results] == ["one", "two GOOD", "three"]
    assert len({prompt for _, prompt in fakes.calls}) == 1  # identical request to all
    records = ledger(isolated_env)
    assert len(records) == 3
    assert {r["kind"] for r in records} == {"compare"}
    assert {r["compare_id"] for r in records} == {outcome.compare_id}
    assert len({r["request_id"] for r in records}) == 3
    first = outcome.results[0]
    assert (first.input_tokens, first.output_tokens) == (10, 5)
    assert first.cost_usd == (10 * 1.0 + 5 * 2.0) / 1_000_000
    assert records[0]["cost_usd"] == first.cost_usd and records[0]["price_source"] == "config"


def test_calls_run_concurrently_on_one_client(isolated_env):
    import httpx

    engine = make_engine(isolated_env, config_text(["p1", "p2", "p3"]))
    state = {"active": 0, "peak": 0}

    async def slow(request: httpx.Request) -> httpx.Response:
        state["active"] += 1
        state["peak"] = max(state["peak"], state["active"])
        await asyncio.sleep(0.01)
        state["active"] -= 1
        return httpx.Response(200, json={"choices": [{"message": {"content": "x"}, "finish_reason": "stop"}],
                                         "usage": {"prompt_tokens": 1, "completion_tokens": 1}})

    async def go():
        async with httpx.AsyncClient(transport=httpx.MockTransport(slow)) as client:
            caller = Caller(engine, client)
            prepared = [caller.prepare(T(f"{n}/m"), REQUEST, kind="compare", extra={}) for n in ("p1", "p2", "p3")]
            return await asyncio.gather(*(caller.send(p) for p in prepared))

    results = asyncio.run(go())
    assert all(r.ok for r in results) and state["peak"] == 3


def test_budget_is_reserved_per_target_and_refused_targets_are_skipped(isolated_env):
    fakes = FakeProviders({"p1": "one", "p2": "two"})
    budget = FakeBudget(refuse={"p2/m"})
    engine = make_engine(isolated_env, config_text(["p1", "p2"]), budget=budget)
    outcome = run_compare(engine, REQUEST, [T("p1/m"), T("p2/m")], aclient=fakes.client())
    skipped = outcome.results[1]
    assert skipped.status == "skipped" and "budget" in skipped.message
    assert [name for name, _ in fakes.calls] == ["p1"]  # never sent
    assert budget.reserved == ["p1/m"] and budget.settled == [("p1/m", outcome.results[0].cost_usd)]
    assert [r["target"] for r in ledger(isolated_env)] == ["p1/m"]
    assert outcome.any_ok


def test_a_failing_target_is_an_error_record_and_its_reservation_is_released(isolated_env):
    fakes = FakeProviders({"p1": 500, "p2": 500})
    budget = FakeBudget()
    engine = make_engine(isolated_env, config_text(["p1", "p2"]), budget=budget)
    outcome = run_compare(engine, REQUEST, [T("p1/m"), T("p2/m")], aclient=fakes.client())
    assert [r.status for r in outcome.results] == ["error", "error"]
    assert outcome.results[0].error == "server_error"
    assert not outcome.any_ok
    assert sorted(budget.released) == ["p1/m", "p2/m"] and budget.settled == []
    records = ledger(isolated_env)
    assert [r["status"] for r in records] == ["error", "error"] and records[0]["http_status"] == 500


def test_unknown_targets_and_missing_keys_are_skipped(isolated_env):
    text = config_text(["p1"]) + "  paid:\n    type: openai\n    models:\n      m: {}\n"
    engine = make_engine(isolated_env, text)
    outcome = run_compare(engine, REQUEST, [T("nope/m"), T("paid/m")], aclient=FakeProviders({}).client())
    assert [(r.status, r.message) for r in outcome.results] == [("skipped", "unknown target"), ("skipped", "no key")]


def test_judge_ranks_answers_pairwise_and_records_judge_calls(isolated_env):
    fakes = FakeProviders({"p1": "meh", "p2": "GOOD stuff", "p3": "meh too", "j": "judge"})
    engine = make_engine(isolated_env, config_text(["p1", "p2", "p3", "j"]))
    outcome = asyncio.run(acompare(engine, REQUEST, [T("p1/m"), T("p2/m"), T("p3/m")], judge=T("j/m"),
                                   aclient=fakes.client()))
    ranking = outcome.ranking
    assert ranking[0].target == T("p2/m") and ranking[0].wins == 2 and ranking[0].points == 2
    assert {(r.wins, r.losses, r.ties) for r in ranking[1:]} == {(0, 1, 1)}
    judge_records = [r for r in ledger(isolated_env) if r["kind"] == "judge"]
    assert len(judge_records) == 6  # 3 pairs x 2 orders
    assert {r["compare_id"] for r in judge_records} == {outcome.compare_id}
