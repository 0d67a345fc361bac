"""`llmroute report` through click, with a stand-in root group and a fixed clock."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone

import click
import pytest
from click.testing import CliRunner

from llmroute.cli.report_cmd import report_command
from llmroute.config.model import BudgetConfig, Config, LedgerConfig, Limits
from llmroute.errors import LLMRouteError
from llmroute.paths import Paths

NOW = datetime(2026, 11, 25, 11, 0, tzinfo=timezone.utc)  # Wednesday


@dataclass
class StandIn:
    env: dict
    paths: Paths
    config: Config = field(default_factory=Config)
    now: datetime = NOW

    def load_config(self) -> Config:
        return self.config


def make_root(obj: StandIn) -> click.Group:
    @click.group()
    @click.pass_context
    def root(ctx):
        ctx.obj = obj

    root.add_command(report_command)
    return root


def invoke(obj: StandIn, *args: str):
    root = make_root(obj)
    runner = CliRunner()
    try:
        return runner.invoke(root, ["report", *args], standalone_mode=False, catch_exceptions=False)
    except LLMRouteError as exc:  # what the real root does
        return exc


def line(ts, provider="openai", cost=1.0, tags=()):
    return json.dumps({"v": 1, "ts": ts, "request_id": "r", "kind": "ask",
                       "target": f"{provider}/m", "provider": provider, "model": "m",
                       "route": "default", "strategy": "auto", "attempt": 1, "status": "ok",
                       "latency_ms": 100, "input_tokens": 10, "output_tokens": 5,
                       "cost_usd": cost, "cached": False, "tags": list(tags)})


@pytest.fixture
def obj(tmp_path) -> StandIn:
    paths = Paths(data_dir=tmp_path / "data", config_dir=tmp_path / "cfg")
    paths.data_dir.mkdir()
    paths.ledger.write_text("\n".join([
        line("2026-11-20T10:00:00.000Z", cost=10.0),              # last week
        line("2026-11-23T10:00:00.000Z", "anthropic", cost=2.0),   # Monday
        line("2026-11-25T10:00:00.000Z", cost=1.0, tags=["x"]),    # today
    ]) + "\n")
    config = Config(budget=BudgetConfig(limits=Limits(daily=2.0), timezone="Europe/Berlin"))
    return StandIn(env={}, paths=paths, config=config)


def test_default_window_is_week_and_table(obj):
    result = invoke(obj)
    assert result.exit_code == 0
    assert "this week" in result.output and "TOTAL" in result.output
    assert "anthropic" in result.output and "Daily budget: $1.00 of $2.00 (50%)" in result.output
    assert (obj.paths.state_dir / "report-index.pickle").exists()


def test_windows_and_by(obj):
    assert "$13" not in invoke(obj, "--month", "--format", "json").output
    data = json.loads(invoke(obj, "--month", "--format", "json").output)
    assert data["totals"]["cost_usd"] == pytest.approx(13.0)
    data = json.loads(invoke(obj, "--today", "--by", "tag", "--format", "json").output)
    assert [r["key"] for r in data["rows"]] == ["x"]
    data = json.loads(invoke(obj, "--since", "2026-11-20", "--until", "2026-11-20", "--format", "json").output)
    assert data["totals"]["requests"] == 1
    data = json.loads(invoke(obj, "--days", "2", "--format", "json", "--no-index").output)
    assert data["totals"]["requests"] == 1


def test_csv_markdown_chart(obj):
    rows = list(csv.reader(io.StringIO(invoke(obj, "--format", "csv").output)))
    assert rows[0][0] == "provider" and rows[-1][0] == "TOTAL"
    assert invoke(obj, "--format", "markdown").output.count("|") > 10
    assert "█" in invoke(obj, "--chart").output


def test_html_file_and_quiet(obj, tmp_path):
    out = tmp_path / "r.html"
    result = invoke(obj, "--html", str(out), "-q")
    assert result.exit_code == 0 and result.output == ""
    assert "<svg" in out.read_text()
    assert "TOTAL" in invoke(obj, "--html", str(out)).output


@pytest.mark.parametrize("args", [
    ("--today", "--month"), ("--until", "2026-11-01"), ("--since", "yesterday"),
    ("--days", "0"), ("--since", "2026-11-10", "--until", "2026-11-01"),
])
def test_usage_errors(obj, args):
    err = invoke(obj, *args)
    assert isinstance(err, LLMRouteError) and err.exit_code == 2 and err.lines()


def test_ledger_path_from_config(obj, tmp_path):
    other = tmp_path / "other.jsonl"
    other.write_text(line("2026-11-25T09:00:00.000Z", "groq", cost=0.5) + "\n")
    obj.config = replace(obj.config, ledger=LedgerConfig(path=str(other)))
    assert "groq" in invoke(obj, "--today").output


def test_bad_line_warns_on_stderr(obj):
    with open(obj.paths.ledger, "a") as fh:
        fh.write("garbage\n")
    runner = CliRunner()
    result = runner.invoke(make_root(obj), ["report", "--today"])
    assert result.exit_code == 0 and "warning:" in result.stderr and "TOTAL" in result.stdout


def test_bad_timezone_is_an_error(obj):
    obj.config = replace(obj.config, budget=BudgetConfig(timezone="Nowhere/Land"))
    err = invoke(obj)
    assert isinstance(err, LLMRouteError)


def test_command_has_help():
    assert report_command.help and "ledger" in report_command.help
