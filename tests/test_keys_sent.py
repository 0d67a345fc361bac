"""A key that is found is always sent, to loopback and private hosts too (SPEC §4, issue 15).

A LiteLLM proxy or company gateway on localhost is an OpenAI-compatible provider that needs no
key to be *planned* (a missing key does not filter it), but when the environment, the keyring
or `key_cmd` has one, every call carries it — and `models`, `health` and `keys list` say so.
The fake server here plays the gateway: it answers 401 to anything without its master key.
"""

from __future__ import annotations

import json
import os

import pytest

from llmroute.config.model import ProviderConfig
from llmroute.keys import KeyStore, consults_keyring

from .support import fake_server, invoke, project_config

KEY = "sk-gateway-master-0123456789"


def _config(tmp_path, url: str, name: str = "gateway", extra: str = "") -> None:
    project_config(tmp_path).write_text(
        "version: 1\ndefaults: {retries: 0}\nproviders:\n"
        f"  {name}:\n    type: openai\n    base_url: {url}/v1\n"
        f"    models: {{gpt-4o-mini: {{}}}}\n{extra}"
        f"routes:\n  default: [{name}/gpt-4o-mini]\n")


def _sent_keys(log) -> list:
    return [json.loads(line)["key"] for line in log.read_text().splitlines()]


@pytest.mark.parametrize(
    "name, source",
    [
        ("openai", "env"),   # a provider named openai pointed at a local proxy: OPENAI_API_KEY
        ("gateway", "env"),  # any other name: <NAME>_API_KEY (SPEC §2)
        ("gateway", "keyring"),
    ],
)
def test_a_found_key_reaches_a_loopback_gateway(tmp_path, monkeypatch, memory_keyring, name, source):
    if source == "env":
        monkeypatch.setenv(f"{name.upper()}_API_KEY", KEY)
    else:
        memory_keyring.set_password("llmroute", name, KEY)
    log = tmp_path / "requests.jsonl"
    with fake_server(require_key=KEY, log=log) as url:
        _config(tmp_path, url, name)
        code, out, err = invoke(["--json", "hello gateway"])
    assert code == 0, err
    assert json.loads(out)["target"] == f"{name}/gpt-4o-mini"
    assert _sent_keys(log) == [KEY]


def test_a_keyless_gateway_without_a_key_is_still_called_without_one(tmp_path):
    log = tmp_path / "requests.jsonl"
    with fake_server(log=log) as url:
        _config(tmp_path, url)
        code, _, err = invoke(["hello gateway"])
    assert code == 0, err
    assert _sent_keys(log) == [None]


def test_models_and_health_say_the_key_is_sent(tmp_path, monkeypatch):
    monkeypatch.setenv("GATEWAY_API_KEY", KEY)
    with fake_server(require_key=KEY) as url:
        _config(tmp_path, url, extra="  box:\n    type: ollama\n    models: {llama3.2: {}}\n")
        code, out, err = invoke(["models", "--json"])
        assert code == 0, err
        keys = {row["target"]: row["key"] for row in map(json.loads, out.splitlines())}
        assert keys == {"gateway/gpt-4o-mini": "env", "box/llama3.2": "not needed"}
        code, out, err = invoke(["health", "--json", "gateway"])
    assert code == 0, err
    [row] = json.loads(out)
    assert (row["status"], row["key"]) == ("up", "env")  # the probe carried the key: no 401
    assert KEY not in out + err


def test_keys_list_says_when_a_keyring_key_is_not_sent(tmp_path, memory_keyring):
    memory_keyring.set_password("llmroute", "ollama", "ollama-cloud-key-123456")
    memory_keyring.set_password("llmroute", "gateway", KEY)
    _config(tmp_path, "http://127.0.0.1:4000", extra="  ollama:\n    type: ollama\n    models: {llama3.2: {}}\n")
    code, out, err = invoke(["keys", "list"])
    assert code == 0, err
    rows = {line.split()[0]: line for line in out.splitlines()[2:]}
    assert "not sent" in rows["ollama"] and "OLLAMA_API_KEY" in rows["ollama"]
    assert "keyring" in rows["gateway"] and "not sent" not in rows["gateway"]
    assert KEY not in out and "ollama-cloud-key-123456" not in out


# --- which sources a call's key comes from --------------------------------------------------

def provider(name="gateway", type="openai", **kw) -> ProviderConfig:
    return ProviderConfig(name=name, type=type, **kw)


@pytest.mark.parametrize(
    "config, consulted",
    [
        (provider(base_url="http://127.0.0.1:4000/v1"), True),  # a gateway the user pointed at
        (provider("box", "ollama", base_url="https://ollama.com"), True),  # Ollama cloud
        (provider("openai"), True), (provider("claude", "anthropic"), True),  # need a key
        (provider("ollama", "ollama"), False),  # Ollama at localhost:11434 ignores keys
        (provider("vllm"), False), (provider("box", preset="llamacpp"), False),
        (provider("local", "local"), False), (provider("demo", "mock"), False),
    ],
)
def test_the_keyring_is_read_only_where_a_key_can_matter(config, consulted):
    assert consults_keyring(config) is consulted


class Keyring:
    def __init__(self, keys: dict[str, str]):
        self.keys, self.asked = keys, []

    def get_password(self, service, name):
        self.asked.append(name)
        return self.keys.get(name)


def test_for_call_skips_the_keyring_for_a_default_local_server_but_reads_env_and_cmd():
    ring = Keyring({"ollama": "from-keyring-123456", "gateway": "gw-keyring-123456"})
    runs = []

    def run(command):
        runs.append(command)
        return "from-cmd-1234567"

    store = KeyStore({"VLLM_API_KEY": "from-env-1234567"}, keyring=ring, run_cmd=run)
    assert store.for_call(provider("ollama", "ollama")).value is None
    assert store.for_call(provider("vllm")).value == "from-env-1234567"  # vllm --api-key
    assert ring.asked == []  # a local-only setup never pays for the keyring
    gateway = provider(base_url="http://127.0.0.1:4000/v1")
    assert (store.for_call(gateway).value, store.for_call(gateway).source) == ("gw-keyring-123456", "keyring")
    with_cmd = provider("ollama", "ollama", key_cmd="pass show ollama")
    assert store.for_call(with_cmd).value == "from-cmd-1234567"
    assert store.resolve(with_cmd).value == "from-keyring-123456"  # `keys list`: where it is
    store.resolve(provider("lmstudio", key_cmd="pass show x"))
    store.for_call(provider("lmstudio", key_cmd="pass show x"))
    assert runs == ["pass show ollama", "pass show x"]  # each command runs once per process


def test_engine_sends_a_found_key_to_a_keyless_provider(tmp_path):
    from llmroute.config.model import Config, ModelConfig
    from llmroute.engine import Engine
    from llmroute.paths import Paths

    gateway = provider(base_url="http://127.0.0.1:4000/v1", models={"m": ModelConfig("m")})
    engine = Engine(Config(providers={"gateway": gateway}), paths=Paths(tmp_path, tmp_path),
                    keys=KeyStore({"GATEWAY_API_KEY": KEY}))
    assert engine.key_for(gateway) == KEY
    assert engine.provider("gateway")._key == KEY
    assert "GATEWAY_API_KEY" not in os.environ
