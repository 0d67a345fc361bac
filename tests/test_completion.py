"""`llmroute completion bash|zsh|fish` and the dynamic candidates of Tab completion, through
click's completion protocol exactly as the generated scripts invoke it."""

from __future__ import annotations

import pytest

from llmroute.cli.completers import complete_model

from .test_cli_ask import invoke
from .support import project_config

CONFIG = """\
version: 1
providers:
  openai:
    type: mock
    models:
      gpt-4o-mini: {}
  anthropic:
    type: mock
    models:
      claude-haiku: {}
routes:
  default: [openai/gpt-4o-mini, anthropic/claude-haiku]
  strong: [anthropic/claude-haiku]
"""


@pytest.fixture
def config(tmp_path):
    project_config(tmp_path).write_text(CONFIG)


@pytest.mark.parametrize("shell, marker", [
    ("bash", "complete -o nosort -F _llmroute_completion llmroute"),
    ("zsh", "compdef _llmroute_completion llmroute"),
    ("fish", "complete --no-files --command llmroute"),
])
def test_each_shell_gets_a_script_that_calls_back_with_the_complete_variable(shell, marker):
    code, out, _ = invoke(["completion", shell])
    assert code == 0 and marker in out
    assert f"_LLMROUTE_COMPLETE={shell}_complete" in out.replace('"', "")


def test_an_unknown_shell_is_a_usage_error():
    code, _, err = invoke(["completion", "tcsh"])
    assert code == 2 and "tcsh" in err


def complete(monkeypatch, words: str, cword: int | None = None) -> list[str]:
    """Ask for completions the way the bash script does; returns the candidate values."""
    parts = words.split(" ")
    monkeypatch.setenv("_LLMROUTE_COMPLETE", "bash_complete")
    monkeypatch.setenv("COMP_WORDS", words)
    monkeypatch.setenv("COMP_CWORD", str(len(parts) - 1 if cword is None else cword))
    code, out, _ = invoke([])
    assert code == 0
    return [line.split(",", 1)[1] for line in out.splitlines() if line]


def test_command_names_complete_on_an_empty_line(monkeypatch):
    names = complete(monkeypatch, "llmroute ")
    assert {"ask", "batch", "cache", "completion", "keys"} <= set(names)


def test_model_completes_targets_and_routes_from_the_config(config, monkeypatch):
    assert complete(monkeypatch, "llmroute -m ") == ["default", "strong", "openai/gpt-4o-mini", "anthropic/claude-haiku"]
    assert complete(monkeypatch, "llmroute ask --model op") == ["openai/gpt-4o-mini"]
    assert complete(monkeypatch, "llmroute batch in.txt -m st") == ["strong"]


def test_route_strategy_keys_and_options(config, monkeypatch):
    assert complete(monkeypatch, "llmroute -r ") == ["default", "strong"]
    assert complete(monkeypatch, "llmroute --strategy c") == ["cost"]
    assert complete(monkeypatch, "llmroute keys set ") == ["openai", "anthropic"]
    assert complete(monkeypatch, "llmroute keys delete an") == ["anthropic"]
    assert "--parallel" in complete(monkeypatch, "llmroute batch --pa")


def test_the_config_named_on_the_command_line_is_used(tmp_path, monkeypatch):
    other = tmp_path / "other.yaml"
    other.write_text(CONFIG.replace("strong:", "special:"))
    assert complete(monkeypatch, f"llmroute --config {other} -r s") == ["special"]
    assert complete(monkeypatch, f"llmroute ask --config {other} -r s") == ["special"]


def test_a_broken_config_completes_nothing_and_never_raises(tmp_path, monkeypatch):
    project_config(tmp_path).write_text("providers: [this is: not valid\n")
    assert complete(monkeypatch, "llmroute -m ") == []
    assert complete(monkeypatch, "llmroute keys set ") == []


def test_completer_swallows_any_error():
    class Exploding:
        params = property(lambda self: (_ for _ in ()).throw(RuntimeError("boom")))
        parent = None

    assert complete_model(Exploding(), None, "") == []


def test_compare_abtest_and_health_complete_targets(config, monkeypatch):
    targets = ["openai/gpt-4o-mini", "anthropic/claude-haiku"]
    assert complete(monkeypatch, "llmroute compare -t ") == targets
    assert complete(monkeypatch, "llmroute compare hi -t x -t an") == ["anthropic/claude-haiku"]
    assert complete(monkeypatch, "llmroute compare --route s") == ["strong"]
    assert complete(monkeypatch, "llmroute compare --judge op") == ["openai/gpt-4o-mini"]
    assert complete(monkeypatch, "llmroute abtest run -a ") == targets
    assert complete(monkeypatch, "llmroute abtest run -a openai/gpt-4o-mini -b an") == ["anthropic/claude-haiku"]
    assert complete(monkeypatch, "llmroute abtest run --judge an") == ["anthropic/claude-haiku"]
    assert complete(monkeypatch, "llmroute abtest judge --judge op") == ["openai/gpt-4o-mini"]
    assert complete(monkeypatch, "llmroute health ") == ["openai", "anthropic", *targets]
    assert complete(monkeypatch, "llmroute health openai an") == ["anthropic", "anthropic/claude-haiku"]


def test_transcribe_model_completes_transcription_targets_providers_and_routes(tmp_path, monkeypatch):
    project_config(tmp_path).write_text(CONFIG.replace(
        "      claude-haiku: {}\n",
        "      claude-haiku: {}\n  groq:\n    type: mock\n    models:\n"
        "      whisper-large-v3: {mode: transcription}\n      llama: {}\n") + "  speech: [groq/whisper-large-v3]\n")
    everything = ["groq/whisper-large-v3", "groq", "speech"]
    assert complete(monkeypatch, "llmroute transcribe a.wav -m ") == everything
    assert complete(monkeypatch, "llmroute transcribe --model g") == everything[:2]


def test_feedback_completes_last_verdicts_and_recent_request_ids(config, monkeypatch, isolated_env):
    from llmroute.ledger import Ledger

    ledger = Ledger(isolated_env / "ledger.jsonl")
    for rid, status in (("r-old", "ok"), ("r-failed", "error"), ("r-new", "ok")):
        ledger.append({"ts": "2026-11-25T08:00:00.000Z", "request_id": rid, "kind": "ask",
                       "status": status, "target": "openai/gpt-4o-mini"})
    assert complete(monkeypatch, "llmroute feedback ") == ["last", "up", "down", "r-new", "r-old"]
    assert complete(monkeypatch, "llmroute feedback r-") == ["r-new", "r-old"]
    assert complete(monkeypatch, "llmroute feedback last ") == ["up", "down"]
    assert complete(monkeypatch, "llmroute feedback r-new d") == ["down"]
    assert complete(monkeypatch, "llmroute feedback r-new up ") == []


def test_feedback_completion_without_a_ledger_still_offers_the_words(monkeypatch):
    assert complete(monkeypatch, "llmroute feedback ") == ["last", "up", "down"]
