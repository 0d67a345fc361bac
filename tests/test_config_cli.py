"""`llmroute config init|path|check|show` through a stand-in root group (SPEC §11)."""

from __future__ import annotations

import os

import stat
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import click
import pytest
import yaml
from click.testing import CliRunner

from llmroute.cli.config_cmd import config_group
from llmroute.config.load import load_config
from llmroute.config.starter import STARTER_CONFIG
from llmroute.errors import LLMRouteError
from llmroute.paths import Paths
from .support import project_config

REPO = Path(__file__).resolve().parent.parent


@dataclass
class Obj:
    env: Mapping[str, str]
    cwd: Path
    paths: Paths
    config_path_option: str | None


def make_root(tmp_path: Path, env: Mapping[str, str] | None = None) -> click.Group:
    @click.group()
    @click.option("--config", "config_path")
    @click.pass_context
    def root(ctx: click.Context, config_path: str | None) -> None:
        # The data dir is the test's LLMROUTE_HOME, where `project_config` records trust.
        paths = Paths(data_dir=Path(os.environ["LLMROUTE_HOME"]), config_dir=tmp_path / "conf")
        ctx.obj = Obj(env=env or {}, cwd=tmp_path, paths=paths, config_path_option=config_path)

    root.add_command(config_group)
    return root


def run(tmp_path: Path, *args: str, env: Mapping[str, str] | None = None):
    """Invoke like the real main wrapper: LLMRouteError -> its lines on stderr and exit code."""
    root = make_root(tmp_path, env)

    def main() -> None:
        try:
            root.main(args=list(args), prog_name="llmroute", standalone_mode=False)
        except LLMRouteError as error:
            click.echo("\n".join(error.lines()), err=True)
            sys.exit(int(error.exit_code))

    wrapper = click.Command("wrapper", callback=main)
    return CliRunner().invoke(wrapper, [])


@pytest.fixture(autouse=True)
def no_probes(monkeypatch):
    """The built-in default config must not look for a real Ollama or local model in tests."""
    monkeypatch.setattr("llmroute.config.defaults.probe_ollama", lambda: False)
    monkeypatch.setattr("llmroute.config.defaults.local_model_available", lambda: False)


def test_init_writes_private_starter_and_refuses_to_overwrite(tmp_path):
    result = run(tmp_path, "config", "init")
    target = tmp_path / "conf" / "config.yaml"
    assert result.exit_code == 0, result.stderr
    assert str(target) in result.stdout and target.read_text() == STARTER_CONFIG
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert stat.S_IMODE(target.parent.stat().st_mode) == 0o700
    load_config(target)  # what init writes is valid

    target.write_text("# mine\n")
    again = run(tmp_path, "config", "init")
    assert again.exit_code == 2 and "already exists" in again.stderr and "--force" in again.stderr
    assert target.read_text() == "# mine\n"

    forced = run(tmp_path, "config", "init", "--force")
    assert forced.exit_code == 0 and target.read_text() == STARTER_CONFIG


def test_init_to_explicit_path(tmp_path):
    target = tmp_path / "deep" / "dir" / "llm.yaml"
    result = run(tmp_path, "config", "init", "--path", str(target))
    assert result.exit_code == 0 and target.is_file()
    assert stat.S_IMODE(target.parent.stat().st_mode) == 0o700


def test_path_shows_file_or_builtin_default(tmp_path):
    result = run(tmp_path, "config", "path")
    assert result.exit_code == 0 and result.stdout.strip() == "(built-in default config)"
    project_config(tmp_path).write_text("version: 1\n")
    shown = run(tmp_path, "config", "path")
    assert shown.stdout.strip() == str(tmp_path / "llmroute.yaml") and "project config: trusted" in shown.stderr
    explicit = run(tmp_path, "--config", "/some/other.yaml", "config", "path")
    assert explicit.stdout.strip() == "/some/other.yaml"
    from_env = run(tmp_path, "config", "path", env={"LLMROUTE_CONFIG": "/env.yaml"})
    assert from_env.stdout.strip() == "/env.yaml"


def test_check_ok_with_warnings_on_stderr(tmp_path):
    project_config(tmp_path).write_text(
        "providers:\n  p: {type: openai, models: [unpriced-model-zz]}\n  m: {type: mock, models: [a]}\n"
        "routes:\n  default: [p, m]\n")
    result = run(tmp_path, "config", "check")
    assert result.exit_code == 0
    assert result.stdout.strip() == "ok: 2 providers, 1 routes"
    assert "warning:" in result.stderr and "no price known for p/unpriced-model-zz" in result.stderr


def test_check_reports_every_problem_and_exits_3(tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text("defaults:\n  strategy: fastest\nproviders:\n  p: {type: nope}\nroutes:\n  r: []\n")
    result = run(tmp_path, "--config", str(config), "config", "check")
    assert result.exit_code == 3
    assert f"{config}:2: defaults.strategy: unknown strategy 'fastest'" in result.stderr
    assert f"{config}:4: providers.p.type: unknown type 'nope'" in result.stderr
    assert f"{config}:6: routes.r: route has no targets" in result.stderr
    assert result.stdout == ""


def test_check_missing_explicit_file(tmp_path):
    result = run(tmp_path, "--config", str(tmp_path / "gone.yaml"), "config", "check")
    assert result.exit_code == 3 and "config file not found" in result.stderr


def test_check_builtin_default_config(tmp_path):
    result = run(tmp_path, "config", "check", env={"OPENAI_API_KEY": "sk-test"})
    assert result.exit_code == 0 and result.stdout.strip() == "ok: 1 providers, 1 routes"


def test_check_example_config(tmp_path):
    result = run(tmp_path, "--config", str(REPO / "example-config.yaml"), "config", "check")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("ok: ")


def test_show_redacts_secrets_and_is_loadable_yaml(tmp_path):
    project_config(tmp_path).write_text(
        "providers:\n"
        "  p:\n    type: openai\n    key_cmd: pass show very/private\n"
        "    headers: {X-Custom-Auth: hush-hush-value}\n    models: {m: {input: 1, output: 2}}\n"
        "routes:\n  default: [p]\n"
        "alerts: {webhook: 'https://hooks.example.com/T000/B000/XXXXsecret'}\n")
    result = run(tmp_path, "config", "show")
    assert result.exit_code == 0, result.stderr
    for secret in ("very/private", "hush-hush-value", "XXXXsecret"):
        assert secret not in result.stdout
    shown = yaml.safe_load(result.stdout)
    provider = shown["providers"]["p"]
    assert provider["key_cmd"] == "[REDACTED]" and provider["headers"] == {"X-Custom-Auth": "[REDACTED]"}
    assert shown["alerts"]["webhook"] == "[REDACTED]"
    assert shown["routes"] == {"default": ["p/m"]} and shown["defaults"]["strategy"] == "auto"
    assert provider["models"]["m"] == {"input": 1.0, "output": 2.0, "mode": "chat"}


def test_show_example_config_round_trips(tmp_path):
    result = run(tmp_path, "--config", str(REPO / "example-config.yaml"), "config", "show")
    assert result.exit_code == 0, result.stderr
    shown = yaml.safe_load(result.stdout)
    assert shown["providers"]["offline"]["reply"] == "mock answer"
    assert shown["rules"][3]["when"]["weekdays"] == ["sat", "sun"]
    # the effective config, minus redactions, is itself a valid config
    shown["providers"]["anthropic"]["key_cmd"] = None
    path = tmp_path / "round.yaml"
    path.write_text(yaml.safe_dump(shown))
    again = load_config(path)
    assert set(again.providers) == set(load_config(REPO / "example-config.yaml").providers)


def test_show_builtin_default(tmp_path):
    result = run(tmp_path, "config", "show", env={"ANTHROPIC_API_KEY": "sk-ant-secret-test"})
    assert result.exit_code == 0
    assert "built-in default config" in result.stdout and "sk-ant-secret-test" not in result.stdout
    assert yaml.safe_load(result.stdout)["routes"]["default"][0] == "anthropic/claude-haiku-4-5"


NO_KEY_CONFIG = ("providers:\n  openai: {type: openai, models: [gpt-4o-mini]}\n"
                 "  anthropic: {type: anthropic, models: [claude-haiku-4-5]}\n")


def test_check_warns_when_no_provider_has_a_key(tmp_path):
    project_config(tmp_path).write_text(NO_KEY_CONFIG)
    result = run(tmp_path, "config", "check")
    assert result.exit_code == 0 and result.stdout.startswith("ok: 2 providers")
    assert ("warning: no key found for any provider that needs one (openai, anthropic): "
            "`llmroute keys set openai` or `export OPENAI_API_KEY=...`") in result.stderr.splitlines()


@pytest.mark.parametrize("how", ["env", "keyring", "key_cmd"])
def test_check_is_quiet_when_a_provider_has_a_key_source(tmp_path, memory_keyring, how):
    text, env = NO_KEY_CONFIG, {}
    marker = tmp_path / "key_cmd-ran"
    if how == "env":
        env = {"ANTHROPIC_API_KEY": "sk-ant-test"}
    elif how == "keyring":
        memory_keyring.set_password("llmroute", "openai", "sk-test")
    else:  # a key_cmd counts without being run: checking must not ask `pass` for a secret
        text = text.replace("{type: anthropic,", f"{{type: anthropic, key_cmd: 'touch {marker}; echo k',")
    project_config(tmp_path).write_text(text)
    result = run(tmp_path, "config", "check", env=env)
    assert result.exit_code == 0, result.stderr
    assert "no key found" not in result.stderr and not marker.exists()


def test_check_is_quiet_when_no_provider_needs_a_key(tmp_path):
    project_config(tmp_path).write_text("providers:\n  m: {type: mock, models: [a]}\n")
    result = run(tmp_path, "config", "check")
    assert result.exit_code == 0 and result.stderr == ""


def test_check_warns_when_nothing_is_configured(tmp_path):
    result = run(tmp_path, "config", "check")
    assert result.exit_code == 0 and result.stdout.strip() == "ok: 0 providers, 0 routes"
    assert "warning: no providers are configured and no key was found" in result.stderr


HARD_CODING_PROMPT = ("Implement a thread-safe LRU cache in Java with O(1) get and put, and write unit "
                      "tests for eviction under concurrent access.")


def test_init_routes_small_and_large_targets_of_every_provider_with_a_key(tmp_path, monkeypatch):
    """SPEC §11: the starter's default route holds small and large targets of each provider
    with a key, so `auto` sends a hard prompt to a large one (not to a small or local model)."""
    import json

    from llmroute.config.load import load_config

    from .support import invoke

    keys = {"OPENAI_API_KEY": "sk-test", "ANTHROPIC_API_KEY": "sk-ant-test"}
    result = run(tmp_path, "config", "init", env=keys)
    assert result.exit_code == 0, result.stderr
    target = tmp_path / "conf" / "config.yaml"
    config = load_config(target)
    assert config.warnings == ()
    assert set(config.providers) == {"openai", "anthropic"}
    route = config.routes["default"]
    for provider in ("openai", "anthropic"):
        tiers = {config.model(t).tier for t in route if t.provider == provider}
        assert tiers == {"small", "large"}, provider
    assert "openai, anthropic (keys found)" in result.stderr
    check = run(tmp_path, "config", "check", env=keys)
    assert check.exit_code == 0 and check.stdout.startswith("ok: 2 providers"), check.stderr

    for name, value in keys.items():
        monkeypatch.setenv(name, value)
    code, out, err = invoke(["--config", str(target), "--explain", "--json", HARD_CODING_PROMPT])
    assert code == 0, err
    plan = json.loads(out)
    assert plan["rule"] is None and plan["difficulty"] >= 0.5  # `auto` decides, not the rule
    first = plan["candidates"][0]["target"]
    assert config.model(config.resolve_target(first)).tier == "large"


def test_init_without_keys_writes_examples_with_both_tiers(tmp_path):
    from llmroute.config.load import parse_config
    from llmroute.config.starter import render_starter, starter_config
    from llmroute.config.defaults import KNOWN_PROVIDERS

    starter = parse_config(STARTER_CONFIG)
    assert {starter.model(t).tier for t in starter.routes["default"]} == {"small", "large"}
    assert "ollama" not in starter.providers  # not answering: shown commented out, never tried first
    with_ollama = parse_config(starter_config({"CO_API_KEY": "x"}, lambda name: False, lambda: True))
    assert [t.id for t in with_ollama.routes["default"]] == [
        "cohere/command-r7b-12-2024", "cohere/command-a-03-2025", "ollama/llama3.2"]
    assert with_ollama.providers["cohere"].key_env == "CO_API_KEY"
    everything = parse_config(render_starter([(known, None) for known in KNOWN_PROVIDERS], ollama=False))
    assert everything.warnings == ()  # every model has a built-in price
    for known in KNOWN_PROVIDERS:
        tiers = {everything.model(t).tier for t in everything.routes["default"] if t.provider == known.name}
        assert tiers == {"small", "large"}, known.name
