"""`llmroute keys set|list|delete` through click, with a stand-in root command."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from types import MappingProxyType

import click
import keyring
import keyring.backends.fail
import pytest
from click.testing import CliRunner

from llmroute.cli import keys_cmd
from llmroute.config.model import Config, ProviderConfig
from llmroute.errors import ConfigError, LLMRouteError
from llmroute.paths import Paths

SECRET = "sk-live-secret-0123456789"


@dataclass
class StandIn:
    env: dict
    config: Config | None
    paths: Paths = field(default_factory=lambda: Paths.from_env({"LLMROUTE_HOME": "/tmp/unused"}))

    def load_config(self) -> Config:
        if self.config is None:
            raise ConfigError(["llmroute.yaml:3: unknown key 'provders'"])
        return self.config


def make_config(*providers: ProviderConfig) -> Config:
    return Config(providers=MappingProxyType({p.name: p for p in providers}))


def make_root(obj) -> click.Group:
    """A stand-in for the main CLI: sets ctx.obj and maps LLMRouteError to lines + exit code."""

    @click.group()
    @click.pass_context
    def root(ctx):
        ctx.obj = obj

    root.add_command(keys_cmd.keys_group)

    @click.command(context_settings={"ignore_unknown_options": True, "help_option_names": []})
    @click.argument("argv", nargs=-1, type=click.UNPROCESSED)
    def entry(argv):
        try:
            root.main(list(argv), standalone_mode=False)
        except LLMRouteError as e:
            for line in e.lines():
                click.echo(line, err=True)
            sys.exit(e.exit_code)
        except click.ClickException as e:
            e.show()
            sys.exit(e.exit_code)

    return entry


def invoke(obj, args, input=None):
    return CliRunner().invoke(make_root(obj), list(args), input=input)


def run(args, *, env=None, config=None, input=None):
    return invoke(StandIn(env=env or {}, config=config if config is not None else make_config()), args, input)


def test_set_from_pipe_strips_newline_and_never_echoes(memory_keyring):
    result = run(["keys", "set", "openai"], input=SECRET + "\n")
    assert result.exit_code == 0, result.output
    assert memory_keyring.store[("llmroute", "openai")] == SECRET
    assert "stored key for openai in the keyring" in result.stderr
    assert SECRET not in result.output and result.stdout == ""


def test_set_prompts_without_echo_on_a_terminal(memory_keyring, monkeypatch):
    monkeypatch.setattr(keys_cmd, "_stdin_is_tty", lambda: True)
    result = run(["keys", "set", "anthropic"], input=SECRET + "\n")
    assert result.exit_code == 0, result.output
    assert memory_keyring.store[("llmroute", "anthropic")] == SECRET
    assert "API key for anthropic" in result.output
    assert SECRET not in result.output


@pytest.mark.parametrize("piped", ["", "\n", "   \n"])
def test_set_empty_key_is_usage_error(memory_keyring, piped):
    result = run(["keys", "set", "openai"], input=piped)
    assert result.exit_code == 2
    assert "empty key" in result.stderr
    assert memory_keyring.store == {}


def test_set_several_lines_is_usage_error(memory_keyring):
    result = run(["keys", "set", "openai"], input="one\ntwo\n")
    assert result.exit_code == 2 and "one key" in result.stderr
    assert memory_keyring.store == {}


def test_set_non_utf8_is_usage_error(memory_keyring):
    result = run(["keys", "set", "openai"], input=b"\xff\xfe\n")
    assert result.exit_code == 2 and "UTF-8" in result.stderr


def test_set_rejects_a_target_as_name(memory_keyring):
    result = run(["keys", "set", "openai/gpt-4o"], input=SECRET)
    assert result.exit_code == 2 and "invalid provider name" in result.stderr
    assert memory_keyring.store == {}


def test_set_without_backend_exits_5_with_env_guidance():
    keyring.set_keyring(keyring.backends.fail.Keyring())
    config = make_config(ProviderConfig("work", "openai", key_env="WORK_TOKEN"))
    result = run(["keys", "set", "work"], input=SECRET, config=config)
    assert result.exit_code == 5
    assert "no usable keyring backend" in result.stderr
    assert "export WORK_TOKEN=..." in result.stderr
    assert SECRET not in result.output


def test_set_guidance_works_even_when_config_is_broken():
    keyring.set_keyring(keyring.backends.fail.Keyring())
    result = invoke(StandIn(env={}, config=None), ["keys", "set", "openai"], input=SECRET)
    assert result.exit_code == 5
    assert "export OPENAI_API_KEY=..." in result.stderr


def test_list_shows_sources_masked_and_never_the_key(memory_keyring):
    memory_keyring.set_password("llmroute", "anthropic", "sk-ant-keyring-987654321")
    config = make_config(
        ProviderConfig("openai", "openai"),
        ProviderConfig("anthropic", "anthropic"),
        ProviderConfig("gemini", "gemini"),
        ProviderConfig("ollama", "ollama"),
    )
    result = run(["keys", "list"], env={"OPENAI_API_KEY": SECRET}, config=config)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["provider", "variable", "source", "key"]
    rows = {line.split()[0]: line.split() for line in lines[2:]}
    assert rows["openai"] == ["openai", "OPENAI_API_KEY", "env", "sk-…89"]
    assert rows["anthropic"] == ["anthropic", "ANTHROPIC_API_KEY", "keyring", "sk-…21"]
    assert rows["gemini"] == ["gemini", "GEMINI_API_KEY", "none", "-"]
    assert rows["ollama"][2:] == ["none", "(not", "needed)"]
    assert SECRET not in result.output and "987654321" not in result.output


def test_list_reports_failing_key_cmd_on_stderr_without_its_output():
    config = make_config(ProviderConfig("work", "openai", key_cmd="echo sk-cmd-leak-12345; exit 4"))
    result = run(["keys", "list"], config=config)
    assert result.exit_code == 0
    assert "key_cmd for provider work failed (exit status 4)" in result.stderr
    assert "sk-cmd-leak" not in result.output


def test_list_key_from_cmd(memory_keyring):
    config = make_config(ProviderConfig("work", "openai", key_cmd="printf sk-cmd-key-abcdefg"))
    result = run(["keys", "list"], config=config)
    assert result.exit_code == 0
    assert "cmd" in result.stdout.split() and "sk-cmd-key-abcdefg" not in result.output


def test_list_with_no_providers():
    result = run(["keys", "list"])
    assert result.exit_code == 0 and "no providers" in result.stderr


def test_list_with_broken_config_exits_3():
    result = invoke(StandIn(env={}, config=None), ["keys", "list"])
    assert result.exit_code == 3 and "llmroute.yaml:3" in result.stderr


def test_delete_existing_then_missing(memory_keyring):
    memory_keyring.set_password("llmroute", "openai", SECRET)
    result = run(["keys", "delete", "openai"])
    assert result.exit_code == 0
    assert "deleted key for openai" in result.stderr
    assert memory_keyring.store == {}
    again = run(["keys", "delete", "openai"])
    assert again.exit_code == 2
    assert "no key for openai in the keyring" in again.stderr


def test_uses_the_context_keystore_when_offered(memory_keyring):
    from llmroute.keys import KeyStore

    calls = []

    class WithStore(StandIn):
        def keystore(self):
            calls.append(1)
            return KeyStore(self.env)

    result = invoke(WithStore(env={}, config=make_config()), ["keys", "set", "openai"], input=SECRET)
    assert result.exit_code == 0 and calls == [1]


def test_every_command_has_help():
    for name, command in keys_cmd.keys_group.commands.items():
        assert command.help, name
    assert keys_cmd.keys_group.help


def test_set_for_an_unknown_provider_warns_and_still_stores(memory_keyring):
    from pathlib import Path

    config = Config(providers=MappingProxyType({"openai": ProviderConfig("openai", "openai"),
                                                "anthropic": ProviderConfig("anthropic", "anthropic")}),
                    source=Path("/home/me/llmroute.yaml"))
    result = run(["keys", "set", "opneai"], input=SECRET, config=config)
    assert result.exit_code == 0, result.output
    assert memory_keyring.store[("llmroute", "opneai")] == SECRET
    warning = result.stderr.splitlines()[0]
    assert warning.startswith("llmroute: warning: no provider is named opneai; did you mean openai?")
    assert "providers configured in /home/me/llmroute.yaml: openai, anthropic" in warning
    assert "stored key for opneai in the keyring" in result.stderr
    assert SECRET not in result.output


def test_set_for_a_configured_provider_does_not_warn(memory_keyring):
    from pathlib import Path

    config = Config(providers=MappingProxyType({"work": ProviderConfig("work", "openai")}),
                    source=Path("/home/me/llmroute.yaml"))
    result = run(["keys", "set", "work"], input=SECRET, config=config)
    assert result.exit_code == 0 and "warning" not in result.stderr


def test_set_without_a_config_file_knows_the_providers_a_key_sets_up(memory_keyring):
    """The built-in default config adds groq once it has a key: no warning for it; a typo of
    it is named."""
    result = run(["keys", "set", "groq"], input=SECRET)
    assert result.exit_code == 0 and "warning" not in result.stderr
    result = run(["keys", "set", "grok"], input=SECRET)
    assert result.exit_code == 0 and memory_keyring.store[("llmroute", "grok")] == SECRET
    assert "no provider is named grok; did you mean groq?" in result.stderr
    assert "providers llmroute knows without a config file:" in result.stderr


def test_set_with_a_broken_config_stores_without_a_warning(memory_keyring):
    result = invoke(StandIn(env={}, config=None), ["keys", "set", "opneai"], input=SECRET)
    assert result.exit_code == 0 and memory_keyring.store[("llmroute", "opneai")] == SECRET
    assert "warning" not in result.stderr
