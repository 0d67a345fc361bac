"""The built-in price table: known figures (litellm 1.109.1 and 1.75.0) and how configured
providers map onto LiteLLM's keys."""

from __future__ import annotations

import dataclasses

import pytest

from llmroute.catalog.builtin import (
    FREE, PRICE_TABLE_DATE, PriceEntry, known_models, lookup_price, price_source_label,
)


def test_label_and_date():
    assert PRICE_TABLE_DATE.startswith("2026-")
    assert price_source_label() == f"builtin:{PRICE_TABLE_DATE}"


def test_entries_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        lookup_price("openai", "gpt-4o").input = 0  # type: ignore[misc]
    with pytest.raises(TypeError):
        known_models()["x"] = FREE  # type: ignore[index]


@pytest.mark.parametrize(
    "args, expected",
    [
        (("openai", "gpt-4o"), PriceEntry(2.50, 10.00, 128000, 16384, cached_input=1.25)),
        (("openai", "gpt-4o-mini"), PriceEntry(0.15, 0.60, 128000, 16384, cached_input=0.075)),
        (("openai", "gpt-4.1"), PriceEntry(2.00, 8.00, 1047576, 32768, cached_input=0.50)),
        (("openai", "gpt-5-mini"), PriceEntry(0.25, 2.00, 272000, 128000, cached_input=0.025)),
        (("anthropic", "claude-sonnet-4-5"), PriceEntry(3.00, 15.00, 200000, 64000, cached_input=0.30, cache_write=3.75)),
        (("anthropic", "claude-sonnet-4-6"), PriceEntry(3.00, 15.00, 1000000, 128000, cached_input=0.30, cache_write=3.75)),
        (("anthropic", "claude-haiku-4-5"), PriceEntry(1.00, 5.00, 200000, 64000, cached_input=0.10, cache_write=1.25)),
        (("gemini", "gemini-2.5-flash"), PriceEntry(0.30, 2.50, 1048576, 65536, cached_input=0.03)),
        (("gemini", "gemini-2.5-flash-lite"), PriceEntry(0.10, 0.40, 1048576, 65536, cached_input=0.01)),
        (("gemini", "gemini-2.5-pro"), PriceEntry(1.25, 10.00, 1048576, 65536, cached_input=0.125, tier_tokens=200000,
                                                       input_above=2.50, output_above=15.00)),
        (("cohere", "command-a-03-2025"), PriceEntry(2.50, 10.00, 256000, 8000)),
        (("openai", "mistral-small-latest", None, "mistral"), PriceEntry(0.15, 0.60, 262144, 262144, cached_input=0.015)),
        (("openai", "mistral-large-latest", None, "mistral"), PriceEntry(0.50, 1.50, 262144, 262144, cached_input=0.05)),
        (("openai", "openai/gpt-oss-120b", None, "groq"), PriceEntry(0.15, 0.60, 131072, 65536, cached_input=0.075)),
        # litellm 1.75.0 figures
        (("openai", "llama-3.3-70b-versatile", None, "groq"), PriceEntry(0.59, 0.79, 128000, 32768)),
        (("openai", "llama-3.1-8b-instant", None, "groq"), PriceEntry(0.05, 0.08, 128000, 8192)),
        (("openai", "meta-llama/llama-4-scout-17b-16e-instruct", None, "groq"), PriceEntry(0.11, 0.34, 131072, 8192)),
        (("anthropic", "claude-sonnet-4-20250514"),
         PriceEntry(3.00, 15.00, 200000, 64000, cached_input=0.30, cache_write=3.75)),
        (("anthropic", "claude-3-5-haiku-20241022"), PriceEntry(0.80, 4.00, 200000, 8192, cached_input=0.08, cache_write=1.0)),
        (("gemini", "gemini-2.0-flash"), PriceEntry(0.10, 0.40, 1048576, 8192)),
        (("openai", "openai/gpt-4o", None, "openrouter"), PriceEntry(2.50, 10.00, 128000, 4096)),
    ],
)
def test_known_prices(args, expected):
    assert lookup_price(*args) == expected


def test_dated_suffixes_fall_back_to_the_alias():
    assert lookup_price("anthropic", "claude-haiku-4-5-20251001") == lookup_price("anthropic", "claude-haiku-4-5")
    assert lookup_price("openai", "gpt-4o-mini-2024-07-18") == lookup_price("openai", "gpt-4o-mini")
    # an exact dated key wins over stripping
    assert lookup_price("anthropic", "claude-3-5-haiku-20241022").input == 0.80


def test_key_prefixes_in_the_model_name_are_understood():
    assert lookup_price("gemini", "gemini/gemini-2.5-flash") == lookup_price("gemini", "gemini-2.5-flash")
    assert lookup_price("gemini", "models/gemini-2.5-flash") == lookup_price("gemini", "gemini-2.5-flash")
    assert lookup_price("openai", "groq/llama-3.1-8b-instant", preset="groq").output == 0.08


def test_presets_by_base_url_host():
    assert lookup_price("openai", "mistral-small-latest", "https://api.mistral.ai/v1").input == 0.15
    assert lookup_price("openai", "llama-3.1-8b-instant", "https://api.groq.com/openai/v1").input == 0.05
    assert lookup_price("openai", "openai/gpt-4o", "https://openrouter.ai/api/v1").max_output == 4096
    assert lookup_price("openai", "deepseek-chat", "https://api.deepseek.com/v1") == PriceEntry(0.28, 0.42, 131072, 8192)


def test_preset_prices_do_not_leak_into_other_services():
    # gpt-4o on Groq or Mistral is not OpenAI's price; a gemini provider is never priced as OpenAI.
    assert lookup_price("openai", "gpt-4o", preset="groq") is None
    assert lookup_price("openai", "gpt-4o", "https://api.mistral.ai/v1") is None
    assert lookup_price("gemini", "gpt-4o") is None
    assert lookup_price("anthropic", "gemini-2.5-flash") is None
    assert lookup_price("openai", "gpt-4o", preset="together") is None


def test_openrouter_falls_back_to_the_vendor_price():
    assert lookup_price("openai", "openai/gpt-4o-mini", preset="openrouter") == lookup_price("openai", "gpt-4o-mini")
    assert lookup_price("openai", "anthropic/claude-haiku-4.5", preset="openrouter").input == 1.00
    assert lookup_price("openai", "openai/gpt-4.1:nitro", preset="openrouter").input == 2.00
    assert lookup_price("openai", "someone/unknown-model", preset="openrouter") is None


def test_transcription_models_are_priced_per_minute():
    whisper = lookup_price("openai", "whisper-1")
    assert whisper.per_minute == pytest.approx(0.006)
    assert (whisper.input, whisper.output) == (0.0, 0.0)
    groq = lookup_price("openai", "whisper-large-v3", preset="groq")
    assert groq.per_minute == pytest.approx(3.083e-05 * 60)
    assert lookup_price("openai", "gpt-4o-transcribe").per_minute == pytest.approx(0.006)


@pytest.mark.parametrize(
    "args",
    [
        ("ollama", "llama3.2"),
        ("ollama", "anything:latest", "https://ollama.com"),
        ("local", "model.gguf"),
        ("mock", "echo"),
        ("openai", "llama3.2", None, "ollama-openai"),
        ("openai", "qwen", None, "vllm"),
        ("openai", "gpt-4o-mini", "http://10.0.0.5:8000/v1", "vllm"),  # a preset on another box
        ("openai", "my-model", None, "lmstudio"),
    ],
)
def test_local_servers_are_free(args):
    assert lookup_price(*args) == FREE


@pytest.mark.parametrize("base_url", ["http://localhost:4000/v1", "http://127.0.0.1:4000/v1",
                                      "http://[::1]:4000/v1", "http://10.1.2.3:4000/v1"])
def test_a_local_base_url_is_not_proof_of_a_free_model(base_url):
    # A LiteLLM proxy or company gateway forwards gpt-4o-mini to OpenAI, which charges for it.
    assert lookup_price("openai", "gpt-4o-mini", base_url) == lookup_price("openai", "gpt-4o-mini")
    assert lookup_price("openai", "openai/gpt-4o", base_url) == lookup_price("openai", "gpt-4o")
    assert lookup_price("openai", "gpt-4o-mini", base_url).input == 0.15
    assert lookup_price("openai", "claude-haiku-4-5", base_url).input == 1.00
    assert lookup_price("openai", "my-model", base_url) is None  # unknown: no price, not free


def test_unknown_models_and_types():
    assert lookup_price("openai", "gpt-9") is None
    assert lookup_price("cohere", "command-z") is None
    assert lookup_price("nonsense", "gpt-4o") is None
    assert lookup_price("openai", "my-model", "https://llm.internal.example/v1") is None


def test_table_is_consistent():
    for key, entry in known_models().items():
        assert entry.input >= 0 and entry.output >= 0, key
        if entry.per_minute is None:
            assert entry.context and entry.max_output, key
