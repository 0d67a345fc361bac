"""llmroute.report: windows, groupings, formats, p95, the incremental index, bad lines, HTML."""

from __future__ import annotations

import csv
import io
import json
import os
from collections import Counter
from datetime import date, datetime, timezone
from pathlib import Path

import pytest

from llmroute.config.model import BudgetConfig, Config, Limits
from llmroute.errors import UsageError
from llmroute.paths import Paths
from llmroute.report import (budget_lines, build_report, local_today, make_window, midnight_utc,
                             resolve_tz)
from llmroute.report.fold import EXACT_LIMIT, LatencyDigest, _bin
from llmroute.report.html import render_html
from llmroute.report.render import render, render_chart, render_csv, render_json

BERLIN = resolve_tz("Europe/Berlin")
# Wednesday 2026-11-25 12:00 Berlin (11:00 UTC). Monday = 2026-11-23, month from 2026-11-01.
NOW = datetime(2026, 11, 25, 11, 0, tzinfo=timezone.utc)
TODAY = local_today(NOW, BERLIN)


def rec(ts, provider="openai", model="gpt-4o-mini", *, status="ok", attempt=1, cost=0.01,
        tin=100, tout=50, lat=1000, cached=False, tags=(), route="default", kind="ask", sep=",",
        rid=None):
    """One ledger line; each is its own request unless `rid` says otherwise."""
    data = {"v": 1, "ts": ts, "request_id": rid or f"r-{ts}-{provider}", "kind": kind, "target": f"{provider}/{model}",
            "provider": provider, "model": model, "route": route, "strategy": "auto",
            "attempt": attempt, "status": status, "error": None if status == "ok" else "timeout",
            "http_status": 200, "latency_ms": lat, "ttft_ms": None, "input_tokens": tin,
            "output_tokens": tout, "tokens_source": "provider", "cost_usd": cost,
            "price_source": "config", "cached": cached, "tags": list(tags), "ab_id": None,
            "compare_id": None, "prompt_sha256": "ab" * 32}
    seps = (",", ":") if sep == "," else (", ", ": ")
    return json.dumps(data, separators=seps)


# Berlin is UTC+1 in November: local midnight of day D is 23:00 UTC of D-1.
LINES = [
    rec("2026-10-31T22:59:59.999Z", cost=100.0),                      # Oct 31 local: outside month
    rec("2026-10-31T23:00:00.000Z", "anthropic", "claude-haiku-4-5", cost=1.0, tags=["work"]),  # Nov 1
    rec("2026-11-22T22:59:59.000Z", cost=2.0, lat=200),               # Sun Nov 22 23:59 local
    rec("2026-11-22T23:00:00.000Z", "anthropic", "claude-haiku-4-5", cost=4.0, lat=400,
        tags=["work", "ci"], route="strong"),                         # Mon Nov 23 00:00 local
    rec("2026-11-24T23:30:00.000Z", status="error", cost=0.0, tout=0, lat=3000, attempt=1),  # Wed 00:30
    rec("2026-11-25T08:00:00.000Z", "gemini", "gemini-2.5-flash", attempt=2, cost=8.0, lat=600,
        kind="batch", sep=", "),                                      # today, fallback, spaced JSON
    rec("2026-11-25T09:00:00.000Z", cost=0.0, lat=1, cached=True, tags=["work"]),  # cache hit
]


@pytest.fixture
def ledger(tmp_path) -> Path:
    path = tmp_path / "ledger.jsonl"
    path.write_text("\n".join(LINES) + "\n")
    return path


def report(ledger, kind="week", by="provider", index=None, warnings=None, budget=(), **kw):
    window = make_window(today=TODAY, kind=kind, **kw)
    sink = warnings if warnings is not None else []
    return build_report(ledger, window, by, tz=BERLIN, index_path=index, warn=sink.append,
                        budget=budget)


def test_today_is_local_date():
    assert TODAY == date(2026, 11, 25)
    assert local_today(datetime(2026, 11, 24, 23, 30, tzinfo=timezone.utc), BERLIN) == date(2026, 11, 25)
    assert midnight_utc(date(2026, 11, 23), BERLIN) == "2026-11-22T23:00:00.000Z"


@pytest.mark.parametrize("kind,kw,requests,cost", [
    ("today", {}, 3, 8.0),                       # Wed 00:30, 08:00, 09:00 local
    ("week", {}, 4, 12.0),                       # from Monday 00:00 local: excludes Sunday 23:59
    ("month", {}, 6, 15.0),                      # from Nov 1 00:00 local: excludes Oct 31 23:59
    ("days", {"days": 3}, 4, 12.0),              # Nov 23..25
    ("days", {"days": 4}, 5, 14.0),              # Nov 22..25
    ("since", {"since": "2026-11-01", "until": "2026-11-22"}, 2, 3.0),
    ("since", {"since": "2026-10-31", "until": "2026-10-31"}, 1, 100.0),
    ("since", {"since": "2026-11-23"}, 4, 12.0),
])
def test_windows(ledger, kind, kw, requests, cost):
    r = report(ledger, kind, **kw)
    assert r.totals.requests == requests
    assert r.totals.cost_usd == pytest.approx(cost)


def test_window_flags_are_validated():
    with pytest.raises(UsageError):
        make_window(today=TODAY, kind="days", days=0)
    with pytest.raises(UsageError):
        make_window(today=TODAY, kind="since", since="2026-13-01")
    with pytest.raises(UsageError):
        make_window(today=TODAY, kind="since", since="2026-11-10", until="2026-11-01")
    with pytest.raises(UsageError):
        resolve_tz("Mars/Olympus")


def test_week_starts_monday():
    w = make_window(today=date(2026, 11, 29), kind="week")  # a Sunday
    assert w.start == date(2026, 11, 23) and w.end == date(2026, 11, 29)


def test_columns_and_totals(ledger):
    r = report(ledger, "month")
    rows = {row.key: row for row in r.rows}
    assert set(rows) == {"openai", "anthropic", "gemini"}
    openai = rows["openai"]
    assert (openai.requests, openai.ok, openai.failed) == (3, 2, 1)
    assert openai.success_pct == pytest.approx(200 / 3)
    assert openai.cache_hits == 1 and openai.fallbacks == 0
    assert rows["gemini"].fallbacks == 1
    assert openai.input_tokens == 300 and openai.output_tokens == 100
    assert openai.mean_latency_ms == pytest.approx((200 + 3000 + 1) / 3)
    assert r.totals.requests == 6 and r.totals.fallbacks == 1 and r.totals.cache_hits == 1
    assert [row.key for row in r.rows][0] == "gemini"  # sorted by cost


@pytest.mark.parametrize("by,expected", [
    ("provider", {"openai": 3, "anthropic": 2, "gemini": 1}),
    ("model", {"gpt-4o-mini": 3, "claude-haiku-4-5": 2, "gemini-2.5-flash": 1}),
    ("target", {"openai/gpt-4o-mini": 3, "anthropic/claude-haiku-4-5": 2, "gemini/gemini-2.5-flash": 1}),
    ("day", {"2026-11-01": 1, "2026-11-22": 1, "2026-11-23": 1, "2026-11-25": 3}),
    ("route", {"default": 5, "strong": 1}),
    ("kind", {"ask": 5, "batch": 1}),
    ("tag", {"work": 3, "ci": 1, "(none)": 3}),
])
def test_groupings(ledger, by, expected):
    r = report(ledger, "month", by=by)
    assert {row.key: row.requests for row in r.rows} == expected
    assert r.totals.requests == 6  # a record under two tags is counted once in the totals


def test_unknown_grouping(ledger):
    with pytest.raises(UsageError):
        report(ledger, by="colour")


def test_formats(ledger):
    r = report(ledger, "month")
    parsed = list(csv.reader(io.StringIO(render_csv(r))))
    assert parsed[0][0] == "provider" and parsed[-1][0] == "TOTAL" and parsed[-1][1] == "6"
    assert parsed[-1][parsed[0].index("attempts")] == "6"
    data = json.loads(render_json(r))
    assert data["totals"]["requests"] == 6 and data["totals"]["cost_usd"] == pytest.approx(15.0)
    assert data["totals"]["attempts"] == 6
    md = render(r, "markdown")
    assert "| provider" in md and "|:--" in md.replace("| provider", "")
    table = render(r, "table")
    assert "TOTAL" in table and "openai" in table


def test_chart_has_bars(ledger):
    chart = render_chart(report(ledger, "week"))
    assert "█" in chart and "2026-11-25" in chart and "$8.00" in chart


def test_budget_lines_are_the_budgets_own_figures(ledger, tmp_path):
    limits = Limits(daily=16.0, weekly=24.0, monthly=30.0, tokens_daily=1000)
    config = Config(budget=BudgetConfig(limits=limits, timezone="Europe/Berlin"))
    lines = budget_lines(config, Paths(data_dir=ledger.parent, config_dir=tmp_path / "cfg"),
                         clock=NOW.timestamp)
    r = report(ledger, "today", budget=lines)
    texts = [b.text() for b in r.budget]
    assert "Daily budget: $8.00 of $16.00 (50%)" in texts
    assert "Weekly budget: $12.00 of $24.00 (50%)" in texts
    assert "Monthly budget: $15.00 of $30.00 (50%)" in texts
    # Today's answered call only: the failed attempt's 100 input tokens and the cache hit's
    # 150 were never billed, so they count against no limit.
    assert "Daily tokens: 150 of 1,000 (15%)" in texts
    assert "Daily budget" in render(r, "table")


def test_budget_lines_name_a_providers_own_limit(ledger, tmp_path):
    config = Config(budget=BudgetConfig(per_provider={"gemini": Limits(daily=0.5)},
                                        timezone="Europe/Berlin"))
    lines = budget_lines(config, Paths(data_dir=ledger.parent, config_dir=tmp_path / "cfg"),
                         clock=NOW.timestamp)
    assert [line.text() for line in lines] == ["gemini daily budget: $8.00 of $0.50 (1600%)"]
    assert budget_lines(Config(), Paths(data_dir=ledger.parent, config_dir=tmp_path)) == ()


def test_p95_exact_small_set():
    d = LatencyDigest()
    d.add_many([float(v) for v in range(1, 21)])  # 1..20: nearest rank ceil(0.95*20)=19
    assert d.percentile(0.95) == 19.0
    assert LatencyDigest().percentile(0.95) is None


def test_p95_histogram_within_two_percent():
    values = [float(v) for v in range(1, 10001)]
    d = LatencyDigest()
    for i in range(0, len(values), 100):
        d.add_many(values[i:i + 100])
    assert d.exact is None and d.count == 10000
    assert abs(d.percentile(0.95) - 9500) / 9500 < 0.02


def test_digest_merge_switches_to_bins():
    a, b = LatencyDigest(), LatencyDigest()
    a.add_many([10.0] * EXACT_LIMIT)
    b.add_many([20.0] * EXACT_LIMIT)
    a.merge(b)
    assert a.exact is None and a.count == 2 * EXACT_LIMIT
    assert a.percentile(0.95) == pytest.approx(20.0, rel=0.02)


def test_p95_of_identical_latencies_is_that_latency_once_binned():
    one_block = LatencyDigest()
    one_block.add_many([100.0] * (EXACT_LIMIT + 36))
    assert one_block.exact is None and one_block.percentile(0.95) == 100.0
    merged = LatencyDigest()
    for _ in range(5):
        part = LatencyDigest()
        part.add_many([100.0] * EXACT_LIMIT)
        merged.merge(part)
    assert merged.exact is None and merged.percentile(0.95) == 100.0
    binned = LatencyDigest()
    binned.add_binned(3, [_bin(100.0)] * 3, 100.0, 100.0)
    assert binned.percentile(0.95) == 100.0


def test_binned_p95_stays_within_the_values_seen():
    d = LatencyDigest()
    d.add_many([100.0] * 50 + [101.0] * 50)  # one bin, whose midpoint is 99.9
    assert d.exact is None and 100.0 <= d.percentile(0.95) <= 101.0


def test_report_p95_of_many_equal_latencies_through_the_index(tmp_path):
    path = tmp_path / "ledger.jsonl"
    path.write_text("".join(rec(f"2026-11-25T08:{i // 60:02d}:{i % 60:02d}.000Z", lat=100) + "\n"
                            for i in range(200)))
    index = tmp_path / "index.pickle"
    first = report(path, "today", index=index)
    path.open("a").write(rec("2026-11-25T09:00:00.000Z", lat=100) + "\n")
    again = report(path, "today", index=index)  # the digests come back from the pickle
    for r in (first, again):
        assert r.totals.p95_latency_ms == 100.0 and r.rows[0].p95_latency_ms == 100.0
    assert again.totals.attempts == 201


def test_report_p95(ledger):
    r = report(ledger, "month")
    openai = {row.key: row for row in r.rows}["openai"]
    assert openai.p95_latency_ms == 3000.0  # values 1, 200, 3000


def test_index_reads_only_appended_bytes(ledger, tmp_path):
    index = tmp_path / "state" / "report-index.pickle"
    first = report(ledger, "month", index=index)
    assert first.scan.start_offset == 0 and index.exists()
    size = ledger.stat().st_size
    extra = rec("2026-11-25T10:00:00.000Z", "groq", "llama", cost=0.5) + "\n"
    with open(ledger, "a") as fh:
        fh.write(extra)
    second = report(ledger, "month", index=index)
    assert second.scan.start_offset == size and second.scan.bytes_read == len(extra)
    assert second.totals.requests == 7 and second.totals.cost_usd == pytest.approx(15.5)
    third = report(ledger, "today", index=index)
    assert third.scan.bytes_read == 0 and third.totals.requests == 4


def test_index_partial_last_line_is_read_later(ledger, tmp_path):
    index = tmp_path / "idx.json"
    line = rec("2026-11-25T10:00:00.000Z", cost=0.5)
    with open(ledger, "a") as fh:
        fh.write(line[:40])
    assert report(ledger, "month", index=index).totals.requests == 6
    with open(ledger, "a") as fh:
        fh.write(line[40:] + "\n")
    assert report(ledger, "month", index=index).totals.requests == 7


def test_index_rebuilt_when_truncated_or_replaced(ledger, tmp_path):
    index = tmp_path / "idx.json"
    report(ledger, "month", index=index)
    ledger.write_text("\n".join(LINES[:3]) + "\n")  # truncated in place
    r = report(ledger, "month", index=index)
    assert r.scan.start_offset == 0 and r.totals.requests == 2
    replacement = tmp_path / "new.jsonl"
    replacement.write_text("\n".join(LINES[1:]) + "\n")
    os.replace(replacement, ledger)  # new inode, larger
    r = report(ledger, "month", index=index)
    assert r.scan.start_offset == 0 and r.totals.requests == 6


def test_index_rebuilt_when_corrupt_or_window_earlier(ledger, tmp_path):
    index = tmp_path / "idx.json"
    report(ledger, "today", index=index)
    earlier = report(ledger, "month", index=index)  # index started at today: must rebuild
    assert earlier.scan.start_offset == 0 and earlier.totals.requests == 6
    index.write_text("{not a pickle")
    r = report(ledger, "month", index=index)
    assert r.scan.start_offset == 0 and r.totals.requests == 6
    again = report(ledger, "month", index=index)
    assert again.scan.bytes_read == 0 and again.totals.requests == 6


class _MakesADirectory:
    def __init__(self, where):
        self.where = where

    def __reduce__(self):
        return os.mkdir, (str(self.where),)


def test_tampered_index_cannot_run_code_and_is_rebuilt(ledger, tmp_path):
    """The index is a pickle; loading it resolves only the aggregate classes, so a file that
    would call a function (here `os.mkdir`) fails to load and is rebuilt, and nothing runs."""
    import pickle

    index, marker = tmp_path / "idx.pickle", tmp_path / "ran"
    index.write_bytes(pickle.dumps({"version": 2, "aggregates": _MakesADirectory(marker)}))
    r = report(ledger, "month", index=index)
    assert not marker.exists()
    assert r.scan.start_offset == 0 and r.totals.requests == 6
    assert report(ledger, "month", index=index).scan.bytes_read == 0


def test_bad_lines_skipped_with_warning(ledger):
    with open(ledger, "a") as fh:
        fh.write('{"v":1,"ts":"2026-11-25T10:00:00.000Z", torn\n')
        fh.write("[1, 2]\n\n")
        fh.write(json.dumps({"v": 1, "ts": "2026-11-25T10:30:00.000Z", "provider": "mistral",
                             "status": "ok", "cost_usd": 0.25}) + "\n")
    warnings: list[str] = []
    r = report(ledger, "today", warnings=warnings)
    assert r.scan.bad_lines == 2 and len(warnings) == 1  # one warning for all of them
    assert "skipped 2 invalid lines" in warnings[0] and "byte" in warnings[0]
    assert r.totals.requests == 4 and {row.key for row in r.rows} >= {"mistral"}


def test_missing_ledger_gives_empty_report(tmp_path):
    r = report(tmp_path / "none.jsonl", "month")
    assert r.totals.requests == 0 and r.rows == ()


def test_local_timezone_window(ledger):
    window = make_window(today=date(2026, 11, 25), kind="month")
    r = build_report(ledger, window, "provider", tz=resolve_tz("local"), index_path=None,
                     warn=lambda m: None)
    assert r.totals.requests >= 5


def test_html_is_self_contained(ledger, tmp_path):
    page = render_html(report(ledger, "month"))
    assert page.startswith("<!DOCTYPE html>") and "<svg" in page and "<style>" in page
    for bad in ("http://", "https://", "<script", "<link"):
        assert bad not in page
    assert "openai" in page and "anthropic" in page and "gemini" in page
    assert "Latency per provider" in page and "Cost per day" in page
    assert "$15.00" in page


# --- the fold: typed decoding, requests, days, bad lines, worker processes -----------------

from llmroute.ledger import reader as ledger_reader  # noqa: E402
from llmroute.ledger.reader import DayMapper  # noqa: E402
from llmroute.report import fold as fold_mod  # noqa: E402
from llmroute.report.fold import Aggregates  # noqa: E402


def _many_lines(n=600, sep=","):
    """Records over Nov 20..25 with varied providers, kinds, tags, errors, fallbacks, nulls."""
    lines = []
    providers = (("openai", "gpt-4o-mini"), ("anthropic", "claude-haiku-4-5"), ("groq", "llama"))
    for i in range(n):
        prov, model = providers[i % 3]
        ts = f"2026-11-{20 + i * 6 // n:02d}T{i % 24:02d}:{i % 60:02d}:00.000Z"
        lines.append(rec(ts, prov, model, status="error" if i % 17 == 0 else "ok",
                         attempt=2 if i % 23 == 0 else 1, cost=round(0.001 * (i % 50), 6),
                         tin=10 + i, tout=i % 7, lat=None if i % 29 == 0 else 50 + (i * 37) % 4000,
                         cached=i % 31 == 0, tags=(("work",), (), ("ci", "work"))[i % 3],
                         route=("default", "cheap")[i % 2], kind=("ask", "batch")[i % 5 == 0],
                         sep=sep, rid=f"r{i // 2}"))
    return lines


def _fold(path, from_day="2026-11-01", workers=1):
    aggs = Aggregates(from_day)
    before = midnight_utc(date.fromisoformat(from_day), BERLIN)[:13]
    stats = fold_mod.fold_file(path, aggs, start=0, days=DayMapper(BERLIN), before_hour=before,
                               workers=workers)
    return aggs, stats


def _summary(aggs):
    counters = {(day, combo): list(vals) for day, a in aggs.days.items()
                for combo, vals in a.counters.items()}
    digests = {(day, m): (d.count, sorted(d.exact) if d.exact is not None else sorted(d.bins.items()))
               for day, a in aggs.days.items() for m, d in a.latency.items()}
    return counters, digests, aggs.tracked


def test_any_json_formatting_folds_the_same(tmp_path):
    """Compact lines, spaced ones, escaped quotes, reversed key order and unknown fields are all
    decoded by their keys: the same aggregates."""
    variants = {
        "compact": _many_lines(),
        "spaced": _many_lines(sep=", "),
        "escaped": [line.replace('"prompt_sha256":"', '"prompt_sha256":"\\"q\\" ') for line in _many_lines()],
        "reordered": [json.dumps(dict(reversed(json.loads(line).items()))) if i % 2 else line
                      for i, line in enumerate(_many_lines())],
        "extra": [line[:-1] + ',"extra":{"ts":"1999-01-01","n":[1,2]}}' for line in _many_lines()],
    }
    summaries = {}
    for name, lines in variants.items():
        path = tmp_path / f"{name}.jsonl"
        path.write_text("\n".join(lines) + "\n")
        aggs, stats = _fold(path)
        assert stats.records == 600 and stats.bad_lines == 0
        summaries[name] = _summary(aggs)
    assert summaries["compact"][0]
    assert all(summary == summaries["compact"] for summary in summaries.values())


def test_small_latency_groups_stay_exact_large_ones_binned(tmp_path):
    path = tmp_path / "l.jsonl"
    path.write_text("\n".join(_many_lines()) + "\n")
    aggs, _ = _fold(path)
    day = aggs.days["2026-11-21"]
    assert day.latency[("*", "*")].exact is None  # ~100 values a day: binned
    assert day.latency[("kind", "batch")].exact is not None  # ~20: exact values kept
    assert day.latency[("kind", "batch")].count == len(day.latency[("kind", "batch")].exact)
    on_day = DayMapper(BERLIN)
    values = [float(d["latency_ms"]) for d in map(json.loads, _many_lines())
              if d["latency_ms"] is not None and on_day(d["ts"]) == "2026-11-21"]
    whole = LatencyDigest()
    whole.add_many(values)  # the digest of all of the day's values at once
    assert day.latency[("*", "*")].count == len(values)
    assert sorted(day.latency[("*", "*")].bins.items()) == sorted(whole.bins.items())


def test_requests_count_where_answered_attempts_where_spent(tmp_path):
    """SPEC §10: a request that failed on openai and was answered by anthropic on attempt 2 is
    one request, ok, a fallback, in anthropic's row; each attempt's tokens and cost stay where
    they were spent. A request that never got an answer counts failed at its last attempt. The
    lines of one request may be apart and in any order."""
    lines = [
        rec("2026-11-25T08:00:05.000Z", "anthropic", "claude-haiku-4-5", attempt=2, cost=0.5, rid="a"),
        rec("2026-11-25T08:00:00.000Z", "groq", "llama", cost=0.25, rid="b"),
        rec("2026-11-25T08:00:00.000Z", status="error", cost=0.0, tin=7, rid="a"),
        rec("2026-11-25T09:00:00.000Z", status="error", cost=0.0, rid="c"),
        rec("2026-11-25T09:00:09.000Z", "groq", "llama", status="error", attempt=2, cost=0.0, rid="c"),
        json.dumps({"v": 1, "ts": "2026-11-25T09:30:00.000Z", "provider": "mistral", "status": "ok",
                    "attempt": 2, "cost_usd": 0.125}),  # no request_id: a request of its own
    ]
    path = tmp_path / "l.jsonl"
    for order in (lines, lines[::-1]):
        path.write_text("\n".join(order) + "\n")
        r = report(path, "today")
        rows = {row.key: row for row in r.rows}
        assert {k: (v.requests, v.ok, v.failed, v.attempts, v.fallbacks) for k, v in rows.items()} == {
            "anthropic": (1, 1, 0, 1, 1), "openai": (0, 0, 0, 2, 0), "groq": (2, 1, 1, 2, 0),
            "mistral": (1, 1, 0, 1, 1)}
        assert rows["openai"].input_tokens == 107 and rows["anthropic"].cost_usd == 0.5
        t = r.totals
        assert (t.requests, t.ok, t.failed, t.attempts, t.fallbacks) == (4, 3, 1, 6, 2)
        assert t.cost_usd == pytest.approx(0.875)


def test_parallel_fold_equals_serial(tmp_path, monkeypatch):
    monkeypatch.setattr(ledger_reader, "CHUNK_BYTES", 16 << 10)
    path = tmp_path / "p.jsonl"
    lines = _many_lines(2000)
    lines.insert(700, '{"v":1,"ts":"2026-11-21T10:00:00.000Z", torn')
    path.write_text("\n".join(lines) + "\n" + lines[5][:30])  # partial last line
    serial, s_stats = _fold(path)
    parallel, p_stats = _fold(path, workers=2)
    assert _summary(parallel) == _summary(serial)
    assert p_stats.end_offset == s_stats.end_offset == path.stat().st_size - 30
    assert p_stats.bad_lines == s_stats.bad_lines == 1 and p_stats.records == s_stats.records


def test_parallel_fold_falls_back_to_one_process(tmp_path, monkeypatch):
    def no_processes(*args, **kwargs):
        raise OSError("no semaphores here")

    monkeypatch.setattr(fold_mod, "ProcessPoolExecutor", no_processes)
    monkeypatch.setattr(ledger_reader, "CHUNK_BYTES", 16 << 10)
    path = tmp_path / "f.jsonl"
    path.write_text("\n".join(_many_lines(1000)) + "\n")
    fallback, stats = _fold(path, workers=2)
    assert _summary(fallback) == _summary(_fold(path)[0]) and stats.end_offset == path.stat().st_size


def test_old_blocks_passed_over_but_not_one_with_a_late_line(tmp_path, monkeypatch):
    """A block is passed over only when every one of its lines is stamped before the first
    day needed: a late line anywhere (out of time order) keeps its block read."""
    monkeypatch.setattr(ledger_reader, "CHUNK_BYTES", 8 << 10)
    path = tmp_path / "k.jsonl"
    old = [rec(f"2026-10-{1 + i // 100:02d}T{i % 24:02d}:00:00.000Z", cost=1.0) for i in range(600)]
    old[300] = rec("2026-11-24T12:00:00.000Z", cost=5.0)  # out of order, inside an old block
    old[500] = old[500].replace('{"v":1,', '{"v": 1,')  # not as llmroute writes: read
    path.write_text("\n".join(old + _many_lines(50)) + "\n")
    aggs, stats = _fold(path, from_day="2026-11-20")
    assert stats.chunks_skipped >= 3 and stats.records < 600
    assert aggs.days["2026-11-24"].counters
    total = sum(v[fold_mod.COST] for a in aggs.days.values() for v in a.counters.values()) / 1e12
    assert total == pytest.approx(5.0 + sum(0.001 * (i % 50) for i in range(50)))


@pytest.mark.parametrize("zone", ["Europe/Berlin", "Asia/Kolkata", "Australia/Adelaide", "local"])
def test_day_mapper_matches_zone_conversion(zone):
    tz = resolve_tz(zone)
    days = DayMapper(tz)
    start = datetime(2026, 3, 28, tzinfo=timezone.utc)
    for minute in range(0, 9 * 24 * 60, 13):  # across DST changes, every offset
        at = datetime.fromtimestamp(start.timestamp() + minute * 60, timezone.utc)
        local = at.astimezone(tz) if tz is not None else at.astimezone()
        assert days(at.strftime("%Y-%m-%dT%H:%M:%S.000Z")) == local.date().isoformat()
    assert days("not a time stamp") is None and days("2026-13-01T00:00:00.000Z") is None


@pytest.mark.parametrize("zone", ["Asia/Kolkata", "Asia/Kathmandu", "Europe/Berlin"])
def test_fold_puts_records_on_local_days_where_midnight_splits_an_hour(tmp_path, zone):
    tz = resolve_tz(zone)
    start = datetime(2026, 11, 20, tzinfo=timezone.utc)
    stamps = [datetime.fromtimestamp(start.timestamp() + m * 60, timezone.utc)
              for m in range(0, 2 * 24 * 60, 7)]
    path = tmp_path / "z.jsonl"
    path.write_text("\n".join(rec(t.strftime("%Y-%m-%dT%H:%M:%S.000Z")) for t in stamps) + "\n")
    aggs = Aggregates("2026-11-01")
    fold_mod.fold_file(path, aggs, start=0, days=DayMapper(tz), before_hour="", workers=1)
    expected = Counter(t.astimezone(tz).date().isoformat() for t in stamps)
    got = {d: sum(v[fold_mod.ATT] for v in a.counters.values()) for d, a in aggs.days.items()}
    assert got == dict(expected)
    kolkata = DayMapper(resolve_tz("Asia/Kolkata"))
    assert kolkata("2026-11-20T18:20:00.000Z") == "2026-11-20"  # 23:50 local
    assert kolkata("2026-11-20T18:40:00.000Z") == "2026-11-21"  # 00:10 local, same UTC hour
    assert kolkata.hours["2026-11-20T18"] == ""


def test_garbage_timestamp_is_a_bad_line(tmp_path):
    path = tmp_path / "g.jsonl"
    path.write_text("\n".join([rec("2026-11-25T08:00:00.000Z"), rec("2026-1x-25T08:00:00.000Z")]) + "\n")
    aggs, stats = _fold(path)
    assert stats.bad_lines == 1 and stats.records == 1
    assert sum(v[fold_mod.ATT] for a in aggs.days.values() for v in a.counters.values()) == 1


def test_lines_longer_than_a_block_and_a_torn_tail(tmp_path, monkeypatch):
    """A line longer than a block is read whole; a final line without its newline is left
    for later."""
    monkeypatch.setattr(ledger_reader, "CHUNK_BYTES", 256)
    long_line = json.loads(_many_lines(1)[0])
    long_line["prompt_sha256"] = "x" * 1000
    lines = _many_lines(40)
    lines.insert(7, json.dumps(long_line, separators=(",", ":")))
    path = tmp_path / "long.jsonl"
    body = "\n".join(lines) + "\n"
    path.write_text(body + lines[0][:50])
    aggs, stats = _fold(path)
    assert stats.bad_lines == 0 and stats.records == 41 and stats.end_offset == len(body)
    whole = tmp_path / "whole.jsonl"
    whole.write_text(body)
    monkeypatch.setattr(ledger_reader, "CHUNK_BYTES", 8 << 20)
    assert _summary(aggs) == _summary(_fold(whole)[0])


def test_numbers_in_any_json_form_and_impossible_ones_are_bad_lines(tmp_path):
    lines = [rec(f"2026-11-2{i}T10:00:00.000Z", cost=c, lat=lat)
             for i, (c, lat) in enumerate([(1e-05, 0.5), (2.5e-07, 1000.0), (12.75, 3), (0, None)])]
    lines += [rec("2026-11-25T10:00:00.000Z", cost=1e300), rec("2026-11-25T11:00:00.000Z", lat=-5)]
    path = tmp_path / "n.jsonl"
    path.write_text("\n".join(lines) + "\n")
    aggs, stats = _fold(path)
    assert stats.bad_lines == 2 and stats.records == 4
    counters = [c for a in aggs.days.values() for c in a.counters.values()]
    assert sum(c[fold_mod.COST] for c in counters) == round(1e-05 * 1e12) + round(2.5e-07 * 1e12) + 12_750_000_000_000
    assert sum(c[fold_mod.LAT_US] for c in counters) == 500 + 1_000_000 + 3000
    assert sum(c[fold_mod.LAT_N] for c in counters) == 3
