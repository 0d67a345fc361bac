"""Damaged or unwritable files (issue 13): llmroute's own files may be hand-edited, truncated or
filled with garbage; none of that may turn into "internal error". State files of the wrong shape
are set aside and rebuilt (the budget from the ledger), a damaged cache is set aside, and the
command goes on."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from llmroute.budget.spend import INDEX_VERSION
from llmroute.cli.main import main

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


def invoke(args: list[str], input: str | None = None) -> tuple[int, str, str]:
    runner = CliRunner()
    with runner.isolation(input=input) as streams:
        try:
            main(args)
        except SystemExit as done:
            code = done.code if isinstance(done.code, int) else 1
        else:
            code = 0
    return code, streams[0].getvalue().decode(), streams[1].getvalue().decode()


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
