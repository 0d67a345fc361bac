"""Totals do not depend on the order of ledger lines (SPEC §5): merged ledgers, clock changes,
long calls appended late. `report` and `budget` give the same figures for a shuffled ledger as
for the sorted one, from scratch and through their incremental indexes; a torn 4 MB line is one
bad line and costs what reading it costs."""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from llmroute.ledger import reader as ledger_reader
from llmroute.report import GROUPINGS, build_report, local_today, make_window, resolve_tz

BERLIN = resolve_tz("Europe/Berlin")
NOW = datetime(2026, 11, 25, 11, 0, tzinfo=timezone.utc)  # a Wednesday
TODAY = local_today(NOW, BERLIN)
WINDOWS = [("today", {}), ("week", {}), ("month", {}), ("days", {"days": 3}),
           ("days", {"days": 40})]
TARGETS = [("openai", "gpt-4o-mini"), ("anthropic", "claude-haiku-4-5"), ("groq", "llama"),
           ("gemini", "gemini-2.5-flash")]


def stamp(epoch: float) -> str:
    moment = datetime.fromtimestamp(epoch, timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{int(epoch * 1000) % 1000:03d}Z"


def line(epoch: float, rid: str | None, attempt: int, ok: bool, rng: random.Random, **extra) -> str:
    provider, model = rng.choice(TARGETS)
    record = {"v": 1, "ts": stamp(epoch), "request_id": rid, "kind": rng.choice(["ask", "batch"]),
              "target": f"{provider}/{model}", "provider": provider, "model": model,
              "route": rng.choice(["default", "cheap", None]), "strategy": "auto",
              "attempt": attempt, "status": "ok" if ok else "error",
              "latency_ms": rng.choice([None, rng.randint(1, 9000), rng.random() * 500]),
              "input_tokens": rng.randint(0, 900), "output_tokens": rng.randint(0, 300) if ok else 0,
              "cost_usd": round(rng.random() * 0.3, 7) if ok else 0.0, "price_source": "config",
              "cached": ok and attempt == 1 and rng.random() < 0.1,
              "tags": rng.choice([[], ["work"], ["work", "ci"]]), "prompt_sha256": "ab" * 32,
              **extra}
    if rid is None:
        del record["request_id"]
    return json.dumps(record, separators=(",", ":"))


def ledger_lines(seed: int = 7, requests: int = 700) -> list[str]:
    """Requests from mid-October to now: some with two or three attempts (answered or not),
    some straddling local midnight, a few without a request_id; sorted by time."""
    rng = random.Random(seed)
    start = datetime(2026, 10, 15, tzinfo=timezone.utc).timestamp()
    lines: list[tuple[float, str]] = []
    for i in range(requests):
        at = start + rng.random() * (NOW.timestamp() - start - 60)
        if i % 40 == 0:  # the last seconds of a Berlin day: later attempts land on the next
            local = datetime.fromtimestamp(at, BERLIN)
            at = datetime.combine(local.date() + timedelta(1), datetime.min.time(),
                                  tzinfo=BERLIN).timestamp() - 3
        attempts = 2 if i % 40 == 0 else rng.choice([1, 1, 1, 1, 2, 3])
        answered = rng.random() > 0.15
        rid = None if i % 97 == 0 else f"q{i}"
        for n in range(1, attempts + 1):
            ok = answered and n == attempts
            ab_id = f"ab{i}" if i % 9 == 0 else None
            lines.append((at + 2.5 * n, line(at + 2.5 * n, rid, n, ok, rng, ab_id=ab_id)))
    return [text for _, text in sorted(lines)]


def write(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(text + "\n" for text in lines))
    return path


def report(path: Path, kind: str, by: str, index: Path | None = None, **kw):
    window = make_window(today=TODAY, kind=kind, **kw)
    return build_report(path, window, by, tz=BERLIN, index_path=index, warn=lambda m: None,
                        workers=1)


def figures(r) -> tuple:
    """Everything a rendering shows."""
    return r.rows, r.totals, r.daily_cost, r.providers, r.budget


def shuffled(lines: list[str], seed: int = 3) -> list[str]:
    copy = list(lines)
    random.Random(seed).shuffle(copy)
    return copy


@pytest.fixture(scope="module")
def sorted_lines() -> list[str]:
    return ledger_lines()


def test_the_ledger_has_what_the_tests_need(sorted_lines):
    records = [json.loads(text) for text in sorted_lines]
    by_request: dict[str, list] = {}
    for record in records:
        by_request.setdefault(record.get("request_id"), []).append(record)
    days = {r["ts"][:10] for rs in by_request.values() for r in rs if len(rs) > 1}
    assert any(len(rs) == 3 for rs in by_request.values()) and len(days) > 20
    local_day = ledger_reader.DayMapper(BERLIN)
    assert any(len({local_day(r["ts"]) for r in rs}) == 2 for rs in by_request.values())


@pytest.mark.parametrize("by", GROUPINGS)
def test_report_of_a_shuffled_ledger_equals_the_sorted_one(tmp_path, sorted_lines, by):
    ordered = write(tmp_path / "sorted.jsonl", sorted_lines)
    mixed = write(tmp_path / "mixed.jsonl", shuffled(sorted_lines))
    for kind, kw in WINDOWS:
        expected = report(ordered, kind, by, **kw)
        assert expected.totals.requests > 0
        assert figures(report(mixed, kind, by, **kw)) == figures(expected), (kind, kw)


def test_incremental_index_over_out_of_order_appends_equals_a_fresh_sorted_report(tmp_path, sorted_lines):
    """The index is built on part of a shuffled ledger; the rest is appended in batches, lines
    of any day (a request's attempts on both sides of the index's offset); after each batch
    every window and grouping equals a fresh report of the same lines, sorted."""
    mixed = shuffled(sorted_lines, seed=11)
    ledger, index = tmp_path / "ledger.jsonl", tmp_path / "state" / "report-index.pickle"
    cut = [len(mixed) * 2 // 5, len(mixed) * 3 // 5, len(mixed) * 4 // 5, len(mixed)]
    write(ledger, mixed[:cut[0]])
    assert report(ledger, "days", "provider", index, days=40).scan.start_offset == 0
    for before, upto in zip(cut, cut[1:]):
        with open(ledger, "a") as fh:
            fh.write("".join(text + "\n" for text in mixed[before:upto]))
        fresh = write(tmp_path / "fresh.jsonl", sorted(mixed[:upto], key=lambda t: json.loads(t)["ts"]))
        for by in GROUPINGS:
            for kind, kw in WINDOWS:
                got = report(ledger, kind, by, index, **kw)
                assert got.scan.start_offset > 0  # the index was used, not rebuilt
                assert figures(got) == figures(report(fresh, kind, by, **kw)), (by, kind, kw)


def test_lines_older_than_the_index_are_kept_for_windows_that_need_them(tmp_path, sorted_lines):
    """An index made for today holds today only; lines of earlier days appended later do not
    change today, and a window reaching back rebuilds from every line, wherever it is."""
    today_lines = [t for t in sorted_lines if json.loads(t)["ts"] >= "2026-11-24T23:00"]
    older = [t for t in sorted_lines if t not in today_lines]
    ledger, index = tmp_path / "ledger.jsonl", tmp_path / "idx.pickle"
    write(ledger, today_lines[::2])
    report(ledger, "today", "model", index)
    with open(ledger, "a") as fh:
        fh.write("".join(text + "\n" for text in shuffled(older + today_lines[1::2])))
    ordered = write(tmp_path / "sorted.jsonl", sorted_lines)
    for kind, kw in WINDOWS:
        assert figures(report(ledger, kind, "model", index, **kw)) == figures(report(ordered, kind, "model", **kw))


def test_a_request_split_by_the_index_offset_counts_once_where_answered(tmp_path):
    rng = random.Random(1)
    at = datetime(2026, 11, 25, 8, tzinfo=timezone.utc).timestamp()
    answer = json.loads(line(at + 5, "split", 2, True, rng))
    answer.update(provider="anthropic", target="anthropic/m", model="m", cached=False)
    failure = json.loads(line(at, "split", 1, False, rng))
    failure.update(provider="openai", target="openai/m", model="m")
    ledger, index = tmp_path / "ledger.jsonl", tmp_path / "idx.pickle"
    write(ledger, [json.dumps(answer)])
    first = {row.key: row for row in report(ledger, "today", "provider", index).rows}
    assert (first["anthropic"].requests, first["anthropic"].fallbacks) == (1, 1)
    with open(ledger, "a") as fh:
        fh.write(json.dumps(failure) + "\n")
    second = report(ledger, "today", "provider", index)
    rows = {row.key: row for row in second.rows}
    assert second.scan.start_offset > 0
    assert (rows["openai"].requests, rows["openai"].attempts) == (0, 1)
    assert (rows["anthropic"].requests, rows["anthropic"].ok, rows["anthropic"].fallbacks) == (1, 1, 1)
    assert (second.totals.requests, second.totals.attempts) == (1, 2)


def test_a_torn_4mb_line_is_one_bad_line_read_once(tmp_path, sorted_lines, monkeypatch):
    """A crash mid-write leaves a 4 MB line without its end. It is skipped and counted, the
    other rows are untouched, and the decoder sees each byte at most twice (its block once
    whole, then line by line); the only pattern run over it is a literal search for line starts,
    so nothing backtracks."""
    torn = '{"v":1,"ts":"2026-11-25T08:00:00.000Z","request_id":"t","prompt":"' + "x" * (4 << 20)
    half = len(sorted_lines) // 2
    ledger = write(tmp_path / "ledger.jsonl", sorted_lines[:half] + [torn] + sorted_lines[half:])
    clean = write(tmp_path / "clean.jsonl", sorted_lines)
    seen = {"bytes": 0, "lines": 0}

    class Counting:
        def __init__(self, decoder):
            self.decoder = decoder

        def decode_lines(self, data):
            seen["bytes"] += len(data)
            return self.decoder.decode_lines(data)

        def decode(self, data):
            seen["bytes"] += len(data)
            seen["lines"] += 1
            return self.decoder.decode(data)

    monkeypatch.setitem(ledger_reader._DECODERS, ledger_reader.Call,
                        Counting(ledger_reader._DECODERS[ledger_reader.Call]))
    warnings: list[str] = []
    window = make_window(today=TODAY, kind="days", days=40)
    got = build_report(ledger, window, "provider", tz=BERLIN, index_path=None,
                       warn=warnings.append, workers=1)
    assert got.scan.bad_lines == 1 and len(warnings) == 1 and "skipped 1 invalid line" in warnings[0]
    assert seen["bytes"] <= 2 * ledger.stat().st_size
    assert seen["lines"] <= len(sorted_lines) + 1  # one by one: only the torn line's block
    assert figures(got) == figures(report(clean, "days", "provider", days=40))


def budget_totals(index: dict) -> dict:
    from llmroute.budget import spend
    from llmroute.budget.windows import windows_at, zone_for

    return spend.totals_by_window(index, windows_at(NOW.timestamp(), zone_for("Europe/Berlin")))


def test_budget_totals_of_a_shuffled_ledger_equal_the_sorted_ones(tmp_path, sorted_lines):
    """Dollars, tokens, per-provider figures and A/B samples of every budget window, from a
    rebuild and from an index caught up on out-of-order appends, equal the sorted ledger's."""
    from llmroute.budget import spend
    from llmroute.budget.windows import earliest_day, zone_for

    zone = zone_for("Europe/Berlin")
    first = earliest_day(NOW.timestamp(), zone)
    never_open = lambda target, ts: 0  # noqa: E731

    def rebuilt(path: Path) -> dict:
        return spend.catch_up(None, path, zone, first, never_open)[0]

    expected = budget_totals(rebuilt(write(tmp_path / "sorted.jsonl", sorted_lines)))
    assert expected["monthly"].usd > 0 and expected["monthly"].ab > 0 and expected["daily"].tokens > 0
    mixed = shuffled(sorted_lines, seed=5)
    assert budget_totals(rebuilt(write(tmp_path / "mixed.jsonl", mixed))) == expected
    ledger = write(tmp_path / "ledger.jsonl", mixed[: len(mixed) // 3])
    index = rebuilt(ledger)
    for part in (mixed[len(mixed) // 3: len(mixed) * 2 // 3], mixed[len(mixed) * 2 // 3:]):
        with open(ledger, "a") as fh:
            fh.write("".join(text + "\n" for text in part))
        index, reason = spend.catch_up(index, ledger, zone, first, never_open)
        assert reason is None  # caught up, not rebuilt
    assert budget_totals(index) == expected


def test_the_index_forgets_days_no_window_needs_and_keeps_answering_the_same(tmp_path, sorted_lines):
    """An index built for a long window keeps only the days recent windows can need once a
    report asks for less (62 days before the first day needed); the figures stay those of a
    fresh report."""
    from llmroute.report.fold import safe_loads

    rng = random.Random(2)
    september = datetime(2026, 9, 2, tzinfo=timezone.utc).timestamp()
    old = [line(september + 3600 * i + n, f"old{i}", n, n == 2, rng) for i in range(200) for n in (1, 2)]
    ledger, index = write(tmp_path / "ledger.jsonl", shuffled(old + sorted_lines)), tmp_path / "idx.pickle"
    report(ledger, "since", "provider", index, since="2026-09-01")
    whole = safe_loads(index.read_bytes())["aggregates"]
    assert whole.from_day == "2026-09-01" and any(s[2][0] < "2026-09-24" for s in whole.tracked.values())
    got = report(ledger, "today", "provider", index)  # needs Nov 25: keeps Sep 24 on
    kept = safe_loads(index.read_bytes())["aggregates"]
    assert got.scan.start_offset > 0  # pruned, not rebuilt
    assert kept.from_day == "2026-09-24" and min(kept.days) >= "2026-09-24"
    assert kept.tracked and all(state[2][0] >= "2026-09-24" for state in kept.tracked.values())
    for kind, kw in WINDOWS:
        assert figures(report(ledger, kind, "tag", index, **kw)) == figures(
            report(ledger, kind, "tag", None, **kw))
