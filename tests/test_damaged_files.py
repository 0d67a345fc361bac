"""Damaged or unwritable files (issue 13): llmroute's own files may be hand-edited, truncated or
filled with garbage; none of that may turn into "internal error". State files of the wrong shape
are set aside and rebuilt (the budget from the ledger), a damaged cache is set aside, and the
command goes on."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from llmroute.budget.spend import INDEX_VERSION
from .support import invoke

CONFIG = """\
version: 1
defaults: {strategy: priority, retries: 0}
providers:
  demo:
    type: mock
    reply: "echo: {prompt}"
    models:
      small: {input: 1.0, output: 2.0}
      big: {input: 1.0, output: 2.0, tier: large}
  flaky:
    type: mock
    fail_rate: 1.0
    priority: 90
    models:
      bad: {input: 1.0, output: 2.0}
routes:
  default: [demo/small, demo/big]
  both: [flaky/bad, demo/small]
budget:
  daily: 5
  alert_at: [0.5]
ledger:
  log_prompts: true
"""


@pytest.fixture
def cli(tmp_path, isolated_env):
    config = tmp_path / "cfg.yaml"
    config.write_text(CONFIG)

    def run(*args: str) -> tuple[int, str, str]:
        return invoke(["--config", str(config), *args])

    code, out, err = run("warm up the state files")
    assert code == 0, err
    return run


def ledger(home: Path) -> list[dict]:
    return [json.loads(line) for line in (home / "ledger.jsonl").read_text().splitlines()]


def damage(home: Path, name: str, document) -> Path:
    path = home / "state" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document))
    return path


def assert_clean(code: int, err: str) -> None:
    assert code == 0, err
    assert "internal error" not in err and "Traceback" not in err


# --- state files of the wrong shape -----------------------------------------------------------

COMMANDS = [("ask", ["--no-cache", "hello"]), ("budget", ["budget"]), ("explain", ["--explain", "hello"]),
            ("fallback", ["-r", "both", "hello"])]

BUDGET_DOCUMENTS = [
    [1, 2, 3],
    "x",
    {"reservations": [1, 2, 3]},
    {"reservations": "x"},
    {"reservations": {"r1": {"pid": 1, "usd": "lots", "tok": 5, "provider": "demo",
                             "target": "demo/small", "created": 1.0}}},
    {"spend": {"v": INDEX_VERSION, "tz": "local", "days": [1]}},
    {"spend": {"v": INDEX_VERSION, "tz": "local", "from": "2020-01-01", "offset": "x", "days": {},
               "pending": [], "ab_recent": []}},
    {"spend": {"v": INDEX_VERSION, "tz": "local", "from": "2020-01-01", "offset": 0, "dev": None,
               "ino": None, "days": {"2020-01-01": {"u": 1, "t": 1, "p": []}}, "pending": [],
               "ab_recent": []}},
    {"alerts": {"no-separators": 1}},
    {"alerts": [1, 2]},
]


@pytest.mark.parametrize("document", BUDGET_DOCUMENTS, ids=json.dumps)
@pytest.mark.parametrize("name, args", COMMANDS, ids=[c[0] for c in COMMANDS])
def test_budget_state_of_the_wrong_shape_is_set_aside(cli, isolated_env, document, name, args):
    damage(isolated_env, "budget.json", document)
    code, out, err = cli(*args)
    assert_clean(code, err)
    assert out.strip()
    assert list((isolated_env / "state").glob("budget.json.corrupt-*")) or not isinstance(document, dict)


@pytest.mark.parametrize("document", BUDGET_DOCUMENTS[2:], ids=json.dumps)
def test_budget_is_rebuilt_from_the_ledger_after_a_damaged_state(cli, isolated_env, document):
    spent = sum(r["cost_usd"] for r in ledger(isolated_env) if r["status"] == "ok")
    assert spent > 0
    damage(isolated_env, "budget.json", document)
    code, out, err = cli("budget", "--json")
    assert_clean(code, err)
    assert json.loads(out)["spent"]["daily"]["usd"] == pytest.approx(spent, abs=1e-6)
    assert "budget.json was unreadable; kept it as budget.json.corrupt-" in err


ROUTING_DOCUMENTS = [
    {"breakers": [1, 2, 3]},  # circuit breakers
    {"limits": "x"},  # rate limits
    {"round_robin": [1]},  # round-robin cursors
    {"latency": 5, "recent": [1]},
    {"quality": "x"},
    {"breakers": {"flaky/bad": {"failures": "x", "opens": [1], "open_until": 1.0}}},
    {"limits": {"flaky/bad": {"blocked_until": "soon"}}, "recent": {"flaky": [["x", 1]]}},
]


@pytest.mark.parametrize("document", ROUTING_DOCUMENTS, ids=json.dumps)
@pytest.mark.parametrize("name, args", COMMANDS + [("round-robin", ["--strategy", "round-robin", "hi"]),
                                                   ("quality", ["--strategy", "quality", "hi"])],
                         ids=[c[0] for c in COMMANDS] + ["round-robin", "quality"])
def test_routing_memory_of_the_wrong_shape_never_breaks_a_command(cli, isolated_env, document, name, args):
    damage(isolated_env, "routing.json", document)
    code, out, err = cli(*args)
    assert_clean(code, err)
    assert out.strip()


def test_a_huge_breaker_count_still_opens_with_the_longest_cooldown():
    from llmroute.routing.memory import MAX_COOLDOWN_S, cooldown_for

    assert cooldown_for(10**6) == MAX_COOLDOWN_S


@pytest.mark.parametrize("document", [[1], {"providers": [1, 2]}, {"providers": "x"},
                                      {"providers": {"demo": [[1e30, "up", 1e400, True], "x"]}}],
                         ids=json.dumps)
def test_health_history_of_the_wrong_shape_is_set_aside(cli, isolated_env, document):
    path = damage(isolated_env, "health.json", document)
    if document == {"providers": {"demo": [[1e30, "up", 1e400, True], "x"]}}:
        path.write_text('{"providers": {"demo": [[1e30, "up", Infinity, true], "x"]}}')
    code, out, err = cli("health", "demo")
    assert_clean(code, err)
    assert "demo" in out and "up" in out


@pytest.mark.parametrize("name, document", [
    ("quality.json", {"pairs": [1, 2, 3]}), ("quality.json", {"pairs": "x"}),
    ("feedback.json", {"votes": [1, 2, 3]}), ("feedback.json", {"votes": "x"}),
], ids=lambda value: json.dumps(value))
def test_quality_and_feedback_of_the_wrong_shape_are_set_aside(cli, isolated_env, name, document):
    damage(isolated_env, name, document)
    code, out, err = cli("feedback", "last", "up")
    assert_clean(code, err)
    assert "recorded up" in err
    assert f"{name} was unreadable" in err
    code, out, err = cli("--strategy", "quality", "hello")
    assert_clean(code, err)


# --- a damaged or unusable response cache --------------------------------------------------------


@pytest.fixture
def cached_cli(tmp_path, isolated_env):
    config = tmp_path / "cached.yaml"
    config.write_text(CONFIG + "cache: {enabled: true}\n")

    def run(*args: str) -> tuple[int, str, str]:
        return invoke(["--config", str(config), *args])

    return run


def _filled_cache(home: Path, entries: int = 300) -> Path:
    from llmroute.cache import ResponseCache

    cache = ResponseCache.for_data_dir(home, ttl=3600)
    for i in range(entries):
        cache.put(f"k{i}", target="demo/small", route=None, text="x" * 400, usage=None)
    cache.close()
    path = home / "cache.sqlite3"
    with sqlite3.connect(path) as db:  # fold the WAL into the file, so damage to it is real damage
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path


def _damage(path: Path, how: str) -> None:
    data = path.read_bytes()
    if how == "random bytes":
        path.write_bytes(bytes((i * 7919 + 13) % 256 for i in range(5000)))
    elif how == "truncated":
        path.write_bytes(data[: len(data) // 3])
    else:  # one page in the middle overwritten
        path.write_bytes(data[:8192] + b"\xff" * 4096 + data[12288:])


DAMAGE = ["random bytes", "truncated", "garbage page"]


@pytest.mark.parametrize("how", DAMAGE)
def test_ask_with_a_damaged_cache_sets_it_aside_and_answers(cached_cli, isolated_env, how):
    _damage(_filled_cache(isolated_env), how)
    code, out, err = cached_cli("what is 2+2")
    assert_clean(code, err)
    assert out == "echo: what is 2+2\n"
    assert err.count("\n") == 1 and "cache.sqlite3 was damaged" in err and "kept it as cache.sqlite3.corrupt-" in err
    assert len(list(isolated_env.glob("cache.sqlite3.corrupt-*[0-9Z]"))) == 1
    code, out, err = cached_cli("what is 2+2")  # the fresh cache works: a hit, no more warnings
    assert_clean(code, err)
    assert out == "echo: what is 2+2\n" and err == ""
    assert ledger(isolated_env)[-1]["cached"] is True


@pytest.mark.parametrize("how, command", [(how, command) for how in DAMAGE for command in ("stats", "clear")
                                           if (how, command) != ("garbage page", "stats")])
def test_cache_stats_and_clear_work_on_a_damaged_cache(cached_cli, isolated_env, how, command):
    """(`stats` may not read the one damaged page at all; then there is nothing to repair.)"""
    _damage(_filled_cache(isolated_env), how)
    code, out, err = cached_cli("cache", command)
    assert_clean(code, err)
    assert "cache.sqlite3 was damaged" in err
    assert ("entries:  0" in out) if command == "stats" else ("removed" in out)
    code, out, err = cached_cli("cache", "stats", "--json")
    assert_clean(code, err)
    assert json.loads(out)["entries"] == 0 and err == ""


def test_a_cache_that_cannot_be_opened_is_skipped_with_one_warning(cached_cli, isolated_env):
    (isolated_env / "cache.sqlite3").mkdir(parents=True)  # not a file at all: not damage, unusable
    code, out, err = cached_cli("hello")
    assert_clean(code, err)
    assert out == "echo: hello\n"
    assert err.count("\n") == 1 and "response cache" in err and "answering without it" in err
    code, out, err = cached_cli("cache", "stats")
    assert code == 1 and out == ""
    assert "cannot use the response cache" in err and "internal error" not in err
    assert len(err.strip().splitlines()) == 2


def test_two_processes_finding_the_same_damage_set_aside_only_the_damaged_file(tmp_path):
    """The second finder holds a connection to the damaged file; it must not set aside the
    fresh file the first one already created."""
    from llmroute.cache import ResponseCache

    path = _filled_cache(tmp_path)
    _damage(path, "garbage page")
    warnings: list[str] = []
    first = ResponseCache(path, ttl=3600, warn=warnings.append)
    second = ResponseCache(path, ttl=3600, warn=warnings.append)
    second.stats()  # connected to the damaged file, which still opens
    first.clear()  # finds the damage, sets the file aside, starts a fresh one
    first.put("new", target="demo/small", route=None, text="fresh", usage=None)
    assert second.clear() == 1  # found the damage too, but cleared the fresh file
    assert len(warnings) == 1
    assert len([p for p in tmp_path.iterdir() if p.name.endswith("Z")]) == 1
    first.close()
    second.close()


@pytest.mark.parametrize("name, document, args", [
    ("abtest.json", {"tests": [1, 2, 3]}, ["abtest", "report"]),
    ("abtest.json", {"tests": "x"}, ["abtest", "report"]),
    ("abtest_pending.json", {"pairs": [1, 2, 3]}, ["abtest", "judge", "--judge", "demo/small"]),
], ids=lambda value: json.dumps(value))
def test_ab_test_state_of_the_wrong_shape_is_set_aside(cli, isolated_env, name, document, args):
    damage(isolated_env, name, document)
    code, out, err = cli(*args)
    assert_clean(code, err)
    assert f"{name} was unreadable" in err
