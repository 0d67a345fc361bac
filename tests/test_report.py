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

from llmroute.config.model import Limits
from llmroute.errors import UsageError
from llmroute.report import build_report, local_today, make_window, midnight_utc, resolve_tz
from llmroute.report.aggregate import EXACT_LIMIT, LatencyDigest
from llmroute.report.html import render_html
from llmroute.report.render import render, render_chart, render_csv, render_json

BERLIN = resolve_tz("Europe/Berlin")
# Wednesday 2026-11-25 12:00 Berlin (11:00 UTC). Monday = 2026-11-23, month from 2026-11-01.
NOW = datetime(2026, 11, 25, 11, 0, tzinfo=timezone.utc)
TODAY = local_today(NOW, BERLIN)


def rec(ts, provider="openai", model="gpt-4o-mini", *, status="ok", attempt=1, cost=0.01,
        tin=100, tout=50, lat=1000, cached=False, tags=(), route="default", kind="ask", sep=","):
    data = {"v": 1, "ts": ts, "request_id": "r1", "kind": kind, "target": f"{provider}/{model}",
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


def report(ledger, kind="week", by="provider", index=None, warnings=None, limits=None, **kw):
    window = make_window(today=TODAY, kind=kind, **kw)
    sink = warnings if warnings is not None else []
    return build_report(ledger, window, by, tz=BERLIN, index_path=index, warn=sink.append,
                        limits=limits)


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
    data = json.loads(render_json(r))
    assert data["totals"]["requests"] == 6 and data["totals"]["cost_usd"] == pytest.approx(15.0)
    md = render(r, "markdown")
    assert "| provider" in md and "|:--" in md.replace("| provider", "")
    table = render(r, "table")
    assert "TOTAL" in table and "openai" in table


def test_chart_has_bars(ledger):
    chart = render_chart(report(ledger, "week"))
    assert "█" in chart and "2026-11-25" in chart and "$8.00" in chart


def test_budget_lines(ledger):
    limits = Limits(daily=16.0, weekly=24.0, monthly=30.0, tokens_daily=1000)
    r = report(ledger, "today", limits=limits)
    texts = [b.text() for b in r.budget]
    assert "Daily budget: $8.00 of $16.00 (50%)" in texts
    assert "Weekly budget: $12.00 of $24.00 (50%)" in texts
    assert "Monthly budget: $15.00 of $30.00 (50%)" in texts
    assert "Daily tokens: 400 of 1,000 (40%)" in texts
    assert "Daily budget" in render(r, "table")


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
    replacement.write_text("\n".join(LINES[3:]) + "\n" + "\n".join(LINES[3:]) + "\n")
    os.replace(replacement, ledger)  # new inode, larger
    r = report(ledger, "month", index=index)
    assert r.scan.start_offset == 0 and r.totals.requests == 8


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
    assert r.scan.bad_lines == 2 and len(warnings) == 2
    assert "invalid line at byte" in warnings[0]
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


# --- the fast cold scan: patterns, column fold, skipping, worker processes -------------------

from llmroute.report import aggregate as agg_mod  # noqa: E402
from llmroute.report import parallel as par_mod  # noqa: E402
from llmroute.report.model import Aggregates, DayMapper  # noqa: E402


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
                         sep=sep))
    return lines


def _fold(path, from_day="2026-11-01", workers=1):
    aggs = Aggregates(from_day, midnight_utc(date.fromisoformat(from_day), BERLIN))
    warnings = []
    result = agg_mod.scan(path, aggs, start_offset=0, days=DayMapper(BERLIN), warn=warnings.append,
                          workers=workers)
    return aggs, result, warnings


def _summary(aggs):
    counters = {(day, combo): [round(v, 9) for v in vals]
                for day, a in aggs.days.items() for combo, vals in a.counters.items()}
    digests = {(day, m): (d.count, sorted(d.exact) if d.exact is not None else sorted(d.bins.items()))
               for day, a in aggs.days.items() for m, d in a.latency.items()}
    return counters, digests


def test_fast_path_equals_json_path(tmp_path):
    """Compact lines take the exact-key regex; the same records spaced or with escaped quotes
    take the flexible one, and every other line with its keys reversed takes json.loads: all
    fold to the same aggregates."""
    compact, spaced, escaped = tmp_path / "c.jsonl", tmp_path / "s.jsonl", tmp_path / "e.jsonl"
    mixed = tmp_path / "m.jsonl"
    mixed.write_text("\n".join(json.dumps(dict(reversed(json.loads(line).items()))) if i % 2 else line
                               for i, line in enumerate(_many_lines())) + "\n")
    compact.write_text("\n".join(_many_lines()) + "\n")
    spaced.write_text("\n".join(_many_lines(sep=", ")) + "\n")
    escaped.write_text("\n".join(line.replace('"prompt_sha256":"', '"prompt_sha256":"\\"q\\" ')
                                 for line in _many_lines()) + "\n")
    expected = _summary(_fold(compact)[0])
    assert expected[0] and _summary(_fold(spaced)[0]) == expected
    assert _summary(_fold(escaped)[0]) == expected
    assert _summary(_fold(mixed)[0]) == expected


def test_small_latency_groups_stay_exact_large_ones_binned(tmp_path):
    path = tmp_path / "l.jsonl"
    path.write_text("\n".join(_many_lines()) + "\n")
    aggs, _, _ = _fold(path)
    day = aggs.days["2026-11-21"]
    assert day.latency[("*", "*")].exact is None  # ~100 values a day: binned
    assert day.latency[("kind", "batch")].exact is not None  # ~20: exact values kept
    assert day.latency[("kind", "batch")].count == len(day.latency[("kind", "batch")].exact)


def test_parallel_scan_equals_serial(tmp_path, monkeypatch):
    monkeypatch.setattr(agg_mod, "CHUNK_BYTES", 16 << 10)
    monkeypatch.setattr(par_mod, "CHUNK_BYTES", 16 << 10)
    path = tmp_path / "p.jsonl"
    lines = _many_lines(2000)
    lines.insert(700, '{"v":1,"ts":"2026-11-21T10:00:00.000Z", torn')
    path.write_text("\n".join(lines) + "\n" + lines[5][:30])  # partial last line
    serial, s_result, s_warn = _fold(path)
    parallel, p_result, p_warn = _fold(path, workers=2)
    assert _summary(parallel) == _summary(serial)
    assert p_result.end_offset == s_result.end_offset == path.stat().st_size - 30
    assert p_result.bad_lines == s_result.bad_lines == 1 and len(p_warn) == len(s_warn) == 1
    assert p_result.records == s_result.records


def test_workers_take_their_own_run_then_steal_from_the_back_of_the_largest():
    """Every stripe is taken exactly once; a worker takes its own run front to back, and when
    it is done, the back of the run with most left (so partials overlap in few days)."""
    import multiprocessing

    stripes = [(i, i + 1) for i in range(10)]
    runs = multiprocessing.get_context().Array("i", [0, 3, 3, 10])
    fast, slow = par_mod._taken(stripes, runs, 0), par_mod._taken(stripes, runs, 1)
    order = [next(fast), next(fast), next(fast), next(slow), next(fast), next(fast), next(slow)]
    assert [s[0] for s in order] == [0, 1, 2, 3, 9, 8, 4]
    rest = [s[0] for s in fast] + [s[0] for s in slow]
    assert sorted([s[0] for s in order] + rest) == list(range(10))


def test_old_chunks_skipped_but_not_a_late_old_looking_one(tmp_path, monkeypatch):
    monkeypatch.setattr(agg_mod, "CHUNK_BYTES", 8 << 10)
    path = tmp_path / "k.jsonl"
    old = [rec(f"2026-10-{1 + i // 100:02d}T{i % 24:02d}:00:00.000Z", cost=1.0) for i in range(600)]
    old[300] = rec("2026-11-24T12:00:00.000Z", cost=5.0)  # out of order, inside an old chunk
    path.write_text("\n".join(old + _many_lines(50)) + "\n")
    aggs, result, _ = _fold(path, from_day="2026-11-20")
    assert result.chunks_skipped >= 3
    assert aggs.days["2026-11-24"].counters
    total = sum(v[4] for a in aggs.days.values() for v in a.counters.values())
    assert total == pytest.approx(5.0 + sum(0.001 * (i % 50) for i in range(50)))


@pytest.mark.parametrize("zone", ["Europe/Berlin", "Asia/Kolkata", "Australia/Adelaide", "local"])
def test_day_mapper_matches_zone_conversion(zone):
    tz = resolve_tz(zone)
    days = DayMapper(tz)
    start = datetime(2026, 3, 28, tzinfo=timezone.utc)
    for minute in range(0, 9 * 24 * 60, 13):  # across DST changes, every offset
        at = datetime.fromtimestamp(start.timestamp() + minute * 60, timezone.utc)
        local = at.astimezone(tz) if tz is not None else at.astimezone()
        assert days(at.strftime("%Y-%m-%dT%H:%M")) == local.date().isoformat()
    assert days("not a time stamp") is None and days("2026-13-01T00:00") is None


@pytest.mark.parametrize("zone", ["Asia/Kolkata", "Asia/Kathmandu", "Europe/Berlin"])
def test_fold_days_by_hour_and_by_minute_where_midnight_splits_an_hour(tmp_path, zone):
    """The fold maps whole UTC hours to a local day at once and goes minute by minute only in
    hours that local midnight splits (UTC+5:30, UTC+5:45): every record lands on its local day."""
    tz = resolve_tz(zone)
    start = datetime(2026, 11, 20, tzinfo=timezone.utc)
    stamps = [datetime.fromtimestamp(start.timestamp() + m * 60, timezone.utc)
              for m in range(0, 2 * 24 * 60, 7)]
    path = tmp_path / "z.jsonl"
    path.write_text("\n".join(rec(t.strftime("%Y-%m-%dT%H:%M:%S.000Z")) for t in stamps) + "\n")
    aggs = Aggregates("2026-11-01", midnight_utc(date(2026, 11, 1), tz))
    agg_mod.scan(path, aggs, start_offset=0, days=DayMapper(tz), warn=print, workers=1)
    expected = Counter(t.astimezone(tz).date().isoformat() for t in stamps)
    got = {d: sum(v[0] for v in a.counters.values()) for d, a in aggs.days.items()}
    assert got == dict(expected)
    mapper = DayMapper(resolve_tz("Asia/Kolkata"))
    assert mapper.hour_day("2026-11-20T18") == ""  # 23:30..00:29 local: two days
    assert mapper.hour_day("2026-11-20T19") == "2026-11-21" and mapper.hour_day("nonsense") == ""


def test_garbage_timestamp_is_a_bad_line(tmp_path):
    path = tmp_path / "g.jsonl"
    path.write_text("\n".join([rec("2026-11-25T08:00:00.000Z"), rec("2026-1x-25T08:00:00.000Z")]) + "\n")
    aggs, result, warnings = _fold(path)
    assert result.bad_lines == 1 and len(warnings) == 1
    assert sum(v[0] for a in aggs.days.values() for v in a.counters.values()) == 1


def test_parallel_scan_falls_back_to_one_process(tmp_path, monkeypatch):
    def no_processes(*args, **kwargs):
        raise OSError("no semaphores here")

    monkeypatch.setattr(par_mod, "ProcessPoolExecutor", no_processes)
    monkeypatch.setattr(par_mod, "CHUNK_BYTES", 16 << 10)
    path = tmp_path / "f.jsonl"
    path.write_text("\n".join(_many_lines(1000)) + "\n")
    fallback, result, _ = _fold(path, workers=2)
    assert _summary(fallback) == _summary(_fold(path)[0]) and result.end_offset == path.stat().st_size


def test_exact_pattern_captures_runs_and_matches_flexible_columns():
    """The exact pattern captures kind..status and cached..tags as one group each (fields come
    from a memo of the run's text): its columns equal the flexible pattern's, field by field."""
    from llmroute.report.extract import _runs, patterns_for, to_fields

    text = "\n".join(_many_lines()) + "\n"
    keys = tuple(json.loads(text.split("\n", 1)[0]))
    runs = _runs(keys)
    assert ("kind", "target", "provider", "model", "route", "strategy", "attempt", "status") in runs
    assert ("cached", "tags") in runs and ("ts",) in runs
    (exact, exact_cols), (flexible, flexible_cols) = patterns_for(text, {})
    assert exact.groups < flexible.groups
    found = exact.findall(text)
    assert len(found) == 600
    chunk = exact_cols(found)
    assert len(chunk.cols) == 7  # ts, latency, tokens in/out, cost, kind..status, cached+tags
    assert [tuple(c) for c in to_fields(chunk)] == [
        tuple(c) for c in to_fields(flexible_cols(flexible.findall(text)))]
    assert [tuple(c) for c in to_fields(exact_cols([]))] == [()] * 14


def test_runs_keep_fillers_inside_only():
    from llmroute.report.extract import _runs

    assert _runs(("ts", "strategy", "kind", "strategy", "status", "strategy", "latency_ms")) == [
        ("ts",), ("strategy",), ("kind", "strategy", "status"), ("strategy",), ("latency_ms",)]


def test_chunk_reads_lines_longer_than_a_chunk_and_leave_a_torn_tail(tmp_path, monkeypatch):
    """Chunks restart at the last line end (no carried-over copy); a line longer than a chunk
    is read whole, and a final line without its newline is left for later."""
    monkeypatch.setattr(agg_mod, "CHUNK_BYTES", 256)
    long_line = json.loads(_many_lines(1)[0])
    long_line["prompt_sha256"] = "x" * 1000
    lines = _many_lines(40)
    lines.insert(7, json.dumps(long_line, separators=(",", ":")))
    path = tmp_path / "long.jsonl"
    body = "\n".join(lines) + "\n"
    path.write_text(body + lines[0][:50])
    aggs, result, warnings = _fold(path)
    assert not warnings and result.records == 41 and result.end_offset == len(body)
    whole = tmp_path / "whole.jsonl"
    whole.write_text(body)
    monkeypatch.setattr(agg_mod, "CHUNK_BYTES", 8 << 20)
    assert _summary(aggs) == _summary(_fold(whole)[0])


def test_exact_pattern_reads_exponents_and_fractions_like_flexible():
    from llmroute.report.extract import patterns_for, to_fields

    lines = [rec(f"2026-11-2{i % 5}T10:00:00.000Z", cost=c, lat=lat)
             for i, (c, lat) in enumerate([(1e-05, 0.5), (2.5e-07, 1000.0), (12.75, 3), (0, None),
                                           (1e+300, 7.25e2)])]
    text = "\n".join(lines) + "\n"
    (exact, exact_cols), (flexible, flexible_cols) = patterns_for(text, {})
    found = exact.findall(text)
    assert len(found) == 5
    cols = to_fields(exact_cols(found))
    assert cols == to_fields(flexible_cols(flexible.findall(text)))
    assert cols[11] == ("1e-05", "2.5e-07", "12.75", "0", "1e+300")
    assert cols[8] == ("0.5", "1000.0", "3", "null", "725.0")


def test_cold_build_skips_the_old_part_of_a_long_ledger_with_the_same_result(tmp_path):
    """A build from scratch binary-searches `ts` past days it does not need; the aggregates are
    those of a full read."""
    import json as _json

    from llmroute.ledger import make_ts
    from llmroute.report.index import _cold_start

    ledger = tmp_path / "ledger.jsonl"
    base = 1_700_000_000.0
    lines = [_json.dumps({"v": 1, "ts": make_ts(base + i * 600), "kind": "ask", "provider": "p",
                          "status": "ok", "cost_usd": 0.001, "input_tokens": 1, "output_tokens": 1,
                          "latency_ms": 100, "pad": "x" * 200}) for i in range(2000)]
    ledger.write_text("\n".join(lines) + "\n")
    size = ledger.stat().st_size
    cutoff = make_ts(base + 1500 * 600)
    start = _cold_start(ledger, size, cutoff)
    assert 0 < start < size  # the older part is skipped ...
    head = ledger.read_bytes()[:start].decode().splitlines()
    late = [l for l in head if _json.loads(l)["ts"] >= make_ts(base + 1500 * 600 - 86400)]
    assert late == []  # ... and nothing within a day of the cutoff is
