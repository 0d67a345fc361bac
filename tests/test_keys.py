"""Key resolution order, keyring failures, key_cmd handling, storage (SPEC §3)."""

from __future__ import annotations

import subprocess
import sys

import keyring
import keyring.backends.fail
import keyring.backends.null
import pytest

from llmroute.config.model import ProviderConfig
from llmroute.errors import ExitCode, KeyringUnavailable
from llmroute.keys import KeyCommandFailed, KeyInfo, KeyStore, _default_run_cmd, key_env_for


def provider(name="openai", type="openai", **kw) -> ProviderConfig:
    return ProviderConfig(name=name, type=type, **kw)


class CountingCmd:
    def __init__(self, output="sk-from-cmd-123456", error: Exception | None = None):
        self.output, self.error, self.calls = output, error, []

    def __call__(self, command: str) -> str:
        self.calls.append(command)
        if self.error:
            raise self.error
        return self.output


class RaisingKeyring:
    def get_password(self, service, username):
        raise RuntimeError("keyring is locked")


# --- key_env_for ------------------------------------------------------------------------

@pytest.mark.parametrize(
    "config, expected",
    [
        (provider(key_env="MY_KEY"), "MY_KEY"),
        (provider("openai"), "OPENAI_API_KEY"),
        (provider("groq"), "GROQ_API_KEY"),
        (provider("fast", preset="groq"), "GROQ_API_KEY"),
        (provider("google", type="gemini"), "GEMINI_API_KEY"),
        (provider("co", type="cohere"), "COHERE_API_KEY"),
        (provider("claude", type="anthropic"), "ANTHROPIC_API_KEY"),
        (provider("my-proxy", type="anthropic", base_url="https://proxy.example"), "MY_PROXY_API_KEY"),
        (provider("work-gpt"), "WORK_GPT_API_KEY"),  # never OPENAI_API_KEY for another server
        (provider("llamacpp"), "LLAMACPP_API_KEY"),  # keyless preset: optional own variable
    ],
)
def test_key_env_for(config, expected):
    assert key_env_for(config) == expected


# --- resolution order ---------------------------------------------------------------------

def test_env_wins_over_keyring_and_cmd(memory_keyring):
    memory_keyring.set_password("llmroute", "openai", "sk-keyring-abcdef")
    cmd = CountingCmd()
    store = KeyStore({"OPENAI_API_KEY": "sk-env-abcdefgh"}, run_cmd=cmd)
    info = store.resolve(provider(key_cmd="pass show openai"))
    assert (info.value, info.source) == ("sk-env-abcdefgh", "env")
    assert cmd.calls == []


def test_empty_env_is_skipped_for_keyring(memory_keyring):
    memory_keyring.set_password("llmroute", "openai", "sk-keyring-abcdef")
    info = KeyStore({"OPENAI_API_KEY": "  "}).resolve(provider())
    assert (info.value, info.source) == ("sk-keyring-abcdef", "keyring")


def test_keyring_is_looked_up_by_provider_name(memory_keyring):
    memory_keyring.set_password("llmroute", "work", "sk-work-abcdefgh")
    assert KeyStore({}).resolve(provider("work")).value == "sk-work-abcdefgh"
    assert KeyStore({}).resolve(provider("other")).source == "none"


def test_key_cmd_is_last_and_runs_once_per_process():
    cmd = CountingCmd(output="sk-from-cmd-123456\nmetadata: x\n")
    store = KeyStore({}, run_cmd=cmd)
    config = provider(key_cmd="pass show openai")
    first, second = store.resolve(config), store.resolve(config)
    assert first == second == KeyInfo("sk-from-cmd-123456", "cmd")
    assert cmd.calls == ["pass show openai"]
    assert store.warnings == []


def test_nothing_anywhere_is_none():
    info = KeyStore({}).resolve(provider())
    assert info == KeyInfo(None, "none") and info.masked == ""


def test_gemini_and_cohere_accept_the_sdk_alternates():
    store = KeyStore({"GOOGLE_API_KEY": "AIza-google-123", "CO_API_KEY": "co-key-123456"})
    assert store.resolve(provider("gemini", type="gemini")).value == "AIza-google-123"
    assert store.resolve(provider("cohere", type="cohere")).value == "co-key-123456"
    explicit = provider("gemini", type="gemini", key_env="MY_GEMINI")
    assert KeyStore({"GOOGLE_API_KEY": "x" * 12}).resolve(explicit).source == "none"


def test_raising_keyring_means_no_key_there_and_never_crashes():
    cmd = CountingCmd()
    store = KeyStore({}, keyring=RaisingKeyring(), run_cmd=cmd)
    assert store.resolve(provider(key_cmd="get-key")).source == "cmd"
    assert store.resolve(provider("other")).source == "none"
    assert store.warnings[0].startswith("keyring lookup for provider openai failed (RuntimeError)")
    assert "locked" not in " ".join(store.warnings)


def test_no_backend_is_silently_no_key(memory_keyring):
    keyring.set_keyring(keyring.backends.fail.Keyring())
    store = KeyStore({})
    assert store.resolve(provider()).source == "none"
    assert store.warnings == []


@pytest.mark.parametrize(
    "error, reason",
    [
        (KeyCommandFailed("exit status 1"), "exit status 1"),
        (KeyCommandFailed("timed out after 10 s"), "timed out after 10 s"),
        (ValueError("sk-leaked-in-message"), "ValueError"),
    ],
)
def test_failing_key_cmd_gives_none_and_a_warning_without_output(error, reason):
    store = KeyStore({}, run_cmd=CountingCmd(error=error))
    assert store.resolve(provider(key_cmd="pass show openai")) == KeyInfo(None, "none")
    assert store.warnings == [f"key_cmd for provider openai failed ({reason}); no key from it"]
    assert "sk-leaked" not in store.warnings[0]


def test_key_cmd_printing_nothing_is_no_key():
    store = KeyStore({}, run_cmd=CountingCmd(output="  \n"))
    assert store.resolve(provider(key_cmd="true")).source == "none"
    assert store.warnings == ["key_cmd for provider openai printed nothing; no key from it"]


def test_key_info_repr_never_shows_the_key():
    info = KeyInfo("sk-secret-value-123", "env")
    assert "sk-secret" not in repr(info)
    assert info.masked == "sk-…23"


# --- the real command runner ----------------------------------------------------------------

def test_default_run_cmd_returns_stripped_stdout():
    assert _default_run_cmd("printf '  sk-shell-123  \\n'") == "sk-shell-123"


def test_default_run_cmd_nonzero_exit_hides_output():
    with pytest.raises(KeyCommandFailed) as caught:
        _default_run_cmd("echo sk-secret-out; exit 3")
    assert str(caught.value) == "exit status 3"


def test_default_run_cmd_timeout(monkeypatch):
    def fake_run(*args, **kwargs):
        assert kwargs["timeout"] == 10 and kwargs["shell"] is True
        raise subprocess.TimeoutExpired(args[0], kwargs["timeout"], output=b"sk-partial")

    monkeypatch.setattr(subprocess, "run", fake_run)
    with pytest.raises(KeyCommandFailed, match=r"^timed out after 10 s$"):
        _default_run_cmd("sleep 100")


def test_default_run_cmd_non_utf8():
    with pytest.raises(KeyCommandFailed, match="not UTF-8"):
        _default_run_cmd(f"{sys.executable} -c \"import sys; sys.stdout.buffer.write(b'\\xff')\"")


# --- storing and deleting -------------------------------------------------------------------

def test_set_then_resolve_then_delete(memory_keyring):
    store = KeyStore({})
    assert store.resolve(provider()).source == "none"
    store.set("openai", "sk-stored-123456")
    assert memory_keyring.store[("llmroute", "openai")] == "sk-stored-123456"
    assert store.resolve(provider()).source == "keyring"  # memo forgotten after set
    assert store.delete("openai") is True
    assert store.resolve(provider()).source == "none"
    assert store.delete("openai") is False


def test_set_refuses_empty_key():
    with pytest.raises(ValueError):
        KeyStore({}).set("openai", "")


@pytest.mark.parametrize(
    "backend", [keyring.backends.fail.Keyring(), keyring.backends.null.Keyring()]
)
def test_no_usable_backend_raises_exit_5_with_env_guidance(backend):
    store = KeyStore({}, keyring=backend)
    assert store.backend_usable() is False
    with pytest.raises(KeyringUnavailable) as caught:
        store.set("groq", "gsk-123456789")
    error = caught.value
    assert error.exit_code == ExitCode.NO_PROVIDER == 5
    assert "no usable keyring backend" in error.message
    assert "export GROQ_API_KEY=..." in error.hint and "provider groq" in error.hint
    assert "gsk-123456789" not in " ".join(error.lines())
    with pytest.raises(KeyringUnavailable):
        store.delete("groq")


def test_guidance_uses_the_configured_variable():
    store = KeyStore({}, keyring=keyring.backends.fail.Keyring())
    with pytest.raises(KeyringUnavailable) as caught:
        store.set("work", "k" * 20, config=provider("work", key_env="WORK_TOKEN"))
    assert "export WORK_TOKEN=..." in caught.value.hint


def test_empty_chainer_is_not_usable(monkeypatch):
    from keyring.backends import chainer

    monkeypatch.setattr(chainer.ChainerBackend, "backends", [])
    assert KeyStore({}, keyring=chainer.ChainerBackend()).backend_usable() is False


def test_memory_backend_is_usable_through_the_module():
    assert KeyStore({}).backend_usable() is True


def test_backend_that_refuses_to_store_is_exit_5():
    class Refusing(RaisingKeyring):
        def set_password(self, *args):
            raise RuntimeError("locked: sk-should-not-show")

    with pytest.raises(KeyringUnavailable) as caught:
        KeyStore({}, keyring=Refusing()).set("openai", "sk-abcdefghij")
    assert "RuntimeError" in caught.value.message
    assert "sk-" not in " ".join(caught.value.lines())
