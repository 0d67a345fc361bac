"""The budget guard: reservations against every limit, settle/release, expiry, alerts, index."""

from __future__ import annotations

import json
import subprocess
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from llmroute.budget.alerts import fire_alert
from llmroute.budget.guard import BudgetGuard, guard_for
from llmroute.config.load import parse_config
from llmroute.config.model import AlertsConfig
from llmroute.engine import AskOptions, Engine
from llmroute.errors import BudgetError
from llmroute.keys import KeyStore
from llmroute.ledger import Ledger, make_ts
from llmroute.paths import Paths
from llmroute.types import Message, Request, Target

BERLIN = ZoneInfo("Europe/Berlin")
PROVIDERS = """\
version: 1
defaults: {strategy: priority}
providers:
  paid:
    type: mock
    priority: 90
    models:
      m: {input: 1000000, output: 1000000}
  other:
    type: mock
    priority: 80
    models:
      m: {input: 1000000, output: 1000000}
  local:
    type: ollama
    priority: 10
    models:
      llama3.2: {}
routes:
  default: [paid/m, other/m, local/llama3.2]
"""
PAID, OTHER, LOCAL = Target("paid", "m"), Target("other", "m"), Target("local", "llama3.2")


class Clock:
    def __init__(self, *when):
        self.now = datetime(*when, tzinfo=BERLIN).timestamp()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def paths(tmp_path) -> Paths:
    return Paths(data_dir=tmp_path / "data", config_dir=tmp_path)


def config(budget: str, alerts: str = ""):
    return parse_config(PROVIDERS + "budget:\n  timezone: Europe/Berlin\n" + budget + alerts)


def guard(paths, budget, clock, alerts="", **kw) -> BudgetGuard:
    kw.setdefault("warn", lambda message: None)
    return BudgetGuard(config(budget, alerts), paths, clock=clock, **kw)


def provider(g: BudgetGuard, target: Target):
    return g.config.providers[target.provider]


def reserve(g, target, usd, tokens=10):
    return g.reserve(target, provider(g, target), usd, tokens)


def call(g, target, worst, cost, tokens=10, *, settle=True):
    """What the engine does: reserve, append the ledger line, settle."""
    handle = reserve(g, target, worst, tokens)
    assert handle is not None
    Ledger(g.ledger).append({
        "ts": make_ts(g.clock()), "status": "ok", "target": target.id, "provider": target.provider,
        "cost_usd": cost, "input_tokens": tokens // 2, "output_tokens": tokens - tokens // 2,
        "price_source": "config"})
    if settle:
        g.settle(handle, cost, tokens)
    return handle


def used(g) -> tuple[float, float]:
    state = g.snapshot().states[0]
    return state.spent, state.reserved


def test_no_limits_means_no_guard(paths):
    assert guard_for(parse_config(PROVIDERS), paths) is None
    assert guard_for(config("  daily: 5\n"), paths) is not None


def test_open_reservations_count_against_the_limit(paths):
    g = guard(paths, "  daily: 5\n", Clock(2025, 1, 31, 12))
    first, second = reserve(g, PAID, 2.0), reserve(g, PAID, 2.0)
    assert first is not None and second is not None
    assert reserve(g, PAID, 2.0) is None  # 2 + 2 + 2 > 5
    assert reserve(g, PAID, 1.0) is not None  # exactly 5 is allowed
    g.release(first)
    assert reserve(g, PAID, 2.0) is not None


def test_settle_replaces_the_reservation_by_the_actual_cost(paths):
    g = guard(paths, "  daily: 5\n", Clock(2025, 1, 31, 12))
    call(g, PAID, worst=3.0, cost=1.25)
    assert used(g) == (1.25, 0.0)
    assert reserve(g, PAID, 3.75) is not None
    assert reserve(g, PAID, 0.01) is None


def test_a_call_is_never_counted_twice_or_not_at_all(paths):
    """Between the engine's ledger append and its settle, another process sees the call once:
    as its reservation; after settle, once: as its ledger line."""
    clock = Clock(2025, 1, 31, 12)
    writer, reader = guard(paths, "  daily: 5\n", clock), guard(paths, "  daily: 5\n", clock)
    handle = call(writer, PAID, worst=3.0, cost=1.0, settle=False)
    assert used(reader) == (0.0, 3.0)  # line pending, reservation counted
    writer.settle(handle, 1.0, 10)
    assert used(reader) == (1.0, 0.0)
    call(reader, PAID, worst=2.0, cost=2.0)
    assert used(writer) == (3.0, 0.0)


def test_a_line_with_no_matching_settle_is_counted_when_its_reservation_goes(paths):
    clock = Clock(2025, 1, 31, 12)
    g = guard(paths, "  daily: 5\n", clock)
    handle = reserve(g, PAID, 3.0)
    Ledger(g.ledger).append({"ts": make_ts(clock()), "status": "ok", "target": "paid/m",
                             "provider": "paid", "cost_usd": 0.5, "input_tokens": 1,
                             "output_tokens": 1, "price_source": "config"})
    assert used(g) == (0.0, 3.0)
    g.release(handle)  # e.g. an unguarded writer's line, or a settle that never came
    assert used(g) == (0.5, 0.0)


def test_per_provider_limit_blocks_only_that_provider(paths):
    g = guard(paths, "  daily: 100\n  per_provider: {paid: {daily: 1.0}}\n", Clock(2025, 1, 31, 12))
    call(g, PAID, worst=0.8, cost=0.8)
    assert reserve(g, PAID, 0.5) is None
    assert reserve(g, OTHER, 0.5) is not None
    reason = g.plan_filter()(PAID, provider(g, PAID), 0.5, 10)
    assert reason.startswith("budget: paid daily $1.00 would be exceeded (resets 00:00 Europe/Berlin")


def test_token_limits_daily_and_monthly(paths):
    clock = Clock(2025, 1, 30, 12)
    g = guard(paths, "  tokens_daily: 100\n  tokens_monthly: 150\n", clock)
    call(g, PAID, worst=0.0, cost=0.0, tokens=90)
    assert reserve(g, PAID, 0.0, tokens=20) is None  # daily tokens
    clock.now += 86400
    assert reserve(g, PAID, 0.0, tokens=70) is None  # the month still holds 90
    handle = reserve(g, PAID, 0.0, tokens=60)
    assert handle is not None
    reason = g.plan_filter()(OTHER, provider(g, OTHER), 0.0, 10)
    assert reason.startswith("budget: tokens_monthly 150 reached (resets Sat 2025-02-01 00:00")


def test_spend_moves_out_of_the_daily_window_at_midnight(paths):
    clock = Clock(2025, 2, 2, 23, 0)  # Sunday
    g = guard(paths, "  daily: 5\n  weekly: 8\n  monthly: 100\n", clock)
    call(g, PAID, worst=4.0, cost=4.0)
    clock.now = datetime(2025, 2, 3, 0, 30, tzinfo=BERLIN).timestamp()  # Monday: new day, new week
    states = {s.spec.field: s.spent for s in g.snapshot().states}
    assert states == {"daily": 0.0, "weekly": 0.0, "monthly": 4.0}


def test_stale_reservations_expire_dead_pid_and_age(paths):
    clock = Clock(2025, 1, 31, 12)
    dead = guard(paths, "  daily: 5\n", clock, pid=4242)
    assert reserve(dead, PAID, 4.0) is not None
    alive = {4242: True}
    g = guard(paths, "  daily: 5\n", clock, alive=lambda pid: alive.get(pid, True))
    assert reserve(g, PAID, 4.0) is None
    alive[4242] = False  # the owner was killed
    kept = reserve(g, PAID, 4.0)
    assert kept is not None
    assert reserve(g, PAID, 4.0) is None
    clock.now += 601  # abandoned past the age limit even though our pid lives
    assert reserve(g, PAID, 4.0) is not None


def test_on_exhaust_free_keeps_only_free_targets_in_the_plan(paths):
    clock = Clock(2025, 1, 31, 12)
    g = guard(paths, "  daily: 0.00002\n  on_exhaust: free\n", clock)
    engine = Engine(g.config, paths=paths, keys=KeyStore({}), clock=clock, budget=g)
    request = Request(messages=(Message("user", "hello"),), max_tokens=100)
    plan = engine.plan(request, AskOptions())
    assert [c.target for c in plan.candidates] == [LOCAL]
    reasons = {e.target: e.reason for e in plan.excluded}
    assert reasons[PAID].startswith("budget: daily $0.00002 would be exceeded (resets 00:00 Europe/Berlin")
    assert OTHER in reasons
    assert g.exhausted_error(plan) is not None  # if the free target fails too, exit 4 explains
    assert reserve(g, LOCAL, 0.0) is not None


def test_block_refuses_everything_with_limit_and_reset(paths):
    clock = Clock(2025, 1, 31, 21, 30)
    g = guard(paths, "  daily: 0.00002\n  on_exhaust: block\n", clock)
    engine = Engine(g.config, paths=paths, keys=KeyStore({}), clock=clock, budget=g)
    request = Request(messages=(Message("user", "hello"),), max_tokens=100)
    plan = engine.plan(request, AskOptions())
    assert plan.candidates == ()
    assert all(e.reason.startswith("budget:") for e in plan.excluded)
    with pytest.raises(BudgetError) as info:
        engine.ask(request, AskOptions())
    error = info.value
    assert error.exit_code == 4
    assert "daily $0.00002" in error.message and "resets 00:00 Europe/Berlin, in 2h 30m" in error.message


def test_block_allows_free_targets_while_budget_remains(paths):
    """...and refuses them once even the cheapest paid call of this size would not fit."""
    g = guard(paths, "  daily: 5\n  on_exhaust: block\n", Clock(2025, 1, 31, 12))
    assert reserve(g, LOCAL, 0.0, tokens=4) is not None  # 4 tokens at $1 would fit
    assert reserve(g, LOCAL, 0.0, tokens=6) is None
    call(g, PAID, worst=5.0, cost=5.0, tokens=2)
    assert reserve(g, LOCAL, 0.0, tokens=1) is None


def test_engine_refusal_at_reserve_time_is_exit_4(paths):
    """Another process took the budget between planning and reserving."""
    clock = Clock(2025, 1, 31, 12)
    g = guard(paths, "  daily: 0.0002\n  on_exhaust: block\n", clock)
    engine = Engine(g.config, paths=paths, keys=KeyStore({}), clock=clock, budget=g)
    request = Request(messages=(Message("user", "hello"),), max_tokens=10)
    plan = engine.plan(request, AskOptions(model="paid/m", no_fallback=True))
    other = guard(paths, "  daily: 0.0002\n", clock)
    assert reserve(other, PAID, 0.0002) is not None
    with pytest.raises(BudgetError):
        engine.ask(request, AskOptions(), plan=plan)


def test_used_fraction_is_the_tightest_window(paths):
    g = guard(paths, "  daily: 10\n  weekly: 4\n", Clock(2025, 1, 31, 12))
    assert g.used_fraction() == 0.0
    call(g, PAID, worst=1.0, cost=1.0)
    assert g.used_fraction() == pytest.approx(0.25)


def test_alert_fires_once_per_window_across_guards(paths):
    clock = Clock(2025, 1, 31, 12)
    runs, warnings = [], []

    def run(command, **kw):
        runs.append(kw["env"])
        return subprocess.CompletedProcess(command, 0)

    alerts = "alerts: {command: 'notify'}\n"
    budget = "  daily: 10\n  alert_at: [0.5, 0.8]\n"
    first = guard(paths, budget, clock, alerts, run=run, warn=warnings.append, env={"PATH": "/bin"})
    second = guard(paths, budget, clock, alerts, run=run, warn=warnings.append, env={"PATH": "/bin"})
    call(first, PAID, worst=6.0, cost=6.0)
    call(second, PAID, worst=1.0, cost=1.0)
    assert len(runs) == 1 and len(warnings) == 1
    env = runs[0]
    assert env["LLMROUTE_ALERT_KIND"] == "budget" and env["LLMROUTE_ALERT_FRACTION"] == "0.5"
    assert env["LLMROUTE_ALERT_LIMIT"] == "daily $10.00" and env["LLMROUTE_ALERT_SPENT"] == "6.0"
    assert "50% of the daily $10.00 limit used" in env["LLMROUTE_ALERT_MESSAGE"]
    call(second, PAID, worst=1.5, cost=1.5)  # 85%: jumps past 0.8 once
    call(first, PAID, worst=0.5, cost=0.5)
    assert [r["LLMROUTE_ALERT_FRACTION"] for r in runs] == ["0.5", "0.8"]
    clock.now += 86400  # a new day: fires again
    call(first, PAID, worst=6.0, cost=6.0)
    assert [r["LLMROUTE_ALERT_FRACTION"] for r in runs] == ["0.5", "0.8", "0.5"]


def test_webhook_failure_is_a_warning_and_never_fails_the_call(paths):
    warnings, posted = [], []

    def post(url, **kw):
        posted.append(json.loads(kw["content"]))
        raise OSError("connection refused")

    g = guard(paths, "  daily: 1\n  alert_at: [0.5]\n", Clock(2025, 1, 31, 12),
              "alerts: {webhook: 'http://127.0.0.1:9/hook'}\n", post=post, warn=warnings.append)
    call(g, PAID, worst=0.6, cost=0.6)
    assert posted[0]["kind"] == "budget" and posted[0]["fraction"] == "0.5"
    assert warnings[-1] == "alert webhook failed: OSError"


def test_fire_alert_command_failures_are_warnings():
    warnings = []

    def timeout(command, **kw):
        raise subprocess.TimeoutExpired(command, 10)

    fire_alert(AlertsConfig(command="sleep 100"), "down", "m", {}, warnings.append, run=timeout)
    fire_alert(AlertsConfig(command="false"), "down", "m", {"provider": "x"}, warnings.append,
               run=lambda c, **kw: subprocess.CompletedProcess(c, 3))
    assert warnings == ["alert command timed out after 10 s", "alert command exited 3"]


def test_index_reads_only_new_bytes_and_rebuilds_when_the_ledger_is_replaced(paths):
    clock = Clock(2025, 1, 31, 12)
    g = guard(paths, "  daily: 50\n", clock)
    call(g, PAID, worst=2.0, cost=2.0)
    offset = g.store.read()["spend"]["offset"]
    assert offset == g.ledger.stat().st_size
    call(g, PAID, worst=3.0, cost=3.0)
    assert used(g)[0] == 5.0
    g.ledger.unlink()
    Ledger(g.ledger).append({"ts": make_ts(clock()), "status": "ok", "target": "paid/m",
                             "provider": "paid", "cost_usd": 1.0, "input_tokens": 1,
                             "output_tokens": 1, "price_source": "config"})
    assert used(g)[0] == 1.0  # replaced (new inode, smaller): rebuilt from byte 0


def test_corrupt_state_is_rebuilt_from_the_ledger(paths):
    clock = Clock(2025, 1, 31, 12)
    g = guard(paths, "  daily: 50\n", clock)
    call(g, PAID, worst=2.0, cost=2.0)
    g.store.path.write_text("{not json")
    assert used(g)[0] == 2.0


def test_unreadable_ledger_lines_are_skipped(paths):
    g = guard(paths, "  daily: 50\n", Clock(2025, 1, 31, 12))
    g.ledger.parent.mkdir(parents=True, exist_ok=True)
    g.ledger.write_text('garbage\n{"ts": "nope", "status": "ok", "cost_usd": 9}\n[1]\n')
    call(g, PAID, worst=2.0, cost=2.0)
    assert used(g)[0] == 2.0
