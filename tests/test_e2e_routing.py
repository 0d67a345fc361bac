"""End to end: what llmroute remembers between invocations (SPEC §4.1), with the installed
binary. A refused target opens its breaker and is then skipped without a call; a 429 with a long
retry-after and an exhausted x-ratelimit bucket make the next invocation skip that target;
round-robin rotates across separate processes."""

from __future__ import annotations

import json

import pytest

from .support import fake_server, read_ledger, refused_url, run_cli, project_config

pytestmark = pytest.mark.e2e


def two_targets(first_url: str, second_url: str, strategy: str = "priority") -> str:
    return ("version: 1\n"
            f"defaults: {{strategy: {strategy}, retries: 0}}\nproviders:\n"
            f"  first:\n    type: openai\n    base_url: {first_url}/v1\n    priority: 90\n"
            "    models: {m: {input: 1, output: 1}}\n"
            f"  second:\n    type: openai\n    base_url: {second_url}/v1\n    priority: 10\n"
            "    models: {m: {input: 1, output: 1}}\n"
            "routes:\n  default: [first, second]\n")


def attempts_on(home, target: str) -> int:
    return sum(1 for r in read_ledger(home) if r["target"] == target)


def test_refused_target_opens_its_breaker_and_is_skipped(tmp_path, isolated_env):
    down = refused_url()
    with fake_server(reply="from second") as good:
        project_config(tmp_path).write_text(two_targets(down, good))
        for _ in range(3):
            result = run_cli(["hi"], cwd=tmp_path)
            assert result.returncode == 0 and result.stdout == b"from second\n"
        assert attempts_on(isolated_env, "first/m") == 3  # once per invocation, no retries
        plan = json.loads(run_cli(["route", "--json", "hi"], cwd=tmp_path).stdout)
        excluded = {e["target"]: e["reason"] for e in plan["excluded"]}
        assert excluded["first/m"].startswith("circuit open until")
        result = run_cli(["--json", "hi"], cwd=tmp_path)
        assert [a["target"] for a in json.loads(result.stdout)["attempts"]] == ["second/m"]
        assert attempts_on(isolated_env, "first/m") == 3  # skipped: no new attempt

        # The cooldown passes (moved into the past in the state file); the target is back up.
        state_path = isolated_env / "state" / "routing.json"
        state = json.loads(state_path.read_text())
        state["breakers"]["first/m"]["open_until"] = 0
        state_path.write_text(json.dumps(state))
        with fake_server(reply="first is back") as revived:
            project_config(tmp_path).write_text(two_targets(revived, good))
            trial = run_cli(["hi"], cwd=tmp_path)
            assert trial.stdout == b"first is back\n"
            state = json.loads(state_path.read_text())
            assert state["breakers"].get("first/m", {}).get("failures", 0) == 0
            plan = json.loads(run_cli(["route", "--json", "hi"], cwd=tmp_path).stdout)
            assert plan["candidates"][0]["target"] == "first/m"


def test_429_with_long_retry_after_skips_the_target_next_time(tmp_path, isolated_env):
    with fake_server(mode="ratelimit:30") as limited, fake_server(reply="from second") as good:
        project_config(tmp_path).write_text(two_targets(limited, good))
        first = run_cli(["--json", "hi"], cwd=tmp_path)
        assert json.loads(first.stdout)["attempts"][0]["http_status"] == 429
        second = run_cli(["--json", "hi"], cwd=tmp_path)
        assert [a["target"] for a in json.loads(second.stdout)["attempts"]] == ["second/m"]
        plan = json.loads(run_cli(["route", "--json", "hi"], cwd=tmp_path).stdout)
        reasons = {e["target"]: e["reason"] for e in plan["excluded"]}
        # A 429 whose wait exceeds the retry budget also opens the breaker (SPEC §4.1).
        assert "rate limit" in reasons["first/m"] or "circuit open" in reasons["first/m"]


def test_exhausted_request_bucket_skips_the_target_until_reset(tmp_path, isolated_env):
    with fake_server(mode="exhausted:20s", reply="answered, but that was the last one") as bucket, \
            fake_server(reply="from second") as good:
        project_config(tmp_path).write_text(two_targets(bucket, good))
        first = run_cli(["hi"], cwd=tmp_path)
        assert first.stdout == b"answered, but that was the last one\n"
        second = run_cli(["--json", "hi"], cwd=tmp_path)
        assert [a["target"] for a in json.loads(second.stdout)["attempts"]] == ["second/m"]


def test_round_robin_rotates_across_processes(tmp_path, isolated_env):
    with fake_server(reply="one") as a, fake_server(reply="two") as b:
        project_config(tmp_path).write_text(two_targets(a, b, strategy="round-robin"))
        answers = [run_cli(["hi"], cwd=tmp_path).stdout.decode().strip() for _ in range(4)]
    assert answers in (["one", "two", "one", "two"], ["two", "one", "two", "one"])
