"""Every command has help text and `--help` works; `--help`/`--version` stay light (no httpx,
yaml, tiktoken or keyring import), which is what keeps start-up under 100 ms."""

from __future__ import annotations

import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from llmroute.cli.main import COMMANDS, cli


def all_commands():
    ctx = click.Context(cli)
    for name in cli.list_commands(ctx):
        command = cli.get_command(ctx, name)
        yield name, command
        if isinstance(command, click.Group):
            for sub in command.list_commands(ctx):
                yield f"{name} {sub}", command.get_command(ctx, sub)


def test_every_registered_command_exists():
    ctx = click.Context(cli)
    assert set(cli.list_commands(ctx)) == set(COMMANDS)


@pytest.mark.parametrize("name,command", list(all_commands()), ids=lambda v: v if isinstance(v, str) else "")
def test_every_command_has_help_and_help_works(name, command):
    assert (command.help or "").strip(), f"{name} has no help text"
    result = CliRunner().invoke(cli, [*name.split(), "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output


@pytest.mark.parametrize("flag", ["--help", "--version"])
def test_help_and_version_import_nothing_heavy(flag):
    code = (
        "import sys\n"
        "from llmroute.cli.main import cli\n"
        f"try:\n    cli.main(['{flag}'], standalone_mode=False)\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('httpx', 'yaml', 'tiktoken', 'keyring', 'tabulate', 'llmroute.engine') if m in sys.modules]\n"
        "print('heavy=' + ','.join(heavy))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.splitlines()[-1] == "heavy="


@pytest.mark.parametrize("columns", [50, 64, 80, 200])
def test_fast_path_help_is_exactly_clicks(columns, monkeypatch):
    """`entry.py` answers --help without importing click; it must print what click would."""
    from llmroute.cli.entry import top_level_help

    monkeypatch.setenv("COLUMNS", str(columns))
    result = CliRunner().invoke(cli, ["--help"], prog_name="llmroute", terminal_width=columns)
    assert result.exit_code == 0
    assert top_level_help(columns) == result.output  # CliRunner forces exactly this width


def test_fast_path_version_is_exactly_clicks(capsys, monkeypatch):
    from llmroute.cli import entry

    monkeypatch.setattr(sys, "argv", ["llmroute", "--version"])
    entry.main()
    assert capsys.readouterr().out == CliRunner().invoke(cli, ["--version"], prog_name="llmroute").output


def test_installed_script_help_does_not_import_click():
    code = ("import sys\nsys.argv = ['llmroute', '--help']\nfrom llmroute.cli.entry import main\nmain()\n"
            "print('click loaded' if 'click' in sys.modules else 'click not loaded')\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.splitlines()[-1] == "click not loaded"


def test_report_does_not_import_httpx(tmp_path):
    """With a config file, `report` only reads the config and the ledger, so it never loads the
    HTTP stack (~70 ms of a repeated report): config validation reads the presets, and the
    providers package must not pull httpx in for them. (Without a config file the built-in
    default config probes Ollama over HTTP, by design.)"""
    code = (
        "import sys\n"
        "from llmroute.cli.main import cli\n"
        "try:\n    cli.main(['report', '--month'], standalone_mode=False)\nexcept SystemExit:\n    pass\n"
        "print('httpx loaded' if 'httpx' in sys.modules else 'httpx not loaded')\n"
    )
    (tmp_path / "config.yaml").write_text(
        "providers:\n  openai:\n    type: openai\n    models:\n      gpt-4o-mini: {}\n")
    env = {"LLMROUTE_HOME": str(tmp_path), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                            check=True)
    assert "TOTAL" in result.stdout and result.stdout.splitlines()[-1] == "httpx not loaded"
