"""The OpenAI wire format: requests, responses, streams, errors, rate limits, transcription.

Cassettes in cassettes/openai/ are hand-written from reference/providers.md and replayed with
vcrpy (matching method, URI and JSON body, so the request we send is checked against the
reference); MockTransport tests pin exact headers and every error mapping."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from types import MappingProxyType

import httpx
import pytest
import vcr
import yaml

from llmroute.config.model import ProviderConfig
from llmroute.errors import ErrorClass, ProviderError
from llmroute.providers import create_provider
from llmroute.providers.openai import OpenAIProvider, TranscriptionResult
from llmroute.types import Chunk, Message, Request, Usage

CASSETTES = Path(__file__).resolve().parent.parent / "cassettes" / "openai"
KEY = "sk-test-0123456789abcdef"
HI = Request(messages=(Message("user", "Hi"),), max_tokens=64)

replay = vcr.VCR(
    cassette_library_dir=str(CASSETTES),
    record_mode="none",
    match_on=["method", "uri", "body"],
    filter_headers=["authorization"],
)


def config(name="openai", **fields) -> ProviderConfig:
    for key in ("headers", "options"):
        if key in fields:
            fields[key] = MappingProxyType(fields[key])
    return ProviderConfig(name=name, type="openai", **fields)


def provider(name="openai", key=KEY, client=None, **fields) -> OpenAIProvider:
    return create_provider(config(name, **fields), key=key, client=client)


class Recorder:
    """A MockTransport handler that records requests and returns a canned response."""

    def __init__(self, status=200, body: object = "", headers=None):
        self.status, self.body, self.headers = status, body, headers or {}
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if isinstance(self.body, (dict, list)):
            return httpx.Response(self.status, json=self.body, headers=self.headers)
        content = self.body.encode("utf-8") if isinstance(self.body, str) else self.body
        return httpx.Response(self.status, content=content, headers=self.headers)

    def client(self) -> httpx.Client:
        return httpx.Client(transport=httpx.MockTransport(self))

    @property
    def json(self) -> dict:
        return json.loads(self.requests[-1].content)


OK_BODY = {"choices": [{"message": {"role": "assistant", "content": "Hello!"}, "finish_reason": "stop"}],
           "usage": {"prompt_tokens": 9, "completion_tokens": 2}}


# --- cassette replays -------------------------------------------------------------------------


def test_cassettes_never_store_authorization():
    for path in CASSETTES.glob("*.yaml"):
        for interaction in yaml.safe_load(path.read_text())["interactions"]:
            names = {n.lower() for n in interaction["request"]["headers"]}
            assert "authorization" not in names, path.name


def test_cassette_chat_completion():
    request = Request(messages=(Message("user", "Hi"),), system="Be brief.", max_tokens=64, temperature=0.2)
    with replay.use_cassette("chat_completion.yaml") as cassette, httpx.Client() as client:
        result = provider(client=client).complete(request, "gpt-4o-mini", timeout=10)
        assert cassette.all_played
    assert result.text == "Hello!"
    assert result.usage == Usage(9, 2, "provider")
    assert result.finish_reason == "stop"
    assert result.provider_cost_usd is None
    limits = result.rate_limits
    assert (limits.limit_requests, limits.remaining_requests, limits.reset_requests_s) == (60, 59, 1.0)
    assert (limits.limit_tokens, limits.remaining_tokens, limits.reset_tokens_s) == (150000, 149984, 360.0)


def test_cassette_stream_with_usage_chunk():
    with replay.use_cassette("chat_stream_usage.yaml") as cassette, httpx.Client() as client:
        chunks = list(provider(client=client).stream(HI, "gpt-4o-mini", timeout=10))
        assert cassette.all_played
    assert [c.text for c in chunks if c.text] == ["Hel", "lo!"]
    assert chunks[-1] == Chunk(usage=Usage(9, 2, "provider"), finish_reason="stop")
    assert sum(1 for c in chunks if c.usage) == 1


def test_cassette_groq_stream_usage():
    with replay.use_cassette("groq_stream.yaml") as cassette, httpx.Client() as client:
        chunks = list(provider("groq", client=client).stream(HI, "llama-3.3-70b-versatile", timeout=10))
        assert cassette.all_played
    assert "".join(c.text for c in chunks) == "Hello there"
    assert chunks[-1] == Chunk(usage=Usage(40, 3, "provider"), finish_reason="stop")


def test_cassette_openrouter_stream_skips_comments_and_reads_usage():
    with replay.use_cassette("openrouter_stream.yaml") as cassette, httpx.Client() as client:
        chunks = list(provider("openrouter", client=client).stream(HI, "openai/gpt-4o-mini", timeout=10))
        assert cassette.all_played
    assert "".join(c.text for c in chunks) == "Hi there!"
    assert chunks[-1] == Chunk(usage=Usage(194, 2, "provider"), finish_reason="stop")


def test_cassette_openrouter_mid_stream_error():
    texts = []
    with replay.use_cassette("openrouter_stream_error.yaml"), httpx.Client() as client:
        with pytest.raises(ProviderError) as info:
            for chunk in provider("openrouter", client=client).stream(HI, "openai/gpt-4o-mini", timeout=10):
                texts.append(chunk.text)
    assert texts == ["Partial"]
    error = info.value
    assert error.error_class is ErrorClass.SERVER_ERROR and error.http_status == 502
    assert error.message == "Provider returned error"
    assert error.partial_text == "Partial"


def test_cassette_429():
    with replay.use_cassette("error_429_rate_limit.yaml"), httpx.Client() as client:
        with pytest.raises(ProviderError) as info:
            provider(client=client).complete(HI, "gpt-4o-mini", timeout=10)
    error = info.value
    assert error.error_class is ErrorClass.RATE_LIMITED and error.http_status == 429
    assert error.retry_after_s == 20.0
    assert error.message.startswith("Rate limit reached for gpt-4o-mini")
    assert error.rate_limits.remaining_requests == 0
    assert error.rate_limits.reset_requests_s == 20.0
    assert error.rate_limits.reset_tokens_s == pytest.approx(0.03)


def test_cassette_401():
    with replay.use_cassette("error_401_invalid_key.yaml"), httpx.Client() as client:
        with pytest.raises(ProviderError) as info:
            provider(client=client).complete(HI, "gpt-4o-mini", timeout=10)
    assert info.value.error_class is ErrorClass.AUTH and info.value.http_status == 401
    assert "Incorrect API key provided" in info.value.message


def test_cassette_500():
    with replay.use_cassette("error_500_server_error.yaml"), httpx.Client() as client:
        with pytest.raises(ProviderError) as info:
            provider(client=client).complete(HI, "gpt-4o-mini", timeout=10)
    assert info.value.error_class is ErrorClass.SERVER_ERROR and info.value.http_status == 500
    assert info.value.error_class.retryable


def test_cassette_models_probe():
    with replay.use_cassette("models.yaml") as cassette, httpx.Client() as client:
        assert provider(client=client).probe(timeout=5) == ["gpt-4o-mini", "gpt-4o"]
        assert cassette.all_played


def test_cassette_rejects_a_different_request_body():
    other = Request(messages=(Message("user", "Hello"),), max_tokens=64)
    with replay.use_cassette("chat_completion.yaml"), httpx.Client() as client:
        with pytest.raises(Exception) as info:
            provider(client=client).complete(other, "gpt-4o-mini", timeout=10)
    assert "CannotOverwriteExistingCassette" in type(info.value).__name__ or "cassette" in str(info.value).lower()
