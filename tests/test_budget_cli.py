"""`llmroute budget`, and the budget seen from `ask`: free fallback, block (exit 4), --max-cost."""

from __future__ import annotations

import json
import time
import unicodedata

import pytest

from llmroute.ledger import Ledger, make_ts

from .test_cli_ask import invoke
from .support import project_config

CONFIG = """\
version: 1
defaults: {strategy: priority}
providers:
  openai:
    type: mock
    reply: "paid answer"
    priority: 90
    models:
      gpt: {input: 1000000, output: 1000000}
  cheap:
    type: mock
    reply: "cheap answer"
    priority: 50
    models:
      small: {input: 1, output: 1}
  anthropic:
    type: mock
    priority: 40
    models:
      claude: {input: 3, output: 15}
  freebie:
    type: mock
    reply: "free answer"
    priority: 10
    models:
      m: {}
routes:
  default: [openai/gpt, cheap/small, freebie/m]
"""


def write(tmp_path, budget: str = "") -> None:
    project_config(tmp_path).write_text(CONFIG + budget)


def spend(home, provider: str, cost: float, tokens: int = 100, **extra) -> None:
    Ledger(home / "ledger.jsonl").append({
        "ts": make_ts(time.time()), "status": "ok", "target": f"{provider}/x", "provider": provider,
        "cost_usd": cost, "input_tokens": tokens, "output_tokens": 0, "price_source": "config", **extra})


def test_budget_box_shows_limits_bars_top_providers_and_ab(tmp_path, isolated_env):
    write(tmp_path, "budget:\n  daily: 5\n  weekly: 20\n  tokens_daily: 50000\n")
    spend(isolated_env, "openai", 1.90, 10000, ab_id="ab1")
    spend(isolated_env, "anthropic", 0.44, 5200, ab_id="ab1")
    spend(isolated_env, "openai", 0.0, 0, status="error")
    code, out, err = invoke(["budget"])
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("┌─ Budget ─") and lines[-1].startswith("└")
    assert len({len(line) for line in lines}) == 1  # a closed box
    assert "Daily:   $2.34 / $5.00   [█████▒▒▒▒▒]  47%" in out
    assert "Weekly:  $2.34 / $20.00  [█▒▒▒▒▒▒▒▒▒]  12%" in out
    assert "Tokens:  15.2K / 50.0K   [███▒▒▒▒▒▒▒]  30%" in out
    assert "Top today: openai $1.90 · anthropic $0.44" in out
    assert "A/B: 1 sampled today" in out


def test_budget_json(tmp_path, isolated_env):
    write(tmp_path, "budget:\n  daily: 5\n  per_provider: {openai: {daily: 3}}\n")
    spend(isolated_env, "openai", 1.5)
    code, out, _ = invoke(["budget", "--json"])
    data = json.loads(out)
    assert code == 0
    assert [(l["scope"], l["limit"], l["spent"], l["fraction"]) for l in data["limits"]] == [
        ("global", "daily", 1.5, 0.3), ("openai", "daily", 1.5, 0.5)]
    assert data["spent"]["daily"] == {"usd": 1.5, "tokens": 100}
    assert data["top_providers"] == [{"provider": "openai", "usd": 1.5, "tokens": 100}]
    assert "resets" in data["limits"][0] and data["ab_sampled_today"] == 0


def test_budget_without_limits_still_shows_spend(tmp_path, isolated_env):
    write(tmp_path)
    spend(isolated_env, "openai", 0.75)
    code, out, _ = invoke(["budget"])
    assert code == 0
    assert "No limits set" in out
    assert "Daily:   $0.75 spent today" in out and "Monthly: $0.75 spent this month" in out


def test_on_exhaust_free_answers_from_a_free_target_and_explains(tmp_path, isolated_env):
    write(tmp_path, "budget:\n  daily: 0.0001\n  on_exhaust: free\n  timezone: Europe/Berlin\n")
    code, out, err = invoke(["route", "hello"])
    assert code == 0, err
    assert "1. freebie/m" in out
    assert "openai/gpt" in out and "budget: daily $0.0001 would be exceeded (resets 00:00 Europe/Berlin" in out
    code, out, err = invoke(["hello"])
    assert code == 0 and out == "free answer\n"


def test_block_exits_4_naming_the_limit_and_reset(tmp_path, isolated_env):
    write(tmp_path, "budget:\n  daily: 1\n  on_exhaust: block\n  timezone: Europe/Berlin\n")
    spend(isolated_env, "openai", 1.0)
    code, out, err = invoke(["hello"])
    assert code == 4 and out == ""
    assert "blocked by budget: the daily $1.00 limit would be exceeded" in err
    assert "resets 00:00 Europe/Berlin, in " in err and "Traceback" not in err


def test_settled_spend_lands_in_the_index_once(tmp_path, isolated_env):
    write(tmp_path, "budget:\n  daily: 5\n")
    assert invoke(["-m", "cheap/small", "hello"])[0] == 0
    assert invoke(["-m", "cheap/small", "hello"])[0] == 0
    code, out, _ = invoke(["budget", "--json"])
    data = json.loads(out)
    ledger = [json.loads(l) for l in (isolated_env / "ledger.jsonl").read_text().splitlines()]
    assert data["limits"][0]["spent"] == pytest.approx(sum(r["cost_usd"] for r in ledger))
    assert data["open_reservations"] == 0


def test_max_cost_skips_targets_whose_worst_case_is_too_high(tmp_path, isolated_env):
    write(tmp_path)
    code, out, err = invoke(["--max-cost", "0.01", "--max-tokens", "50", "hello"])
    assert code == 0, err
    assert out == "cheap answer\n"
    code, out, _ = invoke(["route", "--max-cost", "0.01", "--max-tokens", "50", "hello"])
    assert "exceeds --max-cost $0.01" in out


def test_max_cost_with_nothing_affordable_exits_without_calling(tmp_path, isolated_env):
    project_config(tmp_path).write_text(CONFIG.replace("routes:\n  default: [openai/gpt, cheap/small, freebie/m]\n",
                                                           "routes:\n  default: [openai/gpt]\n"))
    code, out, err = invoke(["--max-cost", "0.01", "hello"])
    assert code == 4 and out == ""  # the per-call cost cap is a budget: exit 4
    assert "exceeds --max-cost $0.01" in err
    assert not (isolated_env / "ledger.jsonl").exists()


def test_alert_warning_once_and_quiet_keeps_it_off_stderr(tmp_path, isolated_env):
    write(tmp_path, "budget:\n  daily: 10\n  alert_at: [0.5]\n")
    spend(isolated_env, "cheap", 6.0)  # 60% of the daily limit already spent
    code, out, err = invoke(["-q", "-m", "cheap/small", "hello"])
    assert code == 0 and out == "cheap answer\n" and err == ""
    state = json.loads((isolated_env / "state" / "budget.json").read_text())
    assert "0.5" in json.dumps(state)  # the crossing was recorded (fired once), just not printed
    code, _, err = invoke(["-m", "cheap/small", "hello again"])
    assert code == 0 and "warning" not in err  # once per window, even without -q


def test_alert_warning_is_printed_once_per_window(tmp_path, isolated_env):
    write(tmp_path, "budget:\n  daily: 10\n  alert_at: [0.5]\n")
    spend(isolated_env, "cheap", 6.0)
    code, _, err = invoke(["-m", "cheap/small", "hello"])
    assert code == 0 and err.count("warning") == 1 and "50%" in err
    code, _, err = invoke(["-m", "cheap/small", "hello again"])
    assert code == 0 and "warning" not in err


def display_width(text: str) -> int:
    """Terminal columns: wide East Asian characters take two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _bar_columns(lines: list[str]) -> set[int]:
    return {display_width(line[:line.index("[")]) for line in lines if "[" in line}


@pytest.mark.parametrize("budget", [
    "budget:\n  daily: 1000\n  weekly: 25000\n  tokens_daily: 90000000\n",
    "budget:\n  daily: 0.002\n  monthly: 1234.5\n  per_provider: {anthropic: {daily: 0.002, tokens_weekly: 10}}\n",
])
def test_budget_box_keeps_borders_and_bars_aligned_for_any_amounts(tmp_path, isolated_env, budget):
    write(tmp_path, budget)
    spend(isolated_env, "anthropic", 1234.5678, 123456789)
    spend(isolated_env, "openai", 0.0000258, 3)
    code, out, err = invoke(["budget"])
    assert code == 0, err
    lines = out.splitlines()
    assert len({display_width(line) for line in lines}) == 1  # every line as wide: a closed box
    assert all(line.endswith(("│", "┐", "┘")) for line in lines)
    assert len(_bar_columns(lines)) == 1  # the bars start in one column
    assert "$0." not in out.replace("$0.0", "")  # no `$0.` for a small non-zero amount


def test_report_and_budget_count_the_same_against_a_limit(tmp_path, isolated_env):
    """SPEC §6/§10: what `report`'s budget lines and `budget` show for the same limit is one
    figure, by one rule: answered calls of every kind count; failed attempts, cache hits and the
    tokens of free targets do not."""
    write(tmp_path, "budget:\n  daily: 1\n  tokens_daily: 50000\n")
    spend(isolated_env, "openai", 0.25, 6000, request_id="a", kind="ask")
    spend(isolated_env, "openai", 0.0, 4000, status="error", request_id="b", kind="ask")
    spend(isolated_env, "openai", 0.0, 700, cached=True, request_id="c", kind="ask")
    spend(isolated_env, "ollama", 0.0, 3000, price_source="free", request_id="d", kind="ask")
    spend(isolated_env, "anthropic", 0.01, 500, request_id="e", kind="judge")
    spend(isolated_env, "anthropic", 0.001, 44, request_id="f", kind="health")
    Ledger(isolated_env / "ledger.jsonl").append({  # three days ago: outside today's window
        "ts": make_ts(time.time() - 3 * 86400), "status": "ok", "target": "openai/x",
        "provider": "openai", "cost_usd": 0.5, "input_tokens": 900, "output_tokens": 0})
    code, out, err = invoke(["report", "--today", "--format", "json"])
    assert code == 0, err
    report = {(b["period"], b["unit"]): b["used"] for b in json.loads(out)["budget"]}
    code, out, err = invoke(["budget", "--json"])
    assert code == 0, err
    budget = {l["limit"]: l["spent"] for l in json.loads(out)["limits"]}
    assert report[("Daily", "tokens")] == budget["tokens_daily"] == 6000 + 500 + 44
    assert report[("Daily", "usd")] == pytest.approx(budget["daily"]) and budget["daily"] == pytest.approx(0.261)
    _, table, _ = invoke(["report", "--today"])
    assert "Daily tokens: 6,544 of 50,000 (13%)" in table and "Daily budget: $0.261 of $1.00 (26%)" in table
