"""Issue 15, "never silently override the user" (SPEC §4): a fallback is visible without -v,
a mistyped command is not sent to a model, `--config`/`--no-color` mean the same after any
command, and TERM=dumb means no colour."""

from __future__ import annotations

import asyncio
import io
import json
import random
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from llmroute.cli.context import AppContext
from llmroute.cli.main import cli, main
from llmroute.engine_async import arun_with_fallback
from llmroute.errors import ErrorClass, ProviderError
from llmroute.paths import Paths
from llmroute.resilience import RetryPolicy, run_with_fallback
from llmroute.routing.plan import Candidate
from llmroute.types import Target

from .support import invoke, project_config, run_cli

FALLBACK = """\
version: 1
defaults: {strategy: priority, retries: 0}
providers:
  flaky:
    type: mock
    fail_rate: 1.0
    models: {m: {}}
  good:
    type: mock
    reply: good answer
    models: {m: {}}
routes:
  default: [flaky/m, good/m]
"""

DEMO = """\
version: 1
providers:
  demo:
    type: mock
    reply: "echo: {prompt}"
    models: {small: {}}
"""


def ledger(home: Path) -> list[dict]:
    path = home / "ledger.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def invoke_mixed(args: list[str], input: str | None = None) -> tuple[int, str]:
    """Like `support.invoke`, but stdout and stderr interleaved as a terminal shows them."""
    with CliRunner().isolation(input=input) as streams:
        try:
            main(args)
        except SystemExit as done:
            code = done.code if isinstance(done.code, int) else 1
        else:
            code = 0
    return code, streams[2].getvalue().decode()


# --- 1. a fallback is never silent ---------------------------------------------------------


def test_a_fallback_prints_one_line_per_failed_hop_without_v(tmp_path):
    project_config(tmp_path).write_text(FALLBACK)
    code, out, err = invoke(["what is up"])
    assert code == 0 and out == "good answer\n"
    assert err == "llmroute: flaky/m server_error 500 → good/m\n"


def test_quiet_prints_no_hop_line(tmp_path):
    project_config(tmp_path).write_text(FALLBACK)
    code, out, err = invoke(["-q", "what is up"])
    assert code == 0 and out == "good answer\n" and err == ""


def test_verbose_keeps_its_detail_and_the_hop_line_once(tmp_path):
    """-v adds to what everyone sees: the detailed failure line, then the one hop line."""
    project_config(tmp_path).write_text(FALLBACK)
    code, out, err = invoke(["-v", "what is up"])
    assert code == 0 and out == "good answer\n"
    lines = err.splitlines()
    assert "attempt 1 flaky/m: server_error (500): mock failure -> next target" in lines
    assert lines.count("llmroute: flaky/m server_error 500 → good/m") == 1
    assert sum("→" in line for line in lines) == 1


def test_no_hop_line_when_the_first_target_answers(tmp_path):
    project_config(tmp_path).write_text(DEMO)
    code, out, err = invoke(["what is up"])
    assert code == 0 and err == ""


def test_every_attempt_failing_lists_them_once_in_the_error_only(tmp_path):
    project_config(tmp_path).write_text(FALLBACK.replace("reply: good answer", "fail_rate: 1.0"))
    code, out, err = invoke(["what is up"])
    assert code == 1 and out == ""
    assert "flaky/m server_error 500; good/m server_error 500" in err and "→" not in err


@pytest.mark.parametrize("stream", ["--stream", "--no-stream"])
def test_the_hop_line_comes_before_the_answer(tmp_path, stream):
    project_config(tmp_path).write_text(FALLBACK)
    code, output = invoke_mixed([stream, "what is up"])
    assert code == 0
    assert output == "llmroute: flaky/m server_error 500 → good/m\ngood answer\n"


def test_batch_prints_no_hop_lines(tmp_path, isolated_env):
    project_config(tmp_path).write_text(FALLBACK)
    code, out, err = invoke(["batch", "-"], input="one\ntwo\n")
    assert code == 0, err
    assert [json.loads(line)["text"] for line in out.splitlines()] == ["good answer", "good answer"]
    assert "→" not in err
    assert [r["status"] for r in ledger(isolated_env)].count("error") == 2  # it did fall back


def candidates(*names: str) -> list[Candidate]:
    return [Candidate(Target.parse(name), "test") for name in names]


def scripted(outcomes: dict[str, list]):
    def attempt(candidate: Candidate, number: int):
        outcome = outcomes[candidate.target.id].pop(0)
        if isinstance(outcome, ProviderError):
            raise outcome
        return outcome
    return attempt


def hop_scenario() -> dict[str, list]:
    """a: a 500 then a timeout (one retry); b: a 401; c: skipped by the budget; d answers."""
    return {"a/m": [ProviderError(ErrorClass.SERVER_ERROR, "boom", http_status=500),
                    ProviderError(ErrorClass.TIMEOUT, "slow")],
            "b/m": [ProviderError(ErrorClass.AUTH, "no", http_status=401)],
            "d/m": ["answer"]}


def test_the_loop_reports_each_hop_once_with_the_failure_that_caused_it():
    hops: list[tuple[str, str, str]] = []
    outcome = run_with_fallback(
        candidates("a/m", "b/m", "c/m", "d/m"), scripted(hop_scenario()),
        RetryPolicy(retries=1, max_attempts=6), sleep=lambda s: None, rng=random.Random(1),
        may_try=lambda c: c.target.id != "c/m",
        on_hop=lambda f, c: hops.append((f.candidate.target.id, f.error.error_class.value, c.target.id)))
    assert outcome.value == "answer"
    assert hops == [("a/m", "timeout", "b/m"), ("b/m", "auth", "d/m")]


def test_the_async_loop_reports_the_same_hops():
    hops: list[tuple[str, str, str]] = []
    sync_attempt = scripted(hop_scenario())

    async def attempt(candidate, number):
        return sync_attempt(candidate, number)

    async def no_sleep(seconds):
        return None

    outcome = asyncio.run(arun_with_fallback(
        candidates("a/m", "b/m", "c/m", "d/m"), attempt, RetryPolicy(retries=1, max_attempts=6),
        sleep=no_sleep, rng=random.Random(1), may_try=lambda c: c.target.id != "c/m",
        on_hop=lambda f, c: hops.append((f.candidate.target.id, f.error.error_class.value, c.target.id))))
    assert outcome.value == "answer"
    assert hops == [("a/m", "timeout", "b/m"), ("b/m", "auth", "d/m")]


# --- 2. did you mean ------------------------------------------------------------------------


@pytest.mark.parametrize("word, command", [
    ("modles", "models"),     # two neighbours swapped
    ("healht", "health"),
    ("model", "models"),      # one letter missing
    ("configs", "config"),    # one letter too many
    ("reprot", "report"),
    ("budgat", "budget"),     # one letter wrong
    ("Models", "models"),     # case aside
])
def test_a_lone_word_one_edit_from_a_command_exits_2(tmp_path, isolated_env, word, command):
    project_config(tmp_path).write_text(DEMO)
    code, out, err = invoke([word])
    assert code == 2 and out == ""
    assert err.splitlines() == [f'llmroute: "{word}" is not a command; did you mean: llmroute {command}?',
                                f'          to send "{word}" as a prompt: llmroute ask {word}']
    assert ledger(isolated_env) == []


@pytest.mark.parametrize("word", ["help", "init"])
def test_a_peer_command_exits_2_saying_there_is_none(tmp_path, isolated_env, word):
    project_config(tmp_path).write_text(DEMO)
    code, out, err = invoke([word])
    assert code == 2 and out == ""
    assert f'there is no "{word}" command' in err.splitlines()[0]
    assert err.splitlines()[1].strip() == f'to send "{word}" as a prompt: llmroute ask {word}'
    assert ledger(isolated_env) == []


@pytest.mark.parametrize("args", [
    ["ask", "modles"],           # an explicit ask sends it
    ["ask", "logs"],
    ["modles", "please"],        # more than one word
    ["-s", "be brief", "logs"],  # options first: this is a prompt, not a command
    ["hello"],                   # not near any command
    ["mdoelss"],                 # two edits away
])
def test_these_are_prompts(tmp_path, args):
    project_config(tmp_path).write_text(DEMO)
    code, out, err = invoke(args)
    assert code == 0, err
    assert out.startswith("echo: ")


def test_a_lone_word_with_piped_text_is_a_prompt(tmp_path, isolated_env):
    """`git log | llmroute help`: the prompt is the word and the text, not one word."""
    project_config(tmp_path).write_text(DEMO)
    code, out, _ = invoke(["help"], input="line one\n")
    assert code == 0 and out == "echo: help\n\nline one\n"


def test_the_installed_binary_refuses_a_mistyped_command(tmp_path):
    project_config(tmp_path).write_text(DEMO)
    result = run_cli(["modles"], cwd=tmp_path)
    assert result.returncode == 2 and result.stdout == b""
    assert "did you mean: llmroute models?" in result.stderr.decode()


# --- 3. --config and --no-color after every command -------------------------------------------


def every_command() -> list[list[str]]:
    ctx = click.Context(cli)
    names = []
    for name in cli.list_commands(ctx):
        command = cli.get_command(ctx, name)
        names.append([name])
        if isinstance(command, click.Group):
            names += [[name, sub] for sub in command.list_commands(ctx)]
    return names


@pytest.mark.parametrize("words", every_command(), ids=" ".join)
def test_every_command_accepts_config_and_no_color_after_it(words):
    result = CliRunner().invoke(cli, [*words, "--help"])
    assert result.exit_code == 0
    assert "--config PATH" in result.output and "--no-color" in result.output


OTHER = """\
version: 1
providers:
  special:
    type: mock
    models: {only: {}}
"""


@pytest.mark.parametrize("args, shown", [
    (["models"], "special/only"),
    (["keys", "list"], "special"),
    (["config", "show"], "special:"),
    (["config", "check"], "ok: 1 providers"),
    (["health"], "special"),
    (["route", "hi"], "special/only"),
])
def test_config_after_the_command_is_the_config_used(tmp_path, args, shown):
    project_config(tmp_path).write_text(DEMO)
    other = tmp_path / "other.yaml"
    other.write_text(OTHER)
    code, out, err = invoke([*args, "--config", str(other)])
    assert code == 0, err
    assert shown in out and "demo" not in out


@pytest.mark.parametrize("args", [["report"], ["budget"], ["models", "--json"], ["keys", "list"],
                                  ["health"], ["compare", "hi"], ["batch", "-"]])
def test_a_missing_config_after_the_command_is_the_config_error(tmp_path, args):
    gone = tmp_path / "gone.yaml"
    code, _, err = invoke([*args, "--config", str(gone)], input="hi\n")
    assert code == 3 and str(gone) in err, err


def test_config_path_after_the_command_names_that_file(tmp_path):
    other = tmp_path / "other.yaml"
    code, out, err = invoke(["config", "path", "--config", str(other)])
    assert code == 0 and out == f"{other}\n" and "chosen with --config" in err


def test_an_option_after_the_command_wins(tmp_path):
    first = tmp_path / "first.yaml"
    first.write_text(DEMO)
    other = tmp_path / "other.yaml"
    other.write_text(OTHER)
    code, out, _ = invoke(["--config", str(first), "models", "--config", str(other)])
    assert code == 0 and "special/only" in out and "demo" not in out
    code, out, _ = invoke(["--config", str(other), "models"])
    assert code == 0 and "special/only" in out


def test_the_options_after_a_command_set_the_invocation_context(tmp_path):
    from llmroute.cli.main import with_common_options

    seen = {}

    @click.command("probe")
    @click.pass_obj
    def probe(obj):
        seen.update(config=obj.config_path_option, no_color=obj.no_color)

    @click.group()
    @click.pass_context
    def root(ctx):
        ctx.obj = AppContext(env={}, cwd=tmp_path, paths=Paths.from_env({"LLMROUTE_HOME": str(tmp_path)}),
                             config_path_option="before.yaml")

    root.add_command(with_common_options(probe))
    result = CliRunner().invoke(root, ["probe", "--config", "after.yaml", "--no-color"])
    assert result.exit_code == 0, result.output
    assert seen == {"config": "after.yaml", "no_color": True}


# --- 4. TERM=dumb ----------------------------------------------------------------------------


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("term, coloured", [("dumb", False), ("xterm-256color", True)])
def test_term_dumb_means_no_colour_on_stdout(tmp_path, term, coloured):
    app = AppContext(env={"TERM": term}, cwd=tmp_path, paths=Paths.from_env({"LLMROUTE_HOME": str(tmp_path)}))
    assert app.color(Terminal()) is coloured


@pytest.mark.parametrize("term, coloured", [("dumb", False), ("xterm-256color", True)])
def test_term_dumb_means_no_colour_in_the_error_prefix(monkeypatch, term, coloured):
    from llmroute.cli import main as main_module

    stderr = Terminal()
    monkeypatch.setenv("TERM", term)
    monkeypatch.setattr("sys.stderr", stderr)
    main_module._print_error(["something failed", "do this"])
    assert ("\x1b[" in stderr.getvalue()) is coloured
    assert "something failed" in stderr.getvalue()
