"""One prompt-file reader (`prompt_input.parse_prompt_lines`) for batch, `abtest run --prompts`
and `route --each-line`: the same lines give the same prompts, and the same mistakes the same
messages, whichever command reads them."""

from __future__ import annotations

import json

import pytest

from llmroute.cli.abtest_cmd import read_prompts
from llmroute.errors import UsageError
from llmroute.prompt_input import PromptLine, parse_prompt_lines

from .support import project_config, run_cli

JSONL = '{"id": "a", "prompt": "first question"}\n\n{"id": "b", "prompt": "second", "system": "be brief"}\n'


def test_text_and_jsonl_lines():
    assert parse_prompt_lines("one\n\nthree\n") == [PromptLine(1, "one"), PromptLine(3, "three")]
    assert parse_prompt_lines(JSONL) == [PromptLine("a", "first question"), PromptLine("b", "second", "be brief")]


def test_abtest_reads_prompt_files_like_batch(tmp_path):
    path = tmp_path / "prompts.jsonl"
    path.write_text(JSONL)
    assert read_prompts(str(path)) == ["first question", "second"]
    path.write_text('{"prompt": "a", "colour": 1}\n')
    with pytest.raises(UsageError, match="line 1: unknown field"):
        read_prompts(str(path))


def test_route_each_line_reads_jsonl_like_batch(tmp_path):
    project_config(tmp_path).write_text("version: 1\nproviders:\n  m:\n    type: mock\n    models:\n      echo: {}\n")
    done = run_cli(["route", "--each-line"], input=JSONL, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.decode().splitlines()]
    assert [(r["id"], r["prompt"]) for r in rows] == [("a", "first question"), ("b", "second")]
    bad = run_cli(["route", "--each-line"], input='{"prompt": "a"}\nnot json\n', cwd=tmp_path)
    assert bad.returncode == 2 and "line 2: not valid JSON" in bad.stderr.decode()
