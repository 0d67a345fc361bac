"""`llmroute tokens`, the exact count in `--explain`, and a budget decided by the exact count,
through the real entry point (in process) and the installed binary."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmroute import tokens
from llmroute.tokens import count_tokens, estimate_tokens

from .support import run_cli, invoke

EMOJI = "🙂🙃😀 " * 30  # the fast estimate is about half the exact count
XS = "x" * 200  # the fast estimate is above the exact count


def fields(out: str) -> dict[str, str]:
    return dict(line.split(None, 1) for line in out.splitlines())


# --- llmroute tokens --------------------------------------------------------------------------


def test_tokens_prints_exact_count_source_encoding_and_estimate():
    code, out, err = invoke(["tokens", EMOJI])
    assert code == 0 and err == ""
    assert fields(out) == {"tokens": str(count_tokens(EMOJI).count), "source": "tiktoken:o200k_base",
                           "encoding": "o200k_base", "estimate": f"~{estimate_tokens(EMOJI)}"}


def test_tokens_json_for_a_target_picks_its_encoding():
    code, out, _ = invoke(["tokens", "--json", "-m", "openai/gpt-4", "hello world"])
    assert code == 0
    assert json.loads(out) == {"tokens": 2, "source": "tiktoken:cl100k_base", "encoding": "cl100k_base",
                               "model": "openai/gpt-4", "approximate": False, "estimate": 2, "note": None}


def test_tokens_for_a_non_openai_model_says_the_count_stands_in():
    code, out, _ = invoke(["tokens", "--model", "anthropic/claude-haiku-4-5", "hello world"])
    assert code == 0
    assert fields(out)["tokens"] == "~2"
    assert fields(out)["encoding"] == "o200k_base (standing in for anthropic/claude-haiku-4-5's own tokenizer)"


def test_tokens_joins_argument_and_stdin_like_ask():
    code, out, _ = invoke(["tokens", "--json", "Summarize:"], input="line one\nline two\n")
    assert code == 0
    assert json.loads(out)["tokens"] == count_tokens("Summarize:\n\nline one\nline two\n").count
    code, out, _ = invoke(["tokens", "--json"], input="only stdin")
    assert json.loads(out)["tokens"] == 2


def test_tokens_refuses_invalid_utf8_stdin_and_arguments():
    code, _, err = invoke(["tokens"], input=b"caf\xe9")
    assert code == 2 and "not valid UTF-8" in err
    code, _, err = invoke(["tokens", "caf\udce9"])  # how Python hands over undecodable argv bytes
    assert code == 2 and "not valid UTF-8" in err


def test_tokens_falls_back_to_the_estimate_and_says_so(tmp_path, monkeypatch):
    monkeypatch.setattr(tokens, "default_data_dir", lambda: tmp_path)  # no vocabulary files there
    monkeypatch.setattr(tokens, "_loaded", {})
    code, out, err = invoke(["tokens", "--json", EMOJI])
    assert code == 0
    result = json.loads(out)
    assert result["source"] == "estimate" and result["tokens"] == estimate_tokens(EMOJI)
    assert "FileNotFoundError" in result["note"] and "no exact count" in err


def test_tokens_through_the_installed_binary():
    result = run_cli(["tokens", "--json", "-m", "gpt-4o-mini"], input="hello world")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["tokens"] == 2
    assert json.loads(result.stdout)["source"] == "tiktoken:o200k_base"
    result = run_cli(["tokens", "caf\udce9"])  # the raw byte 0xE9 on the command line
    assert result.returncode == 2 and b"not valid UTF-8" in result.stderr
    result = run_cli(["tokens"], input=b"\xff\xfe")
    assert result.returncode == 2 and b"not valid UTF-8" in result.stderr


# --- --explain ------------------------------------------------------------------------------------

OPENAI_CONFIG = """\
version: 1
providers:
  openai:
    type: openai
    models:
      gpt-4o-mini: {}
routes:
  default: [openai/gpt-4o-mini]
"""


@pytest.fixture
def openai_config(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-used")  # planned, never called
    path = tmp_path / "openai.yaml"
    path.write_text(OPENAI_CONFIG)
    return path


def test_explain_shows_the_exact_count_and_its_source(openai_config):
    exact, est = count_tokens(EMOJI, "gpt-4o-mini").count, estimate_tokens(EMOJI)
    assert exact != est
    code, out, _ = invoke(["--config", str(openai_config), "--explain", EMOJI])
    assert code == 0
    assert (f"input tokens: {exact} (tiktoken:o200k_base, for openai/gpt-4o-mini); fast estimate ~{est}"
            in out.splitlines())


def test_explain_json_carries_the_exact_count(openai_config):
    code, out, _ = invoke(["--config", str(openai_config), "route", "--json", EMOJI])
    assert code == 0
    counted = json.loads(out)["input_tokens"]
    assert counted == {"count": count_tokens(EMOJI).count, "source": "tiktoken:o200k_base",
                       "encoding": "o200k_base", "approximate": False, "note": None,
                       "target": "openai/gpt-4o-mini", "estimate": estimate_tokens(EMOJI)}


# --- a token budget near its limit, through planner, guard and engine ---------------------------

BUDGET_CONFIG = """\
version: 1
providers:
  demo:
    type: mock
    reply: "fine"
    models:
      small: {{input: 1.0, output: 1.0}}
routes:
  default: [demo/small]
defaults:
  strategy: priority
budget:
  tokens_daily: {limit}
"""


def budget_config(tmp_path: Path, limit: int) -> str:
    path = tmp_path / "budget.yaml"
    path.write_text(BUDGET_CONFIG.format(limit=limit))
    return str(path)


def test_a_token_budget_the_estimate_would_pass_is_blocked_by_the_exact_count(tmp_path):
    limit = estimate_tokens(EMOJI) + 100  # estimated worst case: exactly at the limit
    assert count_tokens(EMOJI, "small").count + 100 > limit
    code, out, err = invoke(["--config", budget_config(tmp_path, limit), "--max-tokens", "100", EMOJI])
    assert code == 4 and out == "" and "budget" in err


def test_a_token_budget_the_estimate_would_refuse_is_admitted_and_reserved_exactly(tmp_path):
    exact = count_tokens(XS, "small").count
    limit = exact + 100  # the exact worst case fits; the estimated one does not
    assert estimate_tokens(XS) + 100 > limit
    code, out, err = invoke(["--config", budget_config(tmp_path, limit), "--max-tokens", "100", XS])
    assert code == 0, err
    assert out == "fine\n"
