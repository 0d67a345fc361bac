"""`report` and prompt caching (issue 20): the cached-input column in JSON, CSV and wide
tables (dropped first on a narrow terminal), and the HTML report's "caching saved" figure."""

from __future__ import annotations

import csv
import io
import json
from datetime import date

import pytest

from llmroute.config.load import parse_config
from llmroute.paths import Paths
from llmroute.report import build_report, make_window, resolve_tz
from llmroute.report.render import render

from .test_report_cli import StandIn, invoke

CONFIG = ("version: 1\nproviders:\n  openai:\n    type: openai\n    models:\n      gpt-4o-mini: {}\n"
          "  own:\n    type: openai\n    base_url: https://llm.internal.example/v1\n"
          "    models:\n      m: {input: 1, output: 1}\n")


def line(ts, target="openai/gpt-4o-mini", tin=1000, cached=0, cost=0.001, rid="r"):
    provider, model = target.split("/", 1)
    return json.dumps({"v": 1, "ts": ts, "request_id": rid, "kind": "ask", "target": target,
                       "provider": provider, "model": model, "route": "default", "strategy": "auto",
                       "attempt": 1, "status": "ok", "latency_ms": 100, "input_tokens": tin,
                       "output_tokens": 5, "cached_input_tokens": cached, "cache_write_tokens": 0,
                       "reasoning_tokens": 0, "cost_usd": cost, "cached": False, "tags": []})


@pytest.fixture
def obj(tmp_path) -> StandIn:
    paths = Paths(data_dir=tmp_path / "data", config_dir=tmp_path / "cfg")
    paths.data_dir.mkdir()
    paths.ledger.write_text("\n".join([
        line("2026-11-24T10:00:00.000Z", cached=600_000, rid="a"),
        line("2026-11-25T10:00:00.000Z", cached=400_000, rid="b"),
        line("2026-11-25T11:00:00.000Z", "own/m", cached=2000, rid="c"),
        line("2026-11-25T12:00:00.000Z", rid="d"),  # an older record without the field reads as 0
    ]).replace(', "cached_input_tokens": 0', "") + "\n")
    return StandIn(env={}, paths=paths, config=parse_config(CONFIG))


def test_json_and_csv_carry_cached_input_tokens(obj):
    data = json.loads(invoke(obj, "--format", "json", "--by", "target").output)
    rows = {r["key"]: r["cached_input_tokens"] for r in data["rows"]}
    assert rows == {"openai/gpt-4o-mini": 1_000_000, "own/m": 2000}
    assert data["totals"]["cached_input_tokens"] == 1_002_000
    table = list(csv.reader(io.StringIO(invoke(obj, "--format", "csv").output)))
    column = table[0].index("cached input tokens")
    assert table[-1][0] == "TOTAL" and table[-1][column] == "1002000"


def test_the_index_keeps_cached_input_tokens(obj):
    first = json.loads(invoke(obj, "--format", "json").output)["totals"]["cached_input_tokens"]
    again = json.loads(invoke(obj, "--format", "json").output)["totals"]["cached_input_tokens"]
    assert first == again == 1_002_000
    assert (obj.paths.state_dir / "report-index.pickle").exists()


def test_cached_column_shows_wide_and_goes_first_on_a_narrow_terminal(obj):
    window = make_window(today=date(2026, 11, 25), kind="week")
    report = build_report(obj.paths.ledger, window, "provider", tz=resolve_tz("Europe/Berlin"),
                          index_path=None, warn=lambda m: None)
    assert "cached input tokens" in render(report, "table", width=None)
    narrow = render(report, "table", width=80)
    assert "cch in" not in narrow and "cached input" not in narrow
    assert all(len(row) <= 80 for row in narrow.splitlines())


def test_html_shows_what_caching_saved_and_na_without_a_cached_rate(obj, tmp_path):
    out = tmp_path / "r.html"
    invoke(obj, "--html", str(out), "-q")
    page = out.read_text()
    # gpt-4o-mini: 1M cached tokens x (0.15 - 0.075) per 1M = $0.075; own/m has no cached rate.
    assert "Prompt caching saved $0.075" in page
    assert "<td>own/m</td><td>2,000</td><td>n/a</td>" in page
    assert "<th>cached input tokens</th>" in page
