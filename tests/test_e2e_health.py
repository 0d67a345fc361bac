"""End to end: `llmroute health` from the installed binary against fake providers on 127.0.0.1
— one refusing connections, one slow, one fine — then the next prompt skips the down one."""

from __future__ import annotations

import json

import pytest

from .support import fake_server, read_ledger, refused_url, run_cli, project_config

pytestmark = pytest.mark.e2e


def openai_provider(name: str, url: str, priority: int) -> str:
    return (f"  {name}:\n    type: openai\n    base_url: {url}/v1\n    priority: {priority}\n"
            f"    models:\n      fake-model: {{input: 1.0, output: 2.0}}\n")


def test_down_slow_fine_then_prompt_skips_the_down_provider(tmp_path, isolated_env):
    alert_log = tmp_path / "alerts.txt"
    with fake_server(mode="slow:2500") as slow, fake_server(reply="fine answer") as fine:
        project_config(tmp_path).write_text(
            "version: 1\ndefaults: {strategy: priority, retries: 0}\nproviders:\n"
            + openai_provider("dead", refused_url(), 90) + openai_provider("slow", slow, 50)
            + openai_provider("fine", fine, 10)
            + "routes:\n  default: [dead, slow, fine]\n"
            + f"alerts:\n  command: 'echo \"$LLMROUTE_ALERT_KIND $LLMROUTE_ALERT_PROVIDER\" >> {alert_log}'\n")

        table = run_cli(["health"], cwd=tmp_path)
        assert table.returncode == 1, table.stderr
        status = {line.split()[0]: line.split()[1] for line in table.stdout.decode().splitlines()[2:]}
        assert status == {"dead": "down", "slow": "degraded", "fine": "up"}

        result = run_cli(["health", "--json"], cwd=tmp_path)
        assert result.returncode == 1
        rows = {r["provider"]: r for r in json.loads(result.stdout)}
        assert rows["dead"]["status"] == "down" and rows["dead"]["error"].startswith("connection")
        assert rows["dead"]["circuit"] == "open" and rows["dead"]["uptime_24h"] == 0.0
        assert rows["slow"]["status"] == "degraded" and rows["slow"]["latency_ms"] >= 2500
        assert rows["fine"]["status"] == "up" and rows["fine"]["score"] >= 90
        assert rows["fine"]["samples_24h"] == 2 and rows["fine"]["key"] == "not needed"
        # two runs, one change each: exactly one alert per provider that is not up
        assert sorted(alert_log.read_text().split("\n")[:-1]) == ["degraded slow", "down dead"]

        answer = run_cli(["hi", "--json"], cwd=tmp_path)
        assert answer.returncode == 0, answer.stderr
        data = json.loads(answer.stdout)
        assert all(not a["target"].startswith("dead/") for a in data["attempts"])
        assert data["target"] in ("slow/fake-model", "fine/fake-model")

        plan = json.loads(run_cli(["route", "--json", "hi"], cwd=tmp_path).stdout)
        excluded = {e["target"]: e["reason"] for e in plan["excluded"]}
        assert excluded["dead/fake-model"].startswith("circuit open")
    assert not any(r["provider"] == "dead" for r in read_ledger(isolated_env))


def test_all_up_exits_zero_and_deep_is_recorded(tmp_path, isolated_env):
    with fake_server(reply="pong") as fine:
        project_config(tmp_path).write_text(
            "version: 1\nproviders:\n" + openai_provider("fine", fine, 10) + "routes:\n  default: [fine]\n")
        result = run_cli(["health", "--deep", "--json"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)[0]["deep"] is True
    records = read_ledger(isolated_env)
    assert [(r["kind"], r["target"], r["status"]) for r in records] == [("health", "fine/fake-model", "ok")]


def test_deep_probe_answered_with_no_text_is_up(tmp_path, isolated_env):
    """A one-token probe may be answered with no text (a reasoning model spends the token):
    the provider answered, so it is up and its circuit stays closed."""
    with fake_server(mode="empty") as url:
        project_config(tmp_path).write_text(
            "version: 1\nproviders:\n" + openai_provider("quiet", url, 50))
        result = run_cli(["health", "--deep", "--json"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    row = json.loads(result.stdout)[0]
    assert row["status"] == "up" and row["circuit"] == "closed"
    assert [r["error"] for r in read_ledger(isolated_env)] == ["empty"]
