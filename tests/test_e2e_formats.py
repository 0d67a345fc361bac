"""End to end per wire format: the installed binary against a fake server of each format.
A failing target of one format falls back to a target of another; usage and cost land in the
ledger; streaming works through each format's own framing."""

from __future__ import annotations

import json

import pytest

from .support import fake_server, read_ledger, run_cli, project_config

pytestmark = pytest.mark.e2e

# format -> (base URL suffix the provider type expects, failure status of that format)
FORMATS = {
    "openai": ("/v1", 500),
    "anthropic": ("", 529),
    "gemini": ("/v1beta", 503),
    "ollama": ("", 500),
    "cohere": ("", 500),
}
NEXT = {"openai": "anthropic", "anthropic": "gemini", "gemini": "ollama", "ollama": "cohere", "cohere": "openai"}
KEYS = {"OPENAI_API_KEY": "test-openai", "ANTHROPIC_API_KEY": "test-anthropic", "GEMINI_API_KEY": "test-gemini",
        "COHERE_API_KEY": "test-cohere", "FAILING_API_KEY": "test-f", "ANSWERING_API_KEY": "test-a"}


def provider_block(name: str, fmt: str, url: str, priority: int) -> str:
    suffix = FORMATS[fmt][0]
    return (f"  {name}:\n    type: {fmt}\n    base_url: {url}{suffix}\n    priority: {priority}\n"
            f"    models:\n      fake-model: {{input: 1.0, output: 2.0}}\n")


@pytest.mark.parametrize("failing", sorted(FORMATS))
def test_failing_format_falls_back_to_another_format(failing, tmp_path, isolated_env):
    answering = NEXT[failing]
    status = FORMATS[failing][1]
    with fake_server(failing, f"error:{status}") as bad, fake_server(answering, reply="answer from the other format") as good:
        project_config(tmp_path).write_text(
            "version: 1\ndefaults: {strategy: priority, retries: 0}\nproviders:\n"
            + provider_block("failing", failing, bad, 90) + provider_block("answering", answering, good, 10)
            + "routes:\n  default: [failing, answering]\n")
        result = run_cli(["--json", "say something"], cwd=tmp_path, env=KEYS)
        streamed = run_cli(["--stream", "-m", "answering", "--no-fallback", "stream it"], cwd=tmp_path, env=KEYS)
    assert result.returncode == 0, result.stderr.decode()
    data = json.loads(result.stdout)
    assert data["text"] == "answer from the other format"
    assert data["target"] == "answering/fake-model"
    assert data["attempts"][0]["http_status"] == status
    assert streamed.returncode == 0, streamed.stderr.decode()
    assert streamed.stdout.decode() == "answer from the other format\n"
    records = read_ledger(isolated_env)
    ok = [r for r in records if r["status"] == "ok"]
    assert len(ok) == 2
    for record in ok:
        assert record["tokens_source"] == "provider" and record["input_tokens"] > 0 and record["output_tokens"] > 0
        expected = (record["input_tokens"] * 1.0 + record["output_tokens"] * 2.0) / 1e6
        assert record["cost_usd"] == pytest.approx(expected)
    failed = [r for r in records if r["status"] == "error"]
    assert failed[0]["target"] == "failing/fake-model" and failed[0]["http_status"] == status
