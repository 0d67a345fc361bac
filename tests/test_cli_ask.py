"""`llmroute [OPTIONS] [PROMPT]` through the real entry point (`main`), in process.

Covers the stdin rules, stdout/stderr discipline, `--json`, and the bad-input paths of SPEC §4
and §12: each is a short message and the right exit code, never a traceback.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from .support import project_config, run_cli, invoke

MOCK_CONFIG = """\
version: 1
providers:
  demo:
    type: mock
    reply: "echo: {prompt}"
    models:
      small: {}
      large: {tier: large}
  backup:
    type: mock
    reply: "backup says hi"
    models:
      tiny: {}
routes:
  default: [demo/small, backup/tiny]
  strong: [demo/large]
defaults:
  strategy: priority
ledger:
  log_prompts: true
"""


@pytest.fixture
def config(tmp_path) -> Path:
    return project_config(tmp_path).write_text(MOCK_CONFIG)


def ledger(home: Path) -> list[dict]:
    path = home / "ledger.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_piped_prompt_is_answered_on_stdout_only(config, isolated_env):
    code, out, err = invoke([], input="what is 2+2")
    assert code == 0
    assert out == "echo: what is 2+2\n"
    assert err == ""
    records = ledger(isolated_env)
    assert len(records) == 1 and records[0]["status"] == "ok" and records[0]["target"] == "demo/small"
    assert records[0]["kind"] == "ask" and records[0]["v"] == 1 and len(records[0]["prompt_sha256"]) == 64


def test_argument_and_stdin_are_joined_with_a_blank_line(config, isolated_env):
    code, out, _ = invoke(["summarise"], input="the text")
    assert code == 0
    assert ledger(isolated_env)[0]["prompt"] == "summarise\n\nthe text"


def test_ask_subcommand_and_json_object(config):
    code, out, _ = invoke(["ask", "--json", "--tag", "t1", "hello"])
    assert code == 0
    data = json.loads(out)
    assert data["text"] == "echo: hello" and data["target"] == "demo/small" and data["route"] == "default"
    assert set(data) >= {"request_id", "usage", "cost_usd", "latency_ms", "cached", "attempts"}
    assert data["attempts"][0]["status"] == "ok" and data["cached"] is False


def test_pin_target_with_m(config, isolated_env):
    code, out, _ = invoke(["-m", "backup/tiny", "hi"])
    assert code == 0 and out == "backup says hi\n"


def test_context_files_come_before_the_prompt(config, isolated_env, tmp_path):
    (tmp_path / "notes.txt").write_text("the notes")
    code, _, _ = invoke(["--context", "notes.txt", "question"])
    assert code == 0
    prompt = ledger(isolated_env)[0]["prompt"]
    assert prompt.index("the notes") < prompt.index("question")


def test_verbose_reports_the_answering_target_on_stderr(config):
    code, out, err = invoke(["-v", "hi"])
    assert code == 0 and out == "echo: hi\n" and "answered by demo/small" in err


def test_empty_prompt_is_a_usage_error(config):
    code, out, err = invoke([], input="   \n")
    assert code == 2 and out == "" and "empty prompt" in err and "Traceback" not in err


def test_invalid_utf8_on_stdin(config):
    code, _, err = invoke([], input=b"caf\xe9 au lait")
    assert code == 2 and "not valid UTF-8" in err and "Traceback" not in err


@pytest.mark.parametrize(
    "args, message",
    [
        ([b"caf\xe9 au lait"], "the prompt argument is not valid UTF-8 (bad byte 0xe9 at offset 3)"),
        ([b"two", b"words \xff\xfe"], "the prompt argument is not valid UTF-8 (bad byte 0xff at offset 10)"),
        ([b"--system", b"\xff\xfe", b"hi"], "--system is not valid UTF-8 (bad byte 0xff at offset 0)"),
        ([b"--tag", b"t\xe9", b"hi"], "--tag is not valid UTF-8 (bad byte 0xe9 at offset 1)"),
        ([b"route", b"-m", b"demo/\xff", b"hi"], "--model is not valid UTF-8 (bad byte 0xff at offset 5)"),
    ],
)
def test_invalid_utf8_in_an_argument_exits_2_through_the_binary(config, isolated_env, args, message):
    result = run_cli(args, cwd=config.parent)  # bytes reach argv as they are: surrogateescape'd
    err = result.stderr.decode("utf-8")
    assert result.returncode == 2 and result.stdout == b""
    assert err.splitlines()[0] == f"llmroute: {message}" and len(err.splitlines()) == 2
    assert "Traceback" not in err and ledger(isolated_env) == []


def test_valid_utf8_arguments_are_accepted_through_the_binary(config, isolated_env):
    result = run_cli(["--tag", "été", "café ☕"], cwd=config.parent)
    assert result.returncode == 0 and result.stdout.decode("utf-8") == "echo: café ☕\n"


def test_unknown_target_lists_what_exists(config):
    code, _, err = invoke(["-m", "nosuch/model", "hi"])
    assert code == 2 and "nosuch/model" in err and "Traceback" not in err


def test_unknown_route(config):
    code, _, err = invoke(["-r", "nosuch", "hi"])
    assert code == 2 and "nosuch" in err


def test_missing_context_file(config):
    code, _, err = invoke(["--context", "missing.txt", "hi"])
    assert code == 2 and "missing.txt" in err


def test_broken_yaml_is_exit_3_with_line(tmp_path):
    project_config(tmp_path).write_text("providers:\n  a: [unclosed\n")
    code, _, err = invoke(["hi"])
    assert code == 3 and "llmroute.yaml:" in err and "Traceback" not in err


def test_unknown_key_is_exit_3(tmp_path):
    project_config(tmp_path).write_text(MOCK_CONFIG + "colour: blue\n")
    code, _, err = invoke(["hi"])
    assert code == 3 and "colour" in err


def test_literal_key_is_refused_without_echoing_it(tmp_path):
    secret = "sk-abcdefghijklmnopqrstuvwxyz123456"
    project_config(tmp_path).write_text(
        f"version: 1\nproviders:\n  openai:\n    type: openai\n    api_key: {secret}\n    models:\n      gpt-4o-mini: {{}}\n")
    code, out, err = invoke(["hi"])
    assert code == 3 and "keys set" in err and secret not in err + out


def test_missing_key_means_nothing_to_try(tmp_path):
    project_config(tmp_path).write_text(
        "version: 1\nproviders:\n  openai:\n    type: openai\n    models:\n      gpt-4o-mini: {}\n")
    code, _, err = invoke(["hi"])
    assert code == 5 and "no key" in err and "Traceback" not in err


def test_explain_prints_the_plan_and_spends_nothing(config, isolated_env):
    code, out, _ = invoke(["--explain", "hi"])
    assert code == 0 and "demo/small" in out and "candidates" in out
    assert ledger(isolated_env) == []


def test_route_command_json(config):
    code, out, _ = invoke(["route", "--json", "hi"])
    assert code == 0
    plan = json.loads(out)
    assert [c["target"] for c in plan["candidates"]] == ["demo/small", "backup/tiny"]


def test_no_prompt_on_a_terminal_is_a_usage_error(config, monkeypatch):
    from llmroute import prompt_input

    with pytest.raises(Exception) as raised:
        prompt_input.assemble_prompt(None, None, True)
    assert raised.value.exit_code == 2 and "no prompt" in str(raised.value)


def test_failing_target_falls_back_and_both_attempts_are_recorded(tmp_path, isolated_env):
    project_config(tmp_path).write_text(
        "version: 1\ndefaults: {strategy: priority, retries: 0}\nproviders:\n"
        "  flaky:\n    type: mock\n    fail_rate: 1.0\n    models: {m: {}}\n"
        "  good:\n    type: mock\n    reply: good answer\n    models: {m: {}}\n"
        "routes:\n  default: [flaky/m, good/m]\n")
    code, out, err = invoke(["--json", "hi"])
    assert code == 0
    data = json.loads(out)
    assert data["text"] == "good answer"
    assert [a["status"] for a in data["attempts"]] == ["error", "ok"]
    assert data["attempts"][0]["error"] == "server_error"
    records = ledger(isolated_env)
    assert [r["attempt"] for r in records] == [1, 2] and len({r["request_id"] for r in records}) == 1


def test_every_attempt_failing_is_exit_1(tmp_path):
    project_config(tmp_path).write_text(
        "version: 1\ndefaults: {retries: 0}\nproviders:\n"
        "  flaky:\n    type: mock\n    fail_rate: 1.0\n    models: {m: {}}\n")
    code, out, err = invoke(["hi"])
    assert code == 1 and out == "" and "every attempt failed" in err and "flaky/m" in err


def test_sampled_ab_runs_the_other_target_with_the_same_ab_id(tmp_path, isolated_env):
    project_config(tmp_path).write_text(
        "version: 1\ndefaults: {strategy: priority}\nproviders:\n"
        "  a:\n    type: mock\n    priority: 90\n    reply: from a\n    models: {m: {}}\n"
        "  b:\n    type: mock\n    reply: from b\n    models: {m: {}}\n"
        "routes:\n  default: [a, b]\n"
        "abtest:\n  sample_rate: 1.0\n  min_tokens: 1\n  targets: [a/m, b/m]\n")
    code, out, _ = invoke(["a question long enough"])
    assert code == 0 and out == "from a\n"  # the user gets the routed answer only
    pending_file = isolated_env / "state" / "abtest_pending.json"
    for _ in range(600):  # the second call runs in a background process (SPEC §8): bounded wait
        if pending_file.exists():
            break
        time.sleep(0.1)
    records = ledger(isolated_env)
    assert [(r["kind"], r["target"]) for r in records] == [("ask", "a/m"), ("abtest", "b/m")]
    assert records[0]["ab_id"] and records[0]["ab_id"] == records[1]["ab_id"]
    pending = json.loads(pending_file.read_text())
    assert records[0]["ab_id"] in json.dumps(pending)


def test_prompts_below_min_tokens_are_not_sampled(tmp_path, isolated_env):
    project_config(tmp_path).write_text(
        "version: 1\nproviders:\n  a:\n    type: mock\n    models: {m: {}}\n"
        "  b:\n    type: mock\n    models: {m: {}}\nroutes:\n  default: [a, b]\n"
        "abtest:\n  sample_rate: 1.0\n  min_tokens: 50\n  targets: [a/m, b/m]\n")
    code, _, _ = invoke(["short"])
    assert code == 0 and [r["kind"] for r in ledger(isolated_env)] == ["ask"]


def test_every_attempt_failing_mentions_skipped_targets(tmp_path):
    project_config(tmp_path).write_text(
        "version: 1\ndefaults: {retries: 0, strategy: priority}\nproviders:\n"
        "  flaky:\n    type: mock\n    fail_rate: 1.0\n    models: {m: {}}\n"
        "  openai:\n    type: openai\n    models: {gpt-4o-mini: {}}\n"
        "routes:\n  default: [flaky/m, openai/gpt-4o-mini]\n")
    code, _, err = invoke(["hi"])
    assert code == 1 and "1 other target was skipped" in err and "--explain" in err
