"""The mock provider: deterministic replies, failures and usage; simulated latency via sleep."""

from __future__ import annotations

import asyncio
from types import MappingProxyType

import pytest

from llmroute.config.model import ModelConfig, ProviderConfig
from llmroute.errors import ConfigError, ErrorClass, ProviderError
from llmroute.providers import create_provider
from llmroute.providers.mock import MockProvider
from llmroute.types import Message, Request


def make(options=None, sleeps=None, models=("m1", "m2")):
    config = ProviderConfig(
        name="mock", type="mock",
        models=MappingProxyType({m: ModelConfig(name=m) for m in models}),
        options=MappingProxyType(options or {}),
    )
    return create_provider(config, sleep=(sleeps.append if sleeps is not None else lambda s: None))


def ask(text, system=None):
    return Request(messages=(Message("user", text),), system=system)


def test_registry_builds_mock_without_key():
    provider = make()
    assert isinstance(provider, MockProvider)
    assert provider.requires_key is False and provider.needs_key() is False


def test_default_reply_and_usage_by_words():
    prompt = "x" * 100
    result = make().complete(ask(prompt, system="be brief"), "m1", timeout=5)
    assert result.text == f"mock answer from m1: {'x' * 60}"
    assert result.usage.input_tokens == 3  # "be brief" + the prompt word
    assert result.usage.output_tokens == 5
    assert result.usage.source == "provider"
    assert result.finish_reason == "stop"


def test_reply_placeholders_and_braces_in_prompt():
    provider = make({"reply": "[{model}] echo: {prompt}"})
    assert provider.complete(ask("a {b} c"), "m2", timeout=5).text == "[m2] echo: a {b} c"


def test_latency_uses_injected_sleep():
    sleeps: list[float] = []
    provider = make({"latency_ms": 250}, sleeps)
    provider.complete(ask("hi"), "m1", timeout=5)
    list(provider.stream(ask("hi"), "m1", timeout=5))
    provider.probe(timeout=5)
    assert sleeps == [0.25, 0.25, 0.25]


def test_no_latency_no_sleep():
    sleeps: list[float] = []
    make({}, sleeps).complete(ask("hi"), "m1", timeout=5)
    assert sleeps == []


def test_fail_rate_one_always_fails_with_server_error():
    with pytest.raises(ProviderError) as info:
        make({"fail_rate": 1}).complete(ask("hi"), "m1", timeout=5)
    assert info.value.error_class is ErrorClass.SERVER_ERROR
    assert info.value.http_status == 500 and info.value.message == "mock failure"
    with pytest.raises(ProviderError):
        list(make({"fail_rate": 1.0}).stream(ask("hi"), "m1", timeout=5))


def outcomes(provider, prompts):
    result = []
    for prompt in prompts:
        try:
            provider.complete(ask(prompt), "m1", timeout=5)
            result.append(True)
        except ProviderError:
            result.append(False)
    return result


def test_failures_are_deterministic_per_prompt_and_seed():
    prompts = [f"prompt {i}" for i in range(200)]
    first = outcomes(make({"fail_rate": 0.5}), prompts)
    assert first == outcomes(make({"fail_rate": 0.5}), prompts)
    assert 40 < first.count(False) < 160  # roughly the configured rate
    other_seed = outcomes(make({"fail_rate": 0.5, "seed": 7}), prompts)
    assert other_seed != first


def test_fail_rate_zero_never_fails():
    assert all(outcomes(make({"fail_rate": 0}), [f"p{i}" for i in range(100)]))


def test_stream_yields_word_chunks_then_usage():
    provider = make({"reply": "one two  three four"})
    chunks = list(provider.stream(ask("hi there"), "m1", timeout=5))
    texts = [c.text for c in chunks if c.text]
    assert len(texts) == 4 and "".join(texts) == "one two  three four"
    assert chunks[-1].text == "" and chunks[-1].finish_reason == "stop"
    assert chunks[-1].usage.input_tokens == 2 and chunks[-1].usage.output_tokens == 4


def test_probe_lists_models():
    assert make().probe(timeout=1) == ["m1", "m2"]


def test_acomplete_works():
    result = asyncio.run(make().acomplete(ask("hi"), "m2", timeout=5))
    assert result.text == "mock answer from m2: hi"


@pytest.mark.parametrize(
    "options, fragment",
    [
        ({"fail_rate": 1.5}, "fail_rate"),
        ({"fail_rate": "often"}, "fail_rate"),
        ({"latency_ms": -1}, "latency_ms"),
        ({"seed": 1.5}, "seed"),
        ({"seed": True}, "seed"),
        ({"reply": 3}, "reply"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_options_are_config_errors(options, fragment):
    with pytest.raises(ConfigError) as info:
        make(options)
    assert fragment in info.value.problems[0]
