"""End to end: `report`'s numbers agree (SPEC §10), with the installed binary against fake
providers. Requests are prompts (distinct request_ids), attempts are provider calls: one prompt
answered after two 500s is 1 request, 1 ok, 100% success, 3 attempts, 1 fallback."""

from __future__ import annotations

import csv
import io
import json

import pytest

from .support import fake_server, project_config, read_ledger, run_cli

pytestmark = pytest.mark.e2e


def config(failing: str, good: str) -> str:
    return ("version: 1\n"
            "defaults: {strategy: priority, retries: 1}\nproviders:\n"
            f"  flaky:\n    type: openai\n    key_env: FLAKY_KEY\n    base_url: {failing}/v1\n"
            "    priority: 90\n    models: {m: {input: 1, output: 1}}\n"
            f"  steady:\n    type: openai\n    key_env: STEADY_KEY\n    base_url: {good}/v1\n"
            "    priority: 10\n    models: {m: {input: 1, output: 1}}\n"
            "routes:\n  default: [flaky, steady]\n")


KEYS = {"FLAKY_KEY": "k-flaky", "STEADY_KEY": "k-steady"}


def test_one_prompt_answered_after_two_500s_is_one_request_of_three_attempts(tmp_path, isolated_env):
    with fake_server(mode="error:500") as failing, fake_server(reply="answered") as good:
        project_config(tmp_path).write_text(config(failing, good))
        asked = run_cli(["hello"], cwd=tmp_path, env=KEYS)
        assert asked.returncode == 0 and asked.stdout == b"answered\n", asked.stderr
    records = read_ledger(isolated_env)
    assert [(r["target"], r["status"], r["http_status"]) for r in records] == [
        ("flaky/m", "error", 500), ("flaky/m", "error", 500), ("steady/m", "ok", None)]
    assert len({r["request_id"] for r in records}) == 1

    result = run_cli(["report", "--today", "--format", "json"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    totals = data["totals"]
    assert (totals["requests"], totals["ok"], totals["failed"], totals["success_pct"],
            totals["attempts"], totals["fallbacks"]) == (1, 1, 0, 100.0, 3, 1)
    rows = {row["key"]: row for row in data["rows"]}
    # The request counts where it was answered; the failed attempts where they were spent.
    assert (rows["steady"]["requests"], rows["steady"]["attempts"], rows["steady"]["fallbacks"]) == (1, 1, 1)
    assert (rows["flaky"]["requests"], rows["flaky"]["attempts"]) == (0, 2)
    assert totals["cost_usd"] == pytest.approx(sum(r["cost_usd"] for r in records))

    table = run_cli(["report", "--today", "--format", "csv"], cwd=tmp_path)
    parsed = list(csv.reader(io.StringIO(table.stdout.decode())))
    total = dict(zip(parsed[0], parsed[-1]))
    assert (total["requests"], total["ok"], total["success %"], total["attempts"], total["fallbacks"]) == (
        "1", "1", "100.0", "3", "1")
