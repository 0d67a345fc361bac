"""End to end: the installed `llmroute` binary, as a user runs it, against fake providers on
127.0.0.1 (tests/fakeserver.py), each started as a process and stopped by PID."""

from __future__ import annotations

import json
import subprocess

import pytest

from .support import fake_server, llmroute_binary, read_ledger, run_cli, project_config

pytestmark = pytest.mark.e2e


def openai_provider(name: str, url: str, priority: int = 50) -> str:
    return (f"  {name}:\n    type: openai\n    base_url: {url}\n    priority: {priority}\n"
            f"    models:\n      fake-model: {{input: 1.0, output: 2.0}}\n")


def test_first_target_500_second_answers(tmp_path, isolated_env):
    with fake_server(mode="error:500") as bad, fake_server(reply="the second answer") as good:
        config = project_config(tmp_path)
        config.write_text("version: 1\ndefaults: {strategy: priority, retries: 0}\nproviders:\n"
                          + openai_provider("first", f"{bad}/v1", 90)
                          + openai_provider("second", f"{good}/v1", 10)
                          + "routes:\n  default: [first, second]\n")
        result = run_cli(["what is up"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode() == "the second answer\n"
    records = read_ledger(isolated_env)
    assert [(r["target"], r["status"]) for r in records] == [
        ("first/fake-model", "error"), ("second/fake-model", "ok")]
    assert records[0]["error"] == "server_error" and records[0]["http_status"] == 500
    assert records[1]["input_tokens"] > 0 and records[1]["tokens_source"] == "provider"
    assert records[1]["cost_usd"] > 0 and records[1]["price_source"] == "config"


def test_streaming_to_a_pipe_when_asked(tmp_path, isolated_env):
    with fake_server(reply="one two three") as url:
        project_config(tmp_path).write_text(
            "version: 1\nproviders:\n" + openai_provider("only", f"{url}/v1") + "routes:\n  default: [only]\n")
        result = run_cli(["--stream", "-v", "count"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode() == "one two three\n"
    record = read_ledger(isolated_env)[0]
    assert record["ttft_ms"] is not None and record["output_tokens"] > 0


def test_garbage_body_is_malformed_and_falls_back(tmp_path, isolated_env):
    with fake_server(mode="garbage") as bad, fake_server(reply="fine") as good:
        project_config(tmp_path).write_text(
            "version: 1\ndefaults: {strategy: priority, retries: 0}\nproviders:\n"
            + openai_provider("bad", f"{bad}/v1", 90) + openai_provider("good", f"{good}/v1", 10)
            + "routes:\n  default: [bad, good]\n")
        result = run_cli(["--json", "hi"], cwd=tmp_path)
    data = json.loads(result.stdout)
    assert data["text"] == "fine" and data["attempts"][0]["error"] == "malformed"


def test_all_targets_down_exit_1_without_traceback(tmp_path):
    with fake_server(mode="error:503") as bad:
        project_config(tmp_path).write_text(
            "version: 1\ndefaults: {retries: 0}\nproviders:\n" + openai_provider("bad", f"{bad}/v1")
            + "routes:\n  default: [bad]\n")
        result = run_cli(["hi"], cwd=tmp_path)
    err = result.stderr.decode()
    assert result.returncode == 1 and "overloaded" in err and "Traceback" not in err
    assert result.stdout == b""


def test_concurrent_processes_write_exactly_one_line_per_prompt(tmp_path, isolated_env):
    """20 processes x 10 prompts on the mock provider -> exactly 200 valid ledger lines."""
    project_config(tmp_path).write_text(
        "version: 1\nproviders:\n  demo:\n    type: mock\n    reply: '{prompt} " + "x" * 3000 + "'\n"
        "    models: {m: {}}\nroutes:\n  default: [demo]\nledger: {log_prompts: true}\n")
    binary = llmroute_binary()
    script = f'for i in 0 1 2 3 4 5 6 7 8 9; do "{binary}" "prompt $1-$i" > /dev/null || exit 1; done'
    workers = [subprocess.Popen(["sh", "-c", script, "sh", str(n)], cwd=tmp_path) for n in range(20)]
    assert all(w.wait(timeout=600) == 0 for w in workers)
    lines = (isolated_env / "ledger.jsonl").read_text().splitlines()
    assert len(lines) == 200
    records = [json.loads(line) for line in lines]
    assert sorted(r["prompt"] for r in records) == sorted(f"prompt {n}-{i}" for n in range(20) for i in range(10))


def test_a_fallback_names_the_failed_hop_on_stderr(tmp_path):
    """SPEC §4: what the user asked for is never silently replaced; -q keeps stderr clean."""
    with fake_server(mode="error:401") as bad, fake_server(reply="the second answer") as good:
        project_config(tmp_path).write_text(
            "version: 1\ndefaults: {strategy: priority, retries: 0}\nproviders:\n"
            + openai_provider("first", f"{bad}/v1", 90) + openai_provider("second", f"{good}/v1", 10)
            + "routes:\n  default: [first, second]\n")
        result = run_cli(["what is up"], cwd=tmp_path)
        quiet = run_cli(["-q", "what is up"], cwd=tmp_path)
    assert result.returncode == 0 and result.stdout.decode() == "the second answer\n"
    assert result.stderr.decode() == "llmroute: first/fake-model auth 401 → second/fake-model\n"
    assert quiet.returncode == 0 and quiet.stderr == b""


def test_a_stream_broken_mid_answer_is_announced_once(tmp_path):
    """The mid-answer notice already says the next answer is another target's: no hop line too."""
    with fake_server(mode="midstream", reply="one two three four five") as bad, \
            fake_server(reply="the second answer") as good:
        project_config(tmp_path).write_text(
            "version: 1\ndefaults: {strategy: priority, retries: 0}\nproviders:\n"
            + openai_provider("first", f"{bad}/v1", 90) + openai_provider("second", f"{good}/v1", 10)
            + "routes:\n  default: [first, second]\n")
        result = run_cli(["--stream", "count"], cwd=tmp_path)
    err = result.stderr.decode()
    assert result.returncode == 0 and result.stdout.decode().endswith("the second answer\n")
    assert "first/fake-model failed mid-answer" in err and "→" not in err
