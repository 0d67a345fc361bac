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
