"""`report --format csv` is safe to open in a spreadsheet (SPEC §10, OWASP CSV injection): text
cells that would start a formula are prefixed with a single quote, numbers are left alone, and
the output stays plain CSV for `csv.reader`."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import replace
from datetime import date, timezone

import pytest

from llmroute.report import build_report, make_window
from llmroute.report.render import csv_text, render_csv

TODAY = date(2026, 11, 25)
HOSTILE = ["=HYPERLINK(\"http://evil.example\",\"click\")", "-1+1", "+cmd|' /C calc'!A0", "@SUM(A1:A9)",
           "\tx", "\rx"]


def record(tag: str, route: str) -> str:
    return json.dumps({
        "v": 1, "ts": "2026-11-25T08:00:00.000Z", "request_id": f"r-{tag}", "kind": "ask",
        "target": "openai/gpt-4o-mini", "provider": "openai", "model": "gpt-4o-mini", "route": route,
        "strategy": "auto", "attempt": 1, "status": "ok", "error": None, "http_status": 200,
        "latency_ms": 100, "ttft_ms": None, "input_tokens": 10, "output_tokens": 5,
        "tokens_source": "provider", "cost_usd": 0.01, "price_source": "config", "cached": False,
        "tags": [tag], "ab_id": None, "compare_id": None, "prompt_sha256": "ab" * 32})


def csv_report(tmp_path, by: str):
    ledger = tmp_path / "ledger.jsonl"
    ledger.write_text("".join(record(name, name) + "\n" for name in [*HOSTILE, "plain"]))
    window = make_window(today=TODAY, kind="today")
    report = build_report(ledger, window, by, tz=timezone.utc, index_path=None, warn=lambda m: None)
    return report, list(csv.reader(io.StringIO(render_csv(report))))


@pytest.mark.parametrize("by", ["tag", "route"])
def test_formula_like_keys_are_quoted_and_round_trip_through_csv_reader(tmp_path, by):
    _, rows = csv_report(tmp_path, by)
    keys = {row[0] for row in rows[1:-1]}
    assert keys == {"'" + name for name in HOSTILE} | {"plain"}
    for row in rows[1:-1]:
        assert row[1] == "1"  # one request each: the number cells are not touched
    assert rows[-1][0] == "TOTAL" and rows[0][0] == by


def test_number_cells_are_never_escaped_even_when_negative(tmp_path):
    report, _ = csv_report(tmp_path, "tag")
    row = replace(report.rows[0], key="-1+1", cost_usd=-1.5, success_pct=-0.5)
    rows = list(csv.reader(io.StringIO(render_csv(replace(report, rows=(row,))))))
    assert rows[1][0] == "'-1+1"
    assert rows[1][4] == "-0.5" and rows[1][rows[0].index("cost USD")] == "-1.5"


@pytest.mark.parametrize("cell, safe", [("=1+2", "'=1+2"), ("-x", "'-x"), ("a=b", "a=b"), ("", ""),
                                        ("total", "total")])
def test_csv_text(cell, safe):
    assert csv_text(cell) == safe


def test_when_parsed_the_report_is_the_same_apart_from_the_quote(tmp_path):
    report, rows = csv_report(tmp_path, "tag")
    assert [r[0].removeprefix("'") for r in rows[1:-1]] == [row.key for row in report.rows]


def test_costs_keep_every_digit_in_csv(tmp_path):
    report, _ = csv_report(tmp_path, "tag")
    row = replace(report.rows[0], cost_usd=0.0000258)
    rows = list(csv.reader(io.StringIO(render_csv(replace(report, rows=(row,))))))
    assert rows[1][rows[0].index("cost USD")] == "0.0000258"
