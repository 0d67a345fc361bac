"""`llmroute logs` (SPEC §14): newest first, one entry per request, text from conversations or
`ledger.log_prompts`, filters by conversation, text and target, and --json."""

from __future__ import annotations

import json

from .support import invoke, project_config

TWO = """\
version: 1
defaults: {retries: 0}
providers:
  alpha:
    type: mock
    reply: "alpha says: {prompt}"
    models: {small: {input: 1.0, output: 2.0}}
  beta:
    type: mock
    reply: "beta says: {prompt}"
    models: {small: {input: 1.0, output: 2.0}}
"""


def ask(*args: str) -> dict:
    code, out, err = invoke(["--json", *args])
    assert code == 0, err
    return json.loads(out)


def logs(*args: str) -> list[dict]:
    code, out, err = invoke(["logs", "--json", *args])
    assert code == 0, err
    return json.loads(out)


def test_newest_first_with_text_and_filters(tmp_path, isolated_env):
    project_config(tmp_path).write_text(TWO)
    first = ask("-m", "alpha", "tell me about cats")
    second = ask("-m", "beta", "tell me about dogs")
    third = ask("-m", "alpha", "-c", "and kittens?")
    entries = logs()
    assert [e["request_id"] for e in entries] == [third["request_id"], second["request_id"], first["request_id"]]
    assert entries[0]["prompt"] == "and kittens?" and entries[0]["answer"].startswith("alpha says:")
    assert entries[0]["conversation_id"] == second["conversation_id"]  # -c went on with the latest
    assert entries[0]["target"] == "alpha/small" and entries[0]["status"] == "ok"
    assert entries[0]["usage"]["input_tokens"] > 0 and entries[0]["cost_usd"] > 0
    assert [e["request_id"] for e in logs("-n", "1")] == [third["request_id"]]
    assert [e["request_id"] for e in logs("--cid", second["conversation_id"])] == [third["request_id"],
                                                                                   second["request_id"]]
    assert [e["request_id"] for e in logs("-q", "CATS")] == [first["request_id"]]
    assert [e["request_id"] for e in logs("--target", "beta")] == [second["request_id"]]
    assert [e["request_id"] for e in logs("--target", "alpha/small", "-q", "kitten")] == [third["request_id"]]


def test_text_output_and_logged_prompts_without_conversations(tmp_path, isolated_env):
    project_config(tmp_path).write_text(TWO + "conversations: {keep: 0}\nledger: {log_prompts: true}\n")
    ask("-m", "beta", "what is two plus two")
    code, out, err = invoke(["logs"])
    assert code == 0, err
    lines = out.splitlines()
    assert "beta/small" in lines[0] and " ok" in lines[0] and "$" in lines[0] and " ms" in lines[0]
    assert lines[1:] == ["  > what is two plus two", "  < beta says: what is two plus two"]


def test_a_failed_request_shows_its_error_and_attempts(tmp_path, isolated_env):
    project_config(tmp_path).write_text(
        "version: 1\ndefaults: {retries: 0}\nproviders:\n"
        "  broken:\n    type: mock\n    fail_rate: 1.0\n    models: {small: {}}\n")
    code, _, _ = invoke(["hello"])
    assert code == 1
    (entry,) = logs()
    assert entry["status"] == "error" and entry["error"] and entry["target"] == "broken/small"
    code, out, _ = invoke(["logs"])
    assert f"error: {entry['error']}" in out.splitlines()[0]
    assert "(text not kept)" in out
