"""Files the user names are created 0600 whatever the umask (`report --html FILE`, `batch --out
FILE`, `config init`): they hold spend, prompts' answers or config. Run through the binary."""

from __future__ import annotations

import os
import stat
from contextlib import contextmanager
from pathlib import Path

import pytest

from llmroute.paths import open_private, write_private

from .support import run_cli

CONFIG = """\
version: 1
providers:
  demo:
    type: mock
    reply: "echo: {prompt}"
    models:
      small: {}
routes:
  default: [demo/small]
"""


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@contextmanager
def umask(value: int):
    """The umask the binary inherits: 022 would make an ordinary open() create 0644 files."""
    old = os.umask(value)
    try:
        yield
    finally:
        os.umask(old)


@pytest.fixture
def config(tmp_path) -> str:
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG)
    return str(path)


def test_report_html_file_is_created_0600(tmp_path, config, isolated_env):
    out = tmp_path / "report.html"
    with umask(0o022):
        result = run_cli(["--config", config, "report", "--html", str(out), "-q"])
    assert result.returncode == 0, result.stderr.decode()
    assert out.read_text(encoding="utf-8").lstrip().lower().startswith("<!doctype html")
    assert mode(out) == 0o600


def test_report_html_over_an_existing_world_readable_file_makes_it_0600(tmp_path, config, isolated_env):
    out = tmp_path / "report.html"
    out.write_text("old")
    out.chmod(0o644)
    with umask(0o022):
        result = run_cli(["--config", config, "report", "--html", str(out), "-q"])
    assert result.returncode == 0, result.stderr.decode()
    assert mode(out) == 0o600 and "old" not in out.read_text(encoding="utf-8")


def test_batch_out_file_is_created_0600_and_stays_so_on_resume(tmp_path, config, isolated_env):
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text('{"id": "a", "prompt": "one"}\n{"id": "b", "prompt": "two"}\n')
    out = tmp_path / "results.jsonl"
    with umask(0o022):
        first = run_cli(["batch", str(prompts), "--config", config, "--out", str(out)])
        assert first.returncode == 0, first.stderr.decode()
        assert mode(out) == 0o600 and len(out.read_text().splitlines()) == 2
        prompts.write_text(prompts.read_text() + '{"id": "c", "prompt": "three"}\n')
        out.chmod(0o644)
        resumed = run_cli(["batch", str(prompts), "--config", config, "--out", str(out), "--resume"])
    assert resumed.returncode == 0, resumed.stderr.decode()
    assert len(out.read_text().splitlines()) == 3 and mode(out) == 0o600


def test_config_init_still_writes_0600_through_the_shared_helper(tmp_path, isolated_env):
    target = tmp_path / "new" / "config.yaml"
    with umask(0o022):
        result = run_cli(["config", "init", "--path", str(target)])
    assert result.returncode == 0, result.stderr.decode()
    assert mode(target) == 0o600 and mode(target.parent) == 0o700


def test_open_private_appends_and_truncates(tmp_path):
    path = tmp_path / "f.txt"
    with umask(0o000):
        write_private(path, "one\n")
        assert mode(path) == 0o600
        with open_private(path, "a") as handle:
            assert handle.tell() == 4
            handle.write("two\n")
        assert path.read_text() == "one\ntwo\n"
        with open_private(path) as handle:
            handle.write("three\n")
    assert path.read_text() == "three\n" and mode(path) == 0o600
    with pytest.raises(ValueError):
        open_private(path, "r")
