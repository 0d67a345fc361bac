"""Budget windows in a given time zone: midnight, Monday, the 1st, DST, and the index's days."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from llmroute.budget import spend
from llmroute.budget.windows import describe_reset, earliest_day, window_at, windows_at, zone_for
from llmroute.errors import ConfigError
from llmroute.ledger import Ledger, make_ts

BERLIN = ZoneInfo("Europe/Berlin")


def at(*args, tz=BERLIN) -> float:
    return datetime(*args, tzinfo=tz).timestamp()


def test_daily_window_turns_over_at_local_midnight_not_utc():
    zone = zone_for("Europe/Berlin")
    before = window_at("daily", at(2025, 1, 31, 23, 59, 59), zone)
    after = window_at("daily", at(2025, 2, 1, 0, 0, 1), zone)
    assert before.first_day == "2025-01-31" and after.first_day == "2025-02-01"
    assert before.reset == at(2025, 2, 1) == after.start
    # 23:30 UTC on Jan 31 is already Feb 1 in Berlin
    utc_late = datetime(2025, 1, 31, 23, 30, tzinfo=ZoneInfo("UTC")).timestamp()
    assert window_at("daily", utc_late, zone).first_day == "2025-02-01"


def test_weekly_window_starts_monday_midnight():
    zone = zone_for("Europe/Berlin")
    sunday = windows_at(at(2025, 2, 2, 23, 0), zone)["weekly"]
    monday = windows_at(at(2025, 2, 3, 0, 0), zone)["weekly"]
    assert sunday.first_day == "2025-01-27" and sunday.end_day == "2025-02-03"
    assert monday.first_day == "2025-02-03" and sunday.reset == monday.start == at(2025, 2, 3)


def test_monthly_window_starts_on_the_first_including_year_end_and_february():
    zone = zone_for("Europe/Berlin")
    december = window_at("monthly", at(2024, 12, 31, 23, 59), zone)
    assert (december.first_day, december.end_day) == ("2024-12-01", "2025-01-01")
    february = window_at("monthly", at(2024, 2, 29, 12, 0), zone)
    assert (february.first_day, february.end_day) == ("2024-02-01", "2024-03-01")
    assert window_at("monthly", at(2025, 3, 1, 0, 0), zone).first_day == "2025-03-01"


def test_dst_day_is_23_hours_and_still_one_window():
    zone = zone_for("Europe/Berlin")
    day = window_at("daily", at(2025, 3, 30, 12, 0), zone)
    assert day.reset - day.start == 23 * 3600


def test_earliest_day_reaches_back_to_a_week_starting_last_month():
    zone = zone_for("Europe/Berlin")
    assert earliest_day(at(2025, 3, 2, 12), zone) == "2025-02-24"  # Sunday; week began Feb 24
    assert earliest_day(at(2025, 3, 20, 12), zone) == "2025-03-01"


def test_reset_text_names_time_and_zone():
    zone = zone_for("Europe/Berlin")
    now = at(2025, 1, 31, 21, 30)
    windows = windows_at(now, zone)
    assert describe_reset(windows["daily"], now, zone) == "00:00 Europe/Berlin, in 2h 30m"
    assert describe_reset(windows["weekly"], now, zone).startswith("Mon 2025-02-03 00:00 Europe/Berlin, in 2d")
    assert describe_reset(windows["monthly"], now, zone).startswith("Sat 2025-02-01 00:00")


def test_local_zone_and_unknown_zone():
    assert zone_for("local").tz is None and zone_for(None).name == "local"
    local = zone_for("local")
    now = datetime(2025, 6, 1, 12, 0).timestamp()  # naive = local
    assert window_at("daily", now, local).start == datetime(2025, 6, 1).timestamp()
    with pytest.raises(ConfigError) as info:
        zone_for("Mars/Olympus")
    assert "budget.timezone" in info.value.message


def test_index_buckets_records_by_local_day(tmp_path):
    """Spend at 23:30 UTC on Jan 31 belongs to Feb 1 in Berlin: it counts in February's
    daily and monthly windows, and in the week of Jan 27."""
    zone = zone_for("Europe/Berlin")
    ledger = Ledger(tmp_path / "ledger.jsonl")
    late = datetime(2025, 1, 31, 23, 30, tzinfo=ZoneInfo("UTC")).timestamp()
    ledger.append({"ts": make_ts(late), "status": "ok", "target": "a/m", "provider": "a",
                   "cost_usd": 1.5, "input_tokens": 10, "output_tokens": 5, "price_source": "config"})
    ledger.append({"ts": make_ts(late - 3600), "status": "ok", "target": "a/m", "provider": "a",
                   "cost_usd": 0.25, "input_tokens": 1, "output_tokens": 1, "price_source": "config"})
    index, reason = spend.catch_up(None, ledger.path, zone, "2025-01-01", lambda t, ts: 0)
    assert reason == "no index"
    now = at(2025, 2, 1, 9)
    w = windows_at(now, zone)
    assert spend.totals(index, w["daily"]).usd == 1.5
    assert spend.totals(index, w["monthly"]).usd == 1.5
    assert spend.totals(index, w["weekly"]).usd == 1.75
    assert spend.totals(index, w["weekly"]).tokens == 17


def test_rebuild_reads_every_line_of_a_ledger_out_of_time_order(tmp_path, monkeypatch):
    """A long old part with a recent line in its middle (a merged ledger): the rebuild finds it,
    passing over only blocks whose every line is stamped before the first day needed."""
    from llmroute.ledger import reader as ledger_reader

    monkeypatch.setattr(ledger_reader, "CHUNK_BYTES", 16 << 10)
    zone = zone_for("Europe/Berlin")
    ledger = Ledger(tmp_path / "ledger.jsonl")
    old = at(2024, 11, 1, 12)

    def line(ts, cost):
        return {"ts": make_ts(ts), "status": "ok", "target": "a/m", "provider": "a", "cost_usd": cost,
                "input_tokens": 1, "output_tokens": 1, "price_source": "config", "pad": "x" * 200}

    records = [line(old + i, 1.0) for i in range(2000)]
    records[1000] = line(at(2025, 1, 28, 9), 0.25)  # this week, in the middle of old lines
    ledger.append_many(records)
    ledger.append(line(at(2025, 2, 1, 9), 0.5))
    index, _ = spend.catch_up(None, ledger.path, zone, "2025-01-27", lambda t, ts: 0)
    assert spend.totals(index, windows_at(at(2025, 2, 1, 10), zone)["weekly"]).usd == 0.75
    assert index["offset"] == ledger.path.stat().st_size


def test_an_ab_sample_counts_once_on_the_day_of_its_first_line_in_any_order(tmp_path):
    zone = zone_for("Europe/Berlin")
    ledger = Ledger(tmp_path / "ledger.jsonl")

    def line(ts, ab):
        return {"ts": make_ts(ts), "status": "ok", "target": "a/m", "provider": "a",
                "cost_usd": 0.1, "input_tokens": 1, "output_tokens": 1, "price_source": "config",
                "ab_id": ab}

    ledger.append_many([line(at(2025, 2, 1, 0, 0, 2), "s1"), line(at(2025, 2, 1, 9), "s2")]
                       + [line(at(2025, 2, 1, 10 + n // 60, n % 60), f"x{n}") for n in range(70)])
    index, _ = spend.catch_up(None, ledger.path, zone, "2025-01-27", lambda t, ts: 0)
    ledger.append_many([line(at(2025, 1, 31, 23, 59, 58), "s1"), line(at(2025, 2, 1, 9, 1), "s2")])
    index, _ = spend.catch_up(index, ledger.path, zone, "2025-01-27", lambda t, ts: 0)
    w = windows_at(at(2025, 2, 1, 12), zone)
    assert spend.totals(index, w["daily"]).ab == 71  # s1 began yesterday; s2 counts once
    assert spend.totals(index, w["weekly"]).ab == 72
