"""Costs print with significant digits (one formatter, `render.money`, everywhere): never `$0.`
or `$0.000000` for a cost that is not zero."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from llmroute.render import money

from .support import invoke, project_config

TINY = 0.0000258


@pytest.mark.parametrize("value, text", [
    (TINY, "$0.0000258"), (1.23, "$1.23"), (1234.56, "$1,234.56"), (0.002, "$0.002"),
    (0.5, "$0.50"), (0.0123, "$0.0123"), (0.12345, "$0.123"), (0.999, "$1.00"), (1e-9, "$0.000000001"),
    (0.00999999, "$0.01"), (5e-06, "$0.000005"), (1_000_000, "$1,000,000.00"), (0, "$0"),
    (-0.5, "-$0.50"), (None, "?"),
])
def test_money_keeps_three_significant_digits_below_a_dollar_and_cents_above(value, text):
    assert money(value) == text


def no_zero_cost(text: str) -> bool:
    """No `$0.`, `$0.00` or `$0.000000` standing for a cost: zeros with no digit after them."""
    return re.search(r"\$0\.0*(?![0-9])", text) is None


CONFIG = """\
version: 1
defaults: {strategy: priority}
providers:
  tiny:
    type: mock
    reply: "ok"
    models:
      m: {input: 0.075, output: 0.3}
  other:
    type: mock
    reply: "also ok"
    models:
      n: {input: 0.075, output: 0.3}
routes:
  default: [tiny/m]
"""


@pytest.fixture
def config(tmp_path, monkeypatch):
    project_config(tmp_path).write_text(CONFIG)
    monkeypatch.chdir(tmp_path)


def test_ask_verbose_compare_and_models_print_small_costs_in_full(config):
    code, _, err = invoke(["-v", "hello"])
    assert code == 0
    summary = next(line for line in err.splitlines() if line.startswith("answered by"))
    assert re.search(r"\$0\.0+[1-9]\d*\b", summary) and no_zero_cost(summary), summary
    code, out, _ = invoke(["compare", "-t", "tiny/m", "-t", "other/n", "hello"])
    assert code == 0 and no_zero_cost(out) and "$0.000000375" in out
    code, out, _ = invoke(["models"])
    assert code == 0 and "$0.075" in out and "$0.30" in out


def test_report_table_chart_html_and_budget_lines_show_a_tiny_cost(config, isolated_env, tmp_path):
    now = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
    isolated_env.mkdir(parents=True, exist_ok=True)
    (isolated_env / "ledger.jsonl").write_text(json.dumps({
        "v": 1, "ts": now, "request_id": "r", "kind": "ask", "target": "tiny/m", "provider": "tiny",
        "model": "m", "attempt": 1, "status": "ok", "latency_ms": 5, "input_tokens": 10,
        "output_tokens": 5, "cost_usd": TINY, "price_source": "config"}) + "\n")
    project_config(tmp_path).write_text(CONFIG + "budget:\n  daily: 0.002\n")
    html = tmp_path / "r.html"
    code, out, _ = invoke(["report", "--today", "--chart", "--html", str(html)])
    assert code == 0
    assert "$0.0000258" in out and "Daily budget: $0.0000258 of $0.002 (1%)" in out
    assert no_zero_cost(out.replace("$0 ", ""))
    assert "$0.0000258" in html.read_text()
    code, out, _ = invoke(["budget"])
    assert "$0.0000258 / $0.002" in out


def test_worst_case_reasons_use_the_same_formatter(config):
    code, out, _ = invoke(["route", "--strategy", "cost", "--max-cost", "0.0000001", "hello"])
    assert "exceeds --max-cost $0.0000001" in out, out
    assert re.search(r"worst case \$0\.000\d+ exceeds", out), out


def test_no_other_money_format_is_left_in_the_code():
    """Every `$` amount goes through `render.money`: no f-string formats dollars itself."""
    root = Path(__file__).resolve().parent.parent / "llmroute"
    pattern = re.compile(r"\$\{[^}]*:,?\.\d+f\}|\$\{[^}]*:g\}")
    found = [f"{path.relative_to(root)}:{n}" for path in root.rglob("*.py") if path.name != "render.py"
             for n, line in enumerate(path.read_text().splitlines(), 1) if pattern.search(line)]
    assert found == []
