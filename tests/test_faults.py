"""Trust and faults (issue 13), end to end through the installed binary: a key that would go over
plain HTTP is a planning decision, not a provider failure; an answer with no text falls back in
every wire format and mode; invalid UTF-8 in an argument is a usage error; files the user names
are private; a known model behind a custom base URL keeps its context window."""

from __future__ import annotations

import json

import pytest

from .support import fake_server, read_ledger, run_cli

pytestmark = pytest.mark.e2e

SECRET = "sk-gateway-secret-0123456789"


def write(tmp_path, text: str):
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return str(path)


# --- a key over plain HTTP to a public host (SPEC §3) -----------------------------------------

INSECURE = """\
version: 1
providers:
  gateway:
    type: openai
    base_url: http://gw.example.com/v1
    key_env: GW_KEY
    models:
      gpt-4o-mini: {}
routes:
  default: [gateway/gpt-4o-mini]
"""


def test_insecure_key_target_is_filtered_with_its_reason_without_v(tmp_path, isolated_env):
    config = write(tmp_path, INSECURE)
    result = run_cli(["--config", config, "hello"], env={"GW_KEY": SECRET})
    assert result.returncode == 5, result.stderr.decode()
    stderr = result.stderr.decode()
    assert "nothing to try" in stderr
    assert "key not sent over plain HTTP to public host gw.example.com" in stderr
    assert "allow_insecure: true" in stderr and SECRET not in stderr
    assert len(stderr.strip().splitlines()) <= 2 and "Traceback" not in stderr
    assert read_ledger(isolated_env) == []  # no attempt was made
    routing = isolated_env / "state" / "routing.json"
    assert not routing.exists() or "gateway" not in routing.read_text()  # no breaker was touched


def test_insecure_key_reason_is_in_explain(tmp_path, isolated_env):
    config = write(tmp_path, INSECURE)
    result = run_cli(["--config", config, "--explain", "--json", "hello"], env={"GW_KEY": SECRET})
    assert result.returncode == 0, result.stderr.decode()
    plan = json.loads(result.stdout)
    assert plan["candidates"] == []
    assert plan["excluded"] == [{
        "target": "gateway/gpt-4o-mini",
        "reason": "key not sent over plain HTTP to public host gw.example.com; use https, "
                  "or set allow_insecure: true for provider gateway"}]


# --- an answer with no text falls back (SPEC §4.1 `empty`) ------------------------------------

SUFFIX = {"openai": "/v1", "anthropic": "", "gemini": "/v1beta", "ollama": "", "cohere": ""}
KEYS = {"EMPTY_KEY": "k-empty", "GOOD_KEY": "k-good"}


@pytest.mark.parametrize("fmt", sorted(SUFFIX))
def test_empty_answer_falls_back_buffered_and_streamed(fmt, tmp_path, isolated_env):
    with fake_server(fmt, "empty") as empty, fake_server("openai", reply="from the next target") as good:
        config = write(tmp_path, f"""\
version: 1
defaults: {{strategy: priority, retries: 1}}
providers:
  silent:
    type: {fmt}
    base_url: {empty}{SUFFIX[fmt]}
    key_env: EMPTY_KEY
    priority: 90
    models:
      fake-model: {{input: 1.0, output: 1.0}}
  good:
    type: openai
    base_url: {good}/v1
    key_env: GOOD_KEY
    priority: 10
    models:
      fake-model: {{input: 1.0, output: 1.0}}
routes:
  default: [silent/fake-model, good/fake-model]
""")
        # Each run gets its own home: two empty answers per run would otherwise open the
        # circuit breaker of `silent` for the next run.
        homes = [tmp_path / name for name in ("buffered", "streamed", "alone")]
        buffered = run_cli(["--config", config, "--json", "say something"],
                           env={**KEYS, "LLMROUTE_HOME": str(homes[0])})
        streamed = run_cli(["--config", config, "--stream", "say something"],
                           env={**KEYS, "LLMROUTE_HOME": str(homes[1])})
        alone = run_cli(["--config", config, "-m", "silent/fake-model", "--no-fallback", "say something"],
                        env={**KEYS, "LLMROUTE_HOME": str(homes[2])})
    assert buffered.returncode == 0, buffered.stderr.decode()
    answer = json.loads(buffered.stdout)
    assert answer["text"] == "from the next target" and answer["target"] == "good/fake-model"
    # retried once on the same target, like `malformed`, then moved on
    assert [a["error"] for a in answer["attempts"][:-1]] == ["empty", "empty"]
    assert streamed.returncode == 0, streamed.stderr.decode()
    assert streamed.stdout.decode() == "from the next target\n"
    assert alone.returncode == 1 and alone.stdout == b""
    assert "empty" in alone.stderr.decode() and "Traceback" not in alone.stderr.decode()
    for home in homes:
        records = read_ledger(home)
        assert [r["error"] for r in records if r["status"] == "error"] == ["empty", "empty"]
        assert all(r["target"] == "silent/fake-model" for r in records if r["status"] == "error")


# --- a known model behind a custom base URL keeps its context window ---------------------------


def test_over_long_prompt_for_a_known_model_on_a_local_gateway_is_never_sent(tmp_path, isolated_env):
    log = tmp_path / "requests.jsonl"
    with fake_server("openai", log=log) as gateway:
        config = write(tmp_path, f"""\
version: 1
providers:
  gateway:
    type: openai
    base_url: {gateway}/v1
    models:
      gpt-4o-mini: {{}}
routes:
  default: [gateway/gpt-4o-mini]
""")
        long = run_cli(["--config", config], input="word " * 140000)
        short = run_cli(["--config", config, "a short question"])
    assert long.returncode == 5, long.stderr.decode()
    assert "gateway/gpt-4o-mini: prompt" in long.stderr.decode()
    assert "exceeds context 128000" in long.stderr.decode()
    assert short.returncode == 0, short.stderr.decode()
    sent = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(sent) == 1 and "short question" in json.dumps(sent[0]["body"])  # only the short one
