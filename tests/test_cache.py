"""The response cache: keys, hits/misses/expiry with an injected clock, the engine hook and its
ledger record, the CLI (`--cache`, `cache stats|clear`), and 20 processes sharing one database."""

from __future__ import annotations

import json
import multiprocessing
import stat
from pathlib import Path


from llmroute.cache import ResponseCache, cache_key
from llmroute.types import Message, Request, Usage

from .test_cli_ask import invoke
from .support import project_config

CONFIG = """\
version: 1
providers:
  demo:
    type: mock
    reply: "echo: {prompt}"
    models:
      small: {input: 1.0, output: 2.0}
routes:
  default: [demo/small]
cache:
  enabled: CACHE_ON
  ttl: 60
"""


def request(text="hi", **kw) -> Request:
    return Request(messages=(Message("user", text),), **kw)


class Clock:
    def __init__(self, now=1000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_key_depends_on_exactly_the_request_fields_that_matter():
    base = cache_key(request(), None, None)
    assert base == cache_key(request(), None, None)
    variants = [
        cache_key(request("other"), None, None),
        cache_key(request(system="be brief"), None, None),
        cache_key(request(max_tokens=5), None, None),
        cache_key(request(temperature=0.2), None, None),
        cache_key(request(), "demo/small", None),
        cache_key(request(), None, "strong"),
    ]
    assert len({base, *variants}) == 7


def test_hit_miss_and_expiry_with_an_injected_clock(tmp_path):
    clock = Clock()
    cache = ResponseCache(tmp_path / "c.sqlite3", ttl=60, clock=clock)
    assert cache.get("k") is None
    cache.put("k", target="demo/small", route="default", text="answer", usage=Usage(3, 4))
    hit = cache.get("k")
    assert (hit.target, hit.route, hit.text, hit.usage) == ("demo/small", "default", "answer", Usage(3, 4))
    clock.now += 59.9
    assert cache.get("k") is not None
    clock.now += 0.2
    assert cache.get("k") is None  # expired and removed
    stats = cache.stats()
    assert (stats.entries, stats.hits, stats.misses) == (0, 2, 2) and stats.hit_rate == 0.5
    assert stats.size_bytes > 0


def test_clear_removes_entries_and_counters_and_the_file_is_private(tmp_path):
    cache = ResponseCache(tmp_path / "d" / "c.sqlite3", ttl=60, clock=Clock())
    cache.put("a", target="t/m", route=None, text="x", usage=None)
    cache.get("a")
    assert cache.get("a").usage is None
    assert stat.S_IMODE((tmp_path / "d" / "c.sqlite3").stat().st_mode) == 0o600
    assert cache.clear() == 1
    stats = cache.stats()
    assert (stats.entries, stats.hits, stats.misses) == (0, 0, 0)


def test_stats_of_a_missing_cache_do_not_create_it(tmp_path):
    cache = ResponseCache(tmp_path / "none.sqlite3", ttl=60)
    assert cache.stats().entries == 0 and cache.clear() == 0
    assert not (tmp_path / "none.sqlite3").exists()


def _worker(path: str, worker: int, rounds: int, queue) -> None:
    try:
        cache = ResponseCache(Path(path), ttl=3600)
        for i in range(rounds):
            cache.put(f"w{worker}-{i}", target="t/m", route=None, text=f"{worker}:{i}", usage=Usage(1, 1))
            cache.put("shared", target="t/m", route=None, text=f"{worker}", usage=None)
            assert cache.get(f"w{worker}-{i}").text == f"{worker}:{i}"
            cache.get("shared")
        cache.close()
        queue.put(("ok", worker))
    except BaseException as error:  # report, do not hang the parent
        queue.put(("error", repr(error)))


def test_twenty_processes_share_one_database_safely(tmp_path):
    path = tmp_path / "cache.sqlite3"
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    rounds = 15
    processes = [context.Process(target=_worker, args=(str(path), w, rounds, queue)) for w in range(20)]
    for process in processes:
        process.start()
    results = [queue.get(timeout=120) for _ in processes]
    for process in processes:
        process.join(timeout=60)
    assert all(kind == "ok" for kind, _ in results), results
    stats = ResponseCache(path, ttl=3600).stats()
    assert stats.entries == 20 * rounds + 1
    assert stats.hits == 20 * rounds * 2 and stats.misses == 0


# --- through the CLI and the engine ----------------------------------------------------------


def _config(tmp_path, enabled: bool) -> None:
    project_config(tmp_path).write_text(CONFIG.replace("CACHE_ON", "true" if enabled else "false"))


def _ledger(home: Path) -> list[dict]:
    return [json.loads(line) for line in (home / "ledger.jsonl").read_text().splitlines()]


def test_a_repeated_ask_is_answered_from_the_cache_at_zero_cost(tmp_path, isolated_env):
    _config(tmp_path, enabled=True)
    assert invoke(["--json"], input="what is 2+2")[0] == 0
    code, out, _ = invoke(["--json"], input="what is 2+2")
    answer = json.loads(out)
    assert code == 0 and answer["cached"] is True and answer["cost_usd"] == 0.0
    assert answer["text"] == "echo: what is 2+2" and answer["target"] == "demo/small"
    first, second = _ledger(isolated_env)
    assert first["cached"] is False and first["cost_usd"] > 0
    assert second["cached"] is True and second["status"] == "ok" and second["cost_usd"] == 0.0
    assert second["target"] == "demo/small" and second["input_tokens"] == 0
    assert second["prompt_sha256"] == first["prompt_sha256"] and second["kind"] == "ask"


def test_different_options_miss_and_no_cache_bypasses(tmp_path, isolated_env):
    _config(tmp_path, enabled=True)
    invoke([], input="hello")
    invoke(["--max-tokens", "7"], input="hello")
    invoke(["--no-cache"], input="hello")
    assert [r["cached"] for r in _ledger(isolated_env)] == [False, False, False]


def test_cache_flag_turns_it_on_when_the_config_has_it_off(tmp_path, isolated_env):
    _config(tmp_path, enabled=False)
    invoke([], input="hello")
    invoke([], input="hello")
    invoke(["--cache"], input="hello")
    invoke(["--cache"], input="hello")
    assert [r["cached"] for r in _ledger(isolated_env)] == [False, False, False, True]


def test_batch_uses_the_cache_and_records_kind_batch(tmp_path, isolated_env):
    _config(tmp_path, enabled=True)
    invoke(["batch", "-"], input="a\nb\n")
    code, out, _ = invoke(["batch", "-"], input="a\nb\n")
    assert code == 0 and [json.loads(l)["cached"] for l in out.splitlines()] == [True, True]
    records = _ledger(isolated_env)
    assert [r["cached"] for r in records] == [False, False, True, True]
    assert {r["kind"] for r in records} == {"batch"}


def test_cache_stats_and_clear_commands(tmp_path, isolated_env):
    _config(tmp_path, enabled=True)
    invoke([], input="one")
    invoke([], input="one")
    code, out, _ = invoke(["cache", "stats", "--json"])
    stats = json.loads(out)
    assert code == 0 and (stats["entries"], stats["hits"], stats["misses"], stats["hit_rate"]) == (1, 1, 1, 0.5)
    code, out, _ = invoke(["cache", "stats"])
    assert "hit rate: 50.0%" in out and "entries:  1" in out
    code, out, _ = invoke(["cache", "clear"])
    assert code == 0 and "removed 1 cached answer" in out
    assert json.loads(invoke(["cache", "stats", "--json"])[1])["entries"] == 0
