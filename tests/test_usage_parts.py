"""Usage parts (issue 20, SPEC §2.2 and §5): every format's cached input, cache writes and
reasoning tokens, read buffered and streamed from bodies as reference/providers.md documents
them; each part priced at its own rate, long-context tiers across their threshold, the ledger
fields, the report's cached-input column and savings, and a budget that settles below its
reservation when the provider's cache served the prompt."""

from __future__ import annotations

import json
from datetime import date

import httpx
import pytest

from llmroute.budget.guard import BudgetGuard
from llmroute.catalog.costs import (
    Price, cache_saving_rate, charge, cost_usd, price_for, usage_cost, worst_case_cost,
)
from llmroute.config.load import parse_config
from llmroute.config.model import ProviderConfig
from llmroute.engine import AskOptions, Engine
from llmroute.errors import ConfigError
from llmroute.keys import KeyStore
from llmroute.ledger.records import build_record
from llmroute.paths import Paths
from llmroute.providers import create_provider
from llmroute.types import Attempt, Message, Request, Result, Target, Usage

from .support import read_ledger

HI = Request(messages=(Message("user", "Hi"),), max_tokens=64)


def _provider(type_: str, body: bytes | dict, *, name: str | None = None, headers=None, **fields):
    def handler(request: httpx.Request) -> httpx.Response:
        if isinstance(body, dict):
            return httpx.Response(200, json=body)
        return httpx.Response(200, content=body, headers=headers or {"content-type": "text/event-stream"})

    config = ProviderConfig(name=name or type_, type=type_, **fields)
    provider = create_provider(config, key="test-key-0123456789",
                               client=httpx.Client(transport=httpx.MockTransport(handler)))
    if hasattr(provider, "now"):
        provider.now = lambda: 1_755_780_000.0
    return provider


def _data(*payloads: dict, done: bool = True) -> bytes:
    text = "".join(f"data: {json.dumps(p)}\n\n" for p in payloads)
    return (text + ("data: [DONE]\n\n" if done else "")).encode()


def _events(*payloads: dict) -> bytes:
    return "".join(f"event: {p['type']}\ndata: {json.dumps(p)}\n\n" for p in payloads).encode()


def _stream_usage(provider, model: str) -> Usage:
    chunks = list(provider.stream(HI, model, timeout=10))
    return [c.usage for c in chunks if c.usage][-1]


# --- OpenAI, Groq, Mistral, OpenRouter --------------------------------------------------------

OPENAI_USAGE = {"prompt_tokens": 2100, "completion_tokens": 300, "total_tokens": 2400,
                "prompt_tokens_details": {"cached_tokens": 2048, "audio_tokens": 0},
                "completion_tokens_details": {"reasoning_tokens": 128, "audio_tokens": 0,
                                              "accepted_prediction_tokens": 0,
                                              "rejected_prediction_tokens": 0}}
OPENAI_PARTS = Usage(2100, 300, "provider", cached_input_tokens=2048, reasoning_tokens=128)


def test_openai_buffered_reads_cached_and_reasoning_tokens():
    body = {"id": "chatcmpl-abc", "object": "chat.completion", "created": 1735689600, "model": "gpt-5-mini",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello!", "refusal": None},
                         "logprobs": None, "finish_reason": "stop"}],
            "usage": OPENAI_USAGE, "service_tier": "default", "system_fingerprint": "fp_01"}
    assert _provider("openai", body).complete(HI, "gpt-5-mini", timeout=10).usage == OPENAI_PARTS


def test_openai_stream_reads_the_parts_from_the_usage_chunk():
    base = {"id": "c1", "object": "chat.completion.chunk", "created": 1735689600, "model": "gpt-5-mini"}
    body = _data(
        {**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}], "usage": None},
        {**base, "choices": [{"index": 0, "delta": {"content": "Hello!"}, "finish_reason": None}], "usage": None},
        {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}], "usage": None},
        {**base, "choices": [], "usage": OPENAI_USAGE})
    assert _stream_usage(_provider("openai", body), "gpt-5-mini") == OPENAI_PARTS


def test_mistral_stream_reads_the_parts_from_the_finish_chunk():
    base = {"id": "cmpl-1", "object": "chat.completion.chunk", "created": 1702256327, "model": "mistral-small-latest"}
    body = _data(
        {**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hello!"}, "finish_reason": None}]},
        {**base, "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": "stop"}],
         "usage": {"prompt_tokens": 900, "completion_tokens": 3, "total_tokens": 903,
                   "prompt_tokens_details": {"cached_tokens": 640}}})
    usage = _stream_usage(_provider("openai", body, name="mistral", preset="mistral"), "mistral-small-latest")
    assert usage == Usage(900, 3, "provider", cached_input_tokens=640)


def test_groq_stream_reads_the_parts_from_x_groq_usage():
    base = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "openai/gpt-oss-120b"}
    usage = {"prompt_tokens": 500, "completion_tokens": 40, "total_tokens": 540, "queue_time": 0.01,
             "prompt_tokens_details": {"cached_tokens": 256}, "completion_tokens_details": {"reasoning_tokens": 30}}
    body = _data(
        {**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hi"}, "finish_reason": None}],
         "x_groq": {"id": "req_01"}},
        {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
         "x_groq": {"id": "req_01", "usage": usage}})
    assert _stream_usage(_provider("openai", body, name="groq", preset="groq"), "openai/gpt-oss-120b") == \
        Usage(500, 40, "provider", cached_input_tokens=256, reasoning_tokens=30)


OPENROUTER_USAGE = {"prompt_tokens": 194, "completion_tokens": 2, "total_tokens": 196, "cost": 0.00095,
                    "is_byok": False, "prompt_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 100},
                    "completion_tokens_details": {"reasoning_tokens": 0},
                    "cost_details": {"upstream_inference_cost": None}}


def test_openrouter_buffered_reads_cache_writes_and_its_cost_still_wins():
    body = {"id": "gen-1", "provider": "Anthropic", "model": "anthropic/claude-haiku-4.5",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi"}, "finish_reason": "stop"}],
            "usage": OPENROUTER_USAGE}
    result = _provider("openai", body, name="openrouter", preset="openrouter").complete(
        HI, "anthropic/claude-haiku-4.5", timeout=10)
    assert result.usage == Usage(194, 2, "provider", cache_write_tokens=100)
    config = parse_config("version: 1\nproviders:\n  openrouter:\n    type: openai\n    preset: openrouter\n"
                          "    models: [anthropic/claude-haiku-4.5]\n")
    usage, cost, source = charge(config, Target("openrouter", "anthropic/claude-haiku-4.5"), "Hi", result)
    assert (cost, source) == (0.00095, "provider")


def test_openrouter_stream_reads_cache_writes_from_the_final_chunk():
    base = {"id": "gen-1", "object": "chat.completion.chunk", "created": 1, "model": "anthropic/claude-haiku-4.5"}
    body = (b": OPENROUTER PROCESSING\n\n" + _data(
        {**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hi"}, "finish_reason": None}]},
        {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}], "usage": OPENROUTER_USAGE}))
    provider = _provider("openai", body, name="openrouter", preset="openrouter")
    chunks = list(provider.stream(HI, "anthropic/claude-haiku-4.5", timeout=10))
    assert chunks[-1].usage == Usage(194, 2, "provider", cache_write_tokens=100)
    assert chunks[-1].provider_cost_usd == 0.00095


# --- Anthropic --------------------------------------------------------------------------------

ANTHROPIC_PARTS = Usage(2512, 40, "provider", cached_input_tokens=2000, cache_write_tokens=500)


def test_anthropic_buffered_adds_cache_reads_and_writes_to_the_input():
    body = {"id": "msg_01AbC", "type": "message", "role": "assistant", "model": "claude-haiku-4-5-20251001",
            "content": [{"type": "text", "text": "Hello!"}], "stop_reason": "end_turn", "stop_sequence": None,
            "usage": {"input_tokens": 12, "output_tokens": 40, "cache_creation_input_tokens": 500,
                      "cache_read_input_tokens": 2000, "service_tier": "standard"}}
    assert _provider("anthropic", body).complete(HI, "claude-haiku-4-5", timeout=10).usage == ANTHROPIC_PARTS


def _anthropic_stream(delta_usage: dict) -> bytes:
    return _events(
        {"type": "message_start", "message": {
            "id": "msg_01AbC", "type": "message", "role": "assistant", "model": "claude-haiku-4-5-20251001",
            "content": [], "stop_reason": None, "stop_sequence": None,
            "usage": {"input_tokens": 12, "output_tokens": 1, "cache_creation_input_tokens": 500,
                      "cache_read_input_tokens": 2000}}},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "ping"},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hello!"}},
        {"type": "content_block_stop", "index": 0},
        {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None}, "usage": delta_usage},
        {"type": "message_stop"})


@pytest.mark.parametrize("delta_usage", [
    {"output_tokens": 40},  # the documented minimum: the final output count only
    {"input_tokens": 12, "output_tokens": 40, "cache_creation_input_tokens": 500,
     "cache_read_input_tokens": 2000},  # input and cache fields repeated, not added twice
], ids=["output-only", "repeats-input"])
def test_anthropic_stream_takes_cache_fields_from_message_start(delta_usage):
    assert _stream_usage(_provider("anthropic", _anthropic_stream(delta_usage)), "claude-haiku-4-5") == ANTHROPIC_PARTS


# --- Gemini -----------------------------------------------------------------------------------

GEMINI_USAGE = {"promptTokenCount": 3000, "cachedContentTokenCount": 2048, "candidatesTokenCount": 30,
                "thoughtsTokenCount": 200, "totalTokenCount": 3230,
                "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 3000}],
                "cacheTokensDetails": [{"modality": "TEXT", "tokenCount": 2048}]}
# Thoughts are billed as output but not inside candidatesTokenCount: output = 30 + 200.
GEMINI_PARTS = Usage(3000, 230, "provider", cached_input_tokens=2048, reasoning_tokens=200)


def test_gemini_buffered_reads_cached_content_and_thoughts():
    body = {"candidates": [{"content": {"role": "model", "parts": [{"text": "Hello!"}]}, "finishReason": "STOP",
                            "index": 0}],
            "usageMetadata": GEMINI_USAGE, "modelVersion": "gemini-2.5-flash", "responseId": "mUxxaIaF"}
    assert _provider("gemini", body).complete(HI, "gemini-2.5-flash", timeout=10).usage == GEMINI_PARTS


def test_gemini_stream_reads_the_parts_from_the_last_chunk():
    body = _data(
        {"candidates": [{"content": {"role": "model", "parts": [{"text": "Hel"}]}, "index": 0}],
         "usageMetadata": {"promptTokenCount": 3000, "totalTokenCount": 3000},
         "modelVersion": "gemini-2.5-flash", "responseId": "r1"},
        {"candidates": [{"content": {"role": "model", "parts": [{"text": "lo!"}]}, "finishReason": "STOP", "index": 0}],
         "usageMetadata": GEMINI_USAGE, "modelVersion": "gemini-2.5-flash", "responseId": "r1"}, done=False)
    assert _stream_usage(_provider("gemini", body), "gemini-2.5-flash") == GEMINI_PARTS


# --- Cohere -----------------------------------------------------------------------------------


def test_cohere_buffered_keeps_billed_units_and_cached_tokens():
    body = {"id": "c14c80c3", "finish_reason": "COMPLETE",
            "message": {"role": "assistant", "content": [{"type": "text", "text": "Hello!"}]},
            "usage": {"billed_units": {"input_tokens": 500, "output_tokens": 3},
                      "tokens": {"input_tokens": 566, "output_tokens": 3}, "cached_tokens": 448}}
    usage = _provider("cohere", body).complete(HI, "command-a-03-2025", timeout=10).usage
    assert usage == Usage(500, 3, "provider", cached_input_tokens=448)


def test_cohere_stream_reads_the_parts_from_message_end():
    body = _events(
        {"type": "message-start", "id": "c14c80c3",
         "delta": {"message": {"role": "assistant", "content": [], "tool_plan": "", "tool_calls": [], "citations": []}}},
        {"type": "content-start", "index": 0, "delta": {"message": {"content": {"type": "text", "text": ""}}}},
        {"type": "content-delta", "index": 0, "delta": {"message": {"content": {"text": "Hello!"}}}},
        {"type": "content-end", "index": 0},
        {"type": "message-end", "delta": {"finish_reason": "COMPLETE", "usage": {
            "billed_units": {"input_tokens": 5, "output_tokens": 3}, "tokens": {"input_tokens": 71, "output_tokens": 3},
            "cached_tokens": 64}}}) + b"data: [DONE]\n\n"
    # The cached count is never more than the billed input it is part of.
    assert _stream_usage(_provider("cohere", body), "command-a-03-2025") == Usage(5, 3, "provider", cached_input_tokens=5)


# --- pricing ----------------------------------------------------------------------------------


def _config(models: str, provider: str = "openai", type_: str = "openai") -> object:
    return parse_config(f"version: 1\nproviders:\n  {provider}:\n    type: {type_}\n    models:\n{models}")


def test_openai_cached_tokens_cost_the_cached_rate_and_reasoning_is_output():
    config = _config("      gpt-5-mini: {}\n")  # builtin: 0.25 in, 0.025 cached, 2.00 out
    usage, cost, source = charge(config, Target("openai", "gpt-5-mini"), "", Result("x", usage=OPENAI_PARTS))
    assert usage == OPENAI_PARTS and source.startswith("builtin:")
    # 52 uncached + 2048 cached input; 300 output of which 128 reasoning, all at the output rate.
    assert cost == pytest.approx((52 * 0.25 + 2048 * 0.025 + 300 * 2.00) / 1e6)


def test_anthropic_cache_writes_and_reads_cost_their_rates():
    config = _config("      claude-haiku-4-5: {}\n", "anthropic", "anthropic")  # 1.00 / 0.10 / 1.25 / 5.00
    _, cost, _ = charge(config, Target("anthropic", "claude-haiku-4-5"), "", Result("x", usage=ANTHROPIC_PARTS))
    assert cost == pytest.approx((12 * 1.00 + 2000 * 0.10 + 500 * 1.25 + 40 * 5.00) / 1e6)


def test_config_part_rates_override_the_table():
    config = _config("      gpt-4o-mini: {cached_input: 0.05, cache_write: 0.3}\n")
    price = price_for(config, Target("openai", "gpt-4o-mini"))
    assert (price.input, price.cached_input, price.cache_write) == (0.15, 0.05, 0.3)
    assert usage_cost(price, Usage(1000, 0, cached_input_tokens=600, cache_write_tokens=400)) == \
        pytest.approx((600 * 0.05 + 400 * 0.3) / 1e6)


def test_a_config_price_of_its_own_does_not_take_the_tables_cache_discount():
    config = _config("      gpt-4o-mini: {input: 1.0, output: 2.0}\n")
    price = price_for(config, Target("openai", "gpt-4o-mini"))
    assert price.cached_input is None  # the deal priced in the config, not the table's
    assert usage_cost(price, Usage(1000, 0, cached_input_tokens=1000)) == pytest.approx(1000 * 1.0 / 1e6)


def test_unknown_cached_rate_charges_the_full_input_rate():
    price = Price(2.0, 8.0, "config")
    assert cost_usd(price, 1000, 10, cached_input_tokens=900, cache_write_tokens=100) == \
        pytest.approx((1000 * 2.0 + 10 * 8.0) / 1e6)


def test_gemini_pro_tier_prices_the_whole_call_above_200k_prompt_tokens():
    config = _config("      gemini-2.5-pro: {}\n", "gemini", "gemini")
    price = price_for(config, Target("gemini", "gemini-2.5-pro"))
    at = usage_cost(price, Usage(200_000, 1000))
    above = usage_cost(price, Usage(200_001, 1000))
    assert at == pytest.approx((200_000 * 1.25 + 1000 * 10.00) / 1e6)
    assert above == pytest.approx((200_001 * 2.50 + 1000 * 15.00) / 1e6)
    # Cached tokens above the tier cost the cached rate scaled like the input rate (0.125 -> 0.25).
    cached = usage_cost(price, Usage(300_000, 0, cached_input_tokens=100_000))
    assert cached == pytest.approx((200_000 * 2.50 + 100_000 * 0.25) / 1e6)


def test_worst_case_uses_the_tier_above_the_threshold_and_no_cache():
    price = Price(1.0, 2.0, "config", cached_input=0.1, tier_tokens=1000, input_above=3.0, output_above=5.0)
    assert worst_case_cost(price, 1000, 100) == pytest.approx((1000 * 1.0 + 100 * 2.0) / 1e6)
    assert worst_case_cost(price, 1001, 100) == pytest.approx((1001 * 3.0 + 100 * 5.0) / 1e6)


def test_config_tier_keys_are_read_and_need_tier_tokens():
    config = _config("      m: {input: 1, output: 2, tier_tokens: 128000, input_above: 2, output_above: 4}\n")
    price = price_for(config, Target("openai", "m"))
    assert (price.tier_tokens, price.input_above, price.output_above) == (128000, 2.0, 4.0)
    with pytest.raises(ConfigError, match="input_above needs tier_tokens"):
        _config("      m: {input: 1, output: 2, input_above: 2}\n")


def test_cache_saving_rate_is_input_minus_cached_rate_or_unknown():
    config = _config("      gpt-4o-mini: {}\n      custom: {input: 1, output: 1}\n")
    assert cache_saving_rate(config, "openai/gpt-4o-mini") == pytest.approx(0.15 - 0.075)
    assert cache_saving_rate(config, "openai/custom") is None


# --- ledger -----------------------------------------------------------------------------------


def test_ledger_records_carry_the_parts_and_zero_without_usage():
    attempt = Attempt(target=Target("openai", "gpt-5-mini"), attempt=1, status="ok", latency_ms=5,
                      usage=OPENAI_PARTS, cost_usd=0.001, price_source="config")
    record = build_record(ts="2026-01-01T00:00:00.000Z", request_id="r", kind="ask", attempt=attempt,
                          route=None, strategy=None, tags=(), prompt_hash="h")
    assert (record["cached_input_tokens"], record["cache_write_tokens"], record["reasoning_tokens"]) == (2048, 0, 128)
    failed = Attempt(target=Target("openai", "gpt-5-mini"), attempt=1, status="error", latency_ms=5, error="timeout")
    record = build_record(ts="2026-01-01T00:00:00.000Z", request_id="r", kind="ask", attempt=failed,
                          route=None, strategy=None, tags=(), prompt_hash="h")
    assert (record["cached_input_tokens"], record["cache_write_tokens"], record["reasoning_tokens"]) == (0, 0, 0)


# --- budget: settled below the reservation when the cache served the prompt -------------------


class _Watched(BudgetGuard):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.reserved: list[float] = []
        self.settled: list[float] = []

    def reserve(self, target, provider, usd, tokens):
        self.reserved.append(usd)
        return super().reserve(target, provider, usd, tokens)

    def settle(self, handle, cost_usd, tokens):
        self.settled.append(cost_usd)
        super().settle(handle, cost_usd, tokens)


def test_a_cached_prompt_settles_below_its_reservation(isolated_env):
    prompt = "word " * 400
    config = parse_config(
        "version: 1\ndefaults: {retries: 0}\nproviders:\n  openai:\n    type: openai\n"
        "    models:\n      gpt-4o-mini: {input: 100, output: 1000, cached_input: 10}\n"
        "routes:\n  default: [openai/gpt-4o-mini]\nbudget:\n  daily: 5\n  alert_at: []\n")
    usage = {"prompt_tokens": 1000, "completion_tokens": 5, "total_tokens": 1005,
             "prompt_tokens_details": {"cached_tokens": 900, "audio_tokens": 0},
             "completion_tokens_details": {"reasoning_tokens": 0}}
    body = {"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4o-mini",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "one two three four five"},
                         "finish_reason": "stop"}], "usage": usage}
    client = httpx.Client(transport=httpx.MockTransport(lambda request: httpx.Response(200, json=body)))
    paths = Paths(isolated_env, isolated_env)
    guard = _Watched(config, paths)
    engine = Engine(config, paths=paths, keys=KeyStore({"OPENAI_API_KEY": "sk-test-0123456789"}),
                    client=client, budget=guard)
    answer = engine.ask(Request(messages=(Message("user", prompt),), max_tokens=100), AskOptions())
    expected = (100 * 100 + 900 * 10 + 5 * 1000) / 1e6  # 100 uncached, 900 cached, 5 output
    assert answer.cost_usd == pytest.approx(expected)
    assert guard.settled == [pytest.approx(expected)]
    # The reservation assumed no cache: a full answer plus every estimated prompt token (about
    # 400 for this prompt) at the full input rate.
    assert len(guard.reserved) == 1
    estimated_input = (guard.reserved[0] - 100 * 1000 / 1e6) / (100 / 1e6)
    assert estimated_input == pytest.approx(round(estimated_input)) and estimated_input >= 300
    assert guard.settled[0] < guard.reserved[0]
    assert guard.store.read()["reservations"] == {}
    assert guard.snapshot().states[0].spent == pytest.approx(expected)
    record = read_ledger(isolated_env)[-1]
    assert (record["input_tokens"], record["cached_input_tokens"], record["cost_usd"]) == \
        (1000, 900, pytest.approx(expected))
