"""The built-in, dated price table (SPEC §2.2): USD per 1M tokens, context and output limits.

Figures are LiteLLM's `model_prices_and_context_window_backup.json` from the litellm 1.109.1
wheel (its newest dated model entry is 2026-09-29, hence `PRICE_TABLE_DATE`), converted from
USD per token to USD per million. Models that file no longer lists but people still route to
(Llama on Groq, older Claude/Gemini snapshots, OpenRouter's gpt-4o) come from litellm 1.75.0.
Cache read/write rates and the long-context tier are those LiteLLM lists for the same models
(`cache_read_input_token_cost`, `cache_creation_input_token_cost`,
`input_cost_per_token_above_200k_tokens`); docs/prices.md lists them with their sources.
Config values override everything here; `price_source_label()` is what the ledger records as
`price_source` when a price came from this table.

Keys follow LiteLLM: bare for OpenAI, Anthropic and Cohere; `gemini/`, `mistral/`, `groq/`,
`openrouter/` prefixes otherwise. `lookup_price` maps a configured provider onto those keys.
"""

from __future__ import annotations

import functools

import re
from dataclasses import dataclass
from types import MappingProxyType
from typing import Mapping
from urllib.parse import urlsplit

from . import LOCAL_TYPES

PRICE_TABLE_DATE = "2026-09-29"


@dataclass(frozen=True)
class PriceEntry:
    """USD per 1M input/output tokens; `per_minute` (USD per audio minute) for transcription
    models, whose token prices are then 0 unless the model is also billed per token."""

    input: float
    output: float
    context: int | None
    max_output: int | None
    per_minute: float | None = None
    # Usage parts (SPEC §2.2), None where the source lists none: input read from the prompt
    # cache (LiteLLM `cache_read_input_token_cost`), written to it (`cache_creation_…`), and
    # the long-context tier (`input_cost_per_token_above_200k_tokens`, `output_…`).
    cached_input: float | None = None
    cache_write: float | None = None
    tier_tokens: int | None = None
    input_above: float | None = None
    output_above: float | None = None


def _e(input: float, output: float, context: int | None, max_output: int | None,
       cached: float | None = None, write: float | None = None, *,
       tier: tuple[int, float, float] | None = None) -> PriceEntry:
    """An entry; `cached`/`write` are the cache read/write rates, `tier` is (tokens, input,
    output) above that many prompt tokens."""
    tier_tokens, above_in, above_out = tier if tier else (None, None, None)
    return PriceEntry(input, output, context, max_output, None, cached, write, tier_tokens, above_in, above_out)


def _claude(input: float, output: float, context: int, max_output: int) -> PriceEntry:
    """A Claude model not listed with cache rates: Anthropic's rule, reads at 0.1x input and
    5-minute writes at 1.25x input (docs/prices.md)."""
    return _e(input, output, context, max_output, round(input * 0.1, 6), round(input * 1.25, 6))


def _per_second(usd_per_second: float) -> PriceEntry:
    return PriceEntry(0.0, 0.0, None, None, per_minute=round(usd_per_second * 60, 10))


FREE = PriceEntry(0.0, 0.0, None, None)

_TABLE: Mapping[str, PriceEntry] = MappingProxyType({
    # --- litellm 1.109.1 -------------------------------------------------------------------
    "gpt-4o": _e(2.50, 10.00, 128000, 16384, 1.25),
    "gpt-4o-mini": _e(0.15, 0.60, 128000, 16384, 0.075),
    "gpt-4.1": _e(2.00, 8.00, 1047576, 32768, 0.50),
    "gpt-4.1-mini": _e(0.40, 1.60, 1047576, 32768),
    "gpt-4.1-nano": _e(0.10, 0.40, 1047576, 32768),
    "gpt-5": _e(1.25, 10.00, 272000, 128000),
    "gpt-5-mini": _e(0.25, 2.00, 272000, 128000, 0.025),
    "gpt-5-nano": _e(0.05, 0.40, 272000, 128000),
    "o3": _e(2.00, 8.00, 200000, 100000),
    "o4-mini": _e(1.10, 4.40, 200000, 100000),
    "claude-sonnet-4-5": _e(3.00, 15.00, 200000, 64000, 0.30, 3.75),
    "claude-sonnet-4-6": _e(3.00, 15.00, 1000000, 128000, 0.30, 3.75),
    "claude-haiku-4-5": _e(1.00, 5.00, 200000, 64000, 0.10, 1.25),
    "claude-opus-4-5": _claude(5.00, 25.00, 200000, 64000),
    "claude-opus-4-6": _claude(5.00, 25.00, 1000000, 128000),
    "gemini/gemini-2.5-flash": _e(0.30, 2.50, 1048576, 65536, 0.03),
    "gemini/gemini-2.5-flash-lite": _e(0.10, 0.40, 1048576, 65536, 0.01),
    # Up to 200k input tokens; longer prompts cost 2.50 / 15.00.
    "gemini/gemini-2.5-pro": _e(1.25, 10.00, 1048576, 65536, 0.125, tier=(200000, 2.50, 15.00)),
    "mistral/mistral-small-latest": _e(0.15, 0.60, 262144, 262144, 0.015),
    "mistral/mistral-medium-latest": _e(1.50, 7.50, 262144, 262144),
    "mistral/mistral-large-latest": _e(0.50, 1.50, 262144, 262144, 0.05),
    "mistral/codestral-latest": _e(0.30, 0.90, 128000, 128000),
    "groq/openai/gpt-oss-120b": _e(0.15, 0.60, 131072, 65536, 0.075),
    "groq/openai/gpt-oss-20b": _e(0.075, 0.30, 131072, 65536),
    "command-a-03-2025": _e(2.50, 10.00, 256000, 8000),
    "command-r-plus-08-2024": _e(2.50, 10.00, 128000, 4096),
    "command-r-08-2024": _e(0.15, 0.60, 128000, 4096),
    "command-r7b-12-2024": _e(0.0375, 0.15, 128000, 4096),
    "deepseek/deepseek-chat": _e(0.28, 0.42, 131072, 8192),
    "whisper-1": _per_second(0.0001),
    "gpt-4o-transcribe": PriceEntry(2.50, 10.00, 16000, 2000, per_minute=0.006),
    "gpt-4o-mini-transcribe": PriceEntry(1.25, 5.00, 16000, 2000, per_minute=0.003),
    "groq/whisper-large-v3": _per_second(3.083e-05),
    "groq/whisper-large-v3-turbo": _per_second(1.111e-05),
    # --- litellm 1.75.0 (since removed; kept for models still in use) -----------------------
    "groq/llama-3.3-70b-versatile": _e(0.59, 0.79, 128000, 32768),
    "groq/llama-3.1-8b-instant": _e(0.05, 0.08, 128000, 8192),
    "groq/meta-llama/llama-4-scout-17b-16e-instruct": _e(0.11, 0.34, 131072, 8192),
    "claude-sonnet-4-20250514": _claude(3.00, 15.00, 200000, 64000),
    "claude-3-5-haiku-20241022": _claude(0.80, 4.00, 200000, 8192),
    "gemini/gemini-2.0-flash": _e(0.10, 0.40, 1048576, 8192),
    "openrouter/openai/gpt-4o": _e(2.50, 10.00, 128000, 4096),
})

# LiteLLM key prefix of each OpenAI-compatible preset that has its own entries.
_PRESET_PREFIX = {"mistral": "mistral/", "groq": "groq/", "openrouter": "openrouter/", "deepseek": "deepseek/"}
_HOST_PRESET = {
    "api.mistral.ai": "mistral",
    "api.groq.com": "groq",
    "openrouter.ai": "openrouter",
    "api.deepseek.com": "deepseek",
}
_TYPE_PREFIX = {"gemini": "gemini/", "openai": "", "anthropic": "", "cohere": ""}
_FREE_PRESETS = ("ollama-openai", "llamacpp", "vllm", "lmstudio")
# `-20251001` (Anthropic), `-2024-07-18` (OpenAI); Cohere's `-03-2025` is part of the key.
_DATE_SUFFIX = re.compile(r"-(\d{8}|\d{4}-\d{2}-\d{2})$")


def price_source_label() -> str:
    """The ledger's `price_source` for a price taken from this table."""
    return f"builtin:{PRICE_TABLE_DATE}"


def known_models() -> Mapping[str, PriceEntry]:
    """The whole table, read-only (for `llmroute models` and tests)."""
    return _TABLE


def _preset_of(preset: str | None, base_url: str | None) -> str | None:
    if preset:
        return preset
    if base_url:
        host = (urlsplit(base_url).hostname or "").lower()
        return _HOST_PRESET.get(host)
    return None


def _candidates(model: str, prefix: str) -> list[str]:
    """Keys to try, most specific first: as given, prefixed, then without a date suffix."""
    names = [model]
    undated = _DATE_SUFFIX.sub("", model)
    if undated != model:
        names.append(undated)
    keys = []
    for name in names:
        if prefix and not name.startswith(prefix):
            keys.append(prefix + name)
        keys.append(name)
    return keys


@functools.lru_cache(maxsize=4096)
def lookup_price(
    provider_type: str, model: str, base_url: str | None = None, preset: str | None = None
) -> PriceEntry | None:
    """The built-in price of `model` on a provider of `provider_type`, or None if unknown.

    Only what runs on the user's own hardware is free: the `ollama`, `local` and `mock` types
    and the keyless local-server presets (llama.cpp, vLLM, LM Studio, Ollama's /v1), named by
    `preset` (pass the provider's effective preset, `presets.preset_for`). A local base URL is
    no proof of a free model: a LiteLLM proxy or company gateway on localhost forwards
    `gpt-4o-mini` to OpenAI, which charges for it. So an unnamed OpenAI-compatible server, on
    loopback or not, is priced by model name as OpenAI's table has it, then without a `vendor/`
    prefix (LiteLLM-style `openai/gpt-4o`); a name the table does not know has no price.
    An OpenAI-compatible provider is priced as the service its preset name or base URL names
    (Mistral, Groq, OpenRouter, DeepSeek); on OpenRouter, a `vendor/model` id it has no entry
    for falls back to the vendor's own price, which OpenRouter passes through."""
    if provider_type in LOCAL_TYPES:
        return FREE
    prefix = _TYPE_PREFIX.get(provider_type)
    if prefix is None:
        return None
    service = _preset_of(preset, base_url) if provider_type == "openai" else None
    if service in _FREE_PRESETS:
        return FREE
    if service in _PRESET_PREFIX:
        prefix = _PRESET_PREFIX[service]
    elif service not in (None, "openai"):
        return None  # a compatible service with prices of its own that we do not know
    if provider_type == "gemini":
        model = model.removeprefix("models/")  # the API's own resource-name form
    keys = _candidates(model, prefix)
    if service == "openrouter" and "/" in model:
        bare = model.split("/", 1)[1].split(":", 1)[0]  # drop `:nitro`-style variants
        keys += [bare, bare.replace(".", "-")]  # OpenRouter spells claude-haiku-4-5 as 4.5
    elif provider_type == "openai" and service is None and base_url and "/" in model:
        keys += _candidates(model.split("/", 1)[1], "")  # a gateway's `openai/gpt-4o`
    if prefix:
        keys = [k for k in keys if k.startswith(prefix) or service == "openrouter"]
    return next((_TABLE[k] for k in keys if k in _TABLE), None)


@functools.lru_cache(maxsize=4096)
def lookup_context(
    provider_type: str, model: str, base_url: str | None = None, preset: str | None = None
) -> int | None:
    """The context window of `model` from the table, or None if unknown.

    Unlike its price, a model's window does not depend on who serves it: `gpt-4o-mini` on a
    vLLM server (priced free above) or behind any OpenAI-compatible base URL still holds 128k
    tokens, and the planner needs that to filter an over-long prompt instead of sending it.
    So after the provider's own entry, the model name is looked up as its format's own
    service would price it, then without a `vendor/` prefix (LiteLLM-style gateway ids).
    Local formats (Ollama, local, mock) name their own models and are not looked up."""
    entry = lookup_price(provider_type, model, base_url, preset)
    if entry is not None and entry.context:
        return entry.context
    if provider_type not in _TYPE_PREFIX:
        return None
    names = [model] + ([model.split("/", 1)[1]] if "/" in model else [])
    for name in names:
        entry = lookup_price(provider_type, name)
        if entry is not None and entry.context:
            return entry.context
    return None
