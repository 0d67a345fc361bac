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
    assert chunks[-1] == Chunk(usage=Usage(194, 2, "provider"), finish_reason="stop", provider_cost_usd=0.00095)


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


# --- request building -------------------------------------------------------------------------


def test_request_json_and_headers_exact():
    recorder = Recorder(body=OK_BODY)
    p = provider(client=recorder.client(), headers={"OpenAI-Organization": "org-1"})
    request = Request(messages=(Message("user", "Hi"), Message("assistant", "Yo"), Message("user", "More")),
                      system="Be brief.", max_tokens=64, temperature=0.0)
    p.complete(request, "gpt-4o-mini", timeout=5)
    sent = recorder.requests[0]
    assert sent.method == "POST" and str(sent.url) == "https://api.openai.com/v1/chat/completions"
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    assert sent.headers["content-type"] == "application/json"
    assert sent.headers["openai-organization"] == "org-1"
    assert recorder.json == {
        "model": "gpt-4o-mini",
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
                     {"role": "assistant", "content": "Yo"}, {"role": "user", "content": "More"}],
        "max_completion_tokens": 64,
        "temperature": 0.0,
    }


def test_no_key_no_authorization_and_no_temperature_when_none():
    recorder = Recorder(body=OK_BODY)
    provider("vllm", key=None, client=recorder.client()).complete(HI, "m", timeout=5)
    sent = recorder.requests[0]
    assert "authorization" not in sent.headers
    assert str(sent.url) == "http://localhost:8000/v1/chat/completions"
    assert recorder.json == {"model": "m", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 64}


@pytest.mark.parametrize(
    "name, fields, url, field, stream_options",
    [
        ("openai", {}, "https://api.openai.com/v1", "max_completion_tokens", True),
        ("groq", {}, "https://api.groq.com/openai/v1", "max_completion_tokens", True),
        ("mistral", {}, "https://api.mistral.ai/v1", "max_tokens", False),
        ("openrouter", {}, "https://openrouter.ai/api/v1", "max_tokens", True),
        ("work", {"preset": "mistral"}, "https://api.mistral.ai/v1", "max_tokens", False),
        ("work", {"base_url": "https://llm.example.org/v1/"}, "https://llm.example.org/v1", "max_tokens", True),
        ("groq", {"base_url": "https://proxy.example.org/groq"}, "https://proxy.example.org/groq",
         "max_completion_tokens", True),
        ("anything", {}, "https://api.openai.com/v1", "max_tokens", True),
    ],
)
def test_presets_shape_the_stream_request(name, fields, url, field, stream_options):
    p = provider(name, **fields)
    call = p.build_call(HI, "m", stream=True)
    assert call.url == f"{url}/chat/completions"
    assert call.json[field] == 64 and call.json["stream"] is True
    assert ("stream_options" in call.json) is stream_options
    if stream_options:
        assert call.json["stream_options"] == {"include_usage": True}
    assert "stream" not in p.build_call(HI, "m", stream=False).json


@pytest.mark.parametrize(
    "name, fields, needs",
    [
        ("openai", {}, True), ("groq", {}, True), ("llamacpp", {}, False), ("lmstudio", {}, False),
        ("box", {"preset": "ollama-openai"}, False), ("box", {"base_url": "http://127.0.0.1:9000/v1"}, False),
        ("box", {"base_url": "http://localhost:9000/v1"}, False), ("box", {"base_url": "https://x.org/v1"}, True),
        ("vllm", {"key_env": "VLLM_KEY"}, True), ("box", {}, True),
    ],
)
def test_needs_key_is_per_instance(name, fields, needs):
    assert provider(name, key=None, **fields).needs_key() is needs


# --- responses ----------------------------------------------------------------------------------


def test_openrouter_cost():
    body = {"choices": [{"message": {"role": "assistant", "content": "Hi"}, "finish_reason": "length"}],
            "usage": {"prompt_tokens": 194, "completion_tokens": 2, "cost": 0.00095}}
    result = provider("openrouter", client=Recorder(body=body).client()).complete(HI, "m", timeout=5)
    assert result.text == "Hi" and result.finish_reason == "length"
    assert result.provider_cost_usd == 0.00095 and result.usage == Usage(194, 2, "provider")
    assert result.rate_limits is None


@pytest.mark.parametrize("name", ["openai", "openrouter", "mistral", "groq", "llamacpp"])
@pytest.mark.parametrize(
    "body",
    [
        {"choices": [{"message": {"role": "assistant", "content": None}, "finish_reason": "length"}],
         "usage": {"prompt_tokens": 194, "completion_tokens": 2}},
        {"choices": [{"message": {"role": "assistant", "content": ""}, "finish_reason": "stop"}]},
        {"choices": [{"message": {"role": "assistant", "content": " \n "}, "finish_reason": "stop"}]},
        {"choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 0}},
    ],
)
def test_buffered_answer_without_text_is_empty(name, body):
    with pytest.raises(ProviderError) as info:
        provider(name, client=Recorder(body=body).client()).complete(HI, "m", timeout=5)
    assert info.value.error_class is ErrorClass.EMPTY and info.value.http_status == 200
    assert "no text" in info.value.message


def test_empty_answer_names_the_finish_reason():
    body = {"choices": [{"message": {"role": "assistant", "content": None}, "finish_reason": "length"}]}
    with pytest.raises(ProviderError) as info:
        provider(client=Recorder(body=body).client()).complete(HI, "m", timeout=5)
    assert info.value.message == "openai answered with no text (finish reason length)"


def test_async_answer_without_text_is_empty():
    body = {"choices": [{"message": {"role": "assistant", "content": ""}, "finish_reason": "stop"}]}
    aclient = httpx.AsyncClient(transport=httpx.MockTransport(Recorder(body=body)))
    p = create_provider(config(), key=KEY, aclient=aclient)
    with pytest.raises(ProviderError) as info:
        asyncio.run(p.acomplete(HI, "m", timeout=5))
    assert info.value.error_class is ErrorClass.EMPTY


def test_missing_usage_is_none():
    body = {"choices": [{"message": {"content": "x"}, "finish_reason": "stop"}]}
    assert provider(client=Recorder(body=body).client()).complete(HI, "m", timeout=5).usage is None


@pytest.mark.parametrize("body", ["not json", "[1, 2]", "{\"choices\": [{}]", "{\"choices\": 3}"])
def test_unreadable_body_is_malformed(body):
    with pytest.raises(ProviderError) as info:
        provider(client=Recorder(body=body).client()).complete(HI, "m", timeout=5)
    assert info.value.error_class is ErrorClass.MALFORMED


def test_error_object_in_a_200_body_is_classified():
    body = {"error": {"code": 502, "message": "Provider returned error"}}
    with pytest.raises(ProviderError) as info:
        provider("openrouter", client=Recorder(body=body).client()).complete(HI, "m", timeout=5)
    assert info.value.error_class is ErrorClass.SERVER_ERROR and info.value.http_status == 502


def test_openrouter_unknown_model_in_a_200_body_is_not_found():
    body = {"error": {"code": 400, "message": "openai/gpt-9 is not a valid model ID"}, "user_id": "u"}
    with pytest.raises(ProviderError) as info:
        provider("openrouter", client=Recorder(body=body).client()).complete(HI, "m", timeout=5)
    assert info.value.error_class is ErrorClass.NOT_FOUND and info.value.http_status == 400


def test_mistral_rate_limit_headers():
    headers = {"x-ratelimit-limit-req-minute": "720", "x-ratelimit-remaining-req-minute": "717",
               "x-ratelimit-limit-tokens-minute": "5000000", "x-ratelimit-remaining-tokens-minute": "4999911",
               "x-ratelimit-tokens-query-cost": "52"}
    limits = provider("mistral").rate_limits(httpx.Headers(headers))
    assert (limits.limit_requests, limits.remaining_requests) == (720, 717)
    assert (limits.limit_tokens, limits.remaining_tokens) == (5000000, 4999911)
    assert limits.reset_requests_s is None and limits.reset_tokens_s is None


def test_no_rate_limit_headers_is_none():
    assert provider().rate_limits(httpx.Headers({"x-request-id": "r"})) is None
    assert provider().rate_limits(httpx.Headers({"x-ratelimit-reset-tokens": "garbage"})) is None


# --- streams ------------------------------------------------------------------------------------


def sse(*events: str) -> str:
    return "".join(f"data: {e}\n\n" for e in events)


def chunk(content=None, finish=None, **extra) -> str:
    delta = {} if content is None else {"content": content}
    return json.dumps({"choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra})


def run_stream(body: str, name="openai", **kwargs):
    p = provider(name, client=Recorder(body=body, headers={"content-type": "text/event-stream"}).client(), **kwargs)
    return list(p.stream(HI, "m", timeout=5))


@pytest.mark.parametrize("size", [1, 7, 50])
def test_stream_parser_any_chunk_boundary(size):
    body = (CASSETTES / "chat_stream_usage.yaml").read_text()
    text = yaml.safe_load(body)["interactions"][0]["response"]["body"]["string"].replace("\n", "\r\n")
    raw = text.encode("utf-8")
    parser = provider().stream_parser()
    chunks = []
    for start in range(0, len(raw), size):
        chunks += parser.feed(raw[start : start + size])
    chunks += parser.close()
    assert "".join(c.text for c in chunks) == "Hello!"
    assert chunks[-1] == Chunk(usage=Usage(9, 2, "provider"), finish_reason="stop")


def test_stream_parser_reassembles_split_utf8():
    raw = sse(chunk("héllo 🌍"), chunk(None, "stop"), "[DONE]").encode("utf-8")
    parser = provider().stream_parser()
    chunks = [c for i in range(len(raw)) for c in parser.feed(raw[i : i + 1])] + parser.close()
    assert "".join(c.text for c in chunks) == "héllo 🌍"


def test_stream_groq_x_groq_usage_only():
    usage = {"prompt_tokens": 40, "completion_tokens": 3, "total_tokens": 43}
    body = sse(chunk("Hi"), chunk(None, "stop", x_groq={"id": "req_1", "usage": usage}), "[DONE]")
    chunks = run_stream(body, "groq")
    assert chunks[-1] == Chunk(usage=Usage(40, 3, "provider"), finish_reason="stop")


def test_stream_mistral_usage_on_last_content_chunk():
    usage = {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}
    body = sse(chunk("A", usage=None), chunk("B", "stop", usage=usage), "[DONE]")
    chunks = run_stream(body, "mistral")
    assert [c.text for c in chunks] == ["A", "B", ""]
    assert chunks[-1].usage == Usage(5, 2, "provider")


def test_stream_without_usage_ends_with_finish_only():
    chunks = run_stream(sse(chunk("A"), chunk(None, "length"), "[DONE]"), "mistral")
    assert chunks[-1] == Chunk(usage=None, finish_reason="length")


def test_stream_with_finish_but_no_done_is_accepted():
    chunks = run_stream(sse(chunk("A"), chunk(None, "stop")))
    assert chunks[-1].finish_reason == "stop"


def test_stream_ended_early_is_malformed():
    with pytest.raises(ProviderError) as info:
        run_stream(sse(chunk("Hal")))
    assert info.value.error_class is ErrorClass.MALFORMED
    assert "ended early" in info.value.message and info.value.partial_text == "Hal"


def test_stream_unparseable_event_is_malformed():
    with pytest.raises(ProviderError) as info:
        run_stream(sse(chunk("A"), "{oops", "[DONE]"))
    assert info.value.error_class is ErrorClass.MALFORMED


@pytest.mark.parametrize("name", ["openai", "mistral", "groq", "openrouter"])
@pytest.mark.parametrize(
    "body",
    [
        sse(chunk(""), chunk(None, "stop"), "[DONE]"),
        sse(chunk(None, "length", usage={"prompt_tokens": 5, "completion_tokens": 0}), "[DONE]"),
        sse(chunk("  "), chunk("\n", "stop"), "[DONE]"),
    ],
)
def test_stream_without_text_is_empty_at_its_end(name, body):
    p = provider(name, client=Recorder(body=body, headers={"content-type": "text/event-stream"}).client())
    seen = []
    with pytest.raises(ProviderError) as info:
        for piece in p.stream(HI, "m", timeout=5):
            seen.append(piece)
    assert info.value.error_class is ErrorClass.EMPTY
    assert seen and seen[-1].finish_reason in ("stop", "length")  # the whole stream was read first


def test_stream_events_after_done_are_ignored():
    chunks = run_stream(sse(chunk("A", "stop"), "[DONE]", "{garbage"))
    assert [c.text for c in chunks] == ["A", ""]


@pytest.mark.parametrize(
    "error, cls",
    [
        ({"message": "The server had an error", "type": "server_error", "code": None}, ErrorClass.SERVER_ERROR),
        ({"message": "Rate limit reached", "type": "tokens", "code": "rate_limit_exceeded"}, ErrorClass.RATE_LIMITED),
        ({"code": 429, "message": "slow down"}, ErrorClass.RATE_LIMITED),
        ({"code": 503, "message": "no provider"}, ErrorClass.OVERLOADED),
    ],
)
def test_stream_error_event_is_classified(error, cls):
    with pytest.raises(ProviderError) as info:
        run_stream(sse(chunk("A"), json.dumps({"error": error}), "[DONE]"), "groq")
    assert info.value.error_class is cls and info.value.partial_text == "A"


def test_stream_http_error_before_body_is_classified():
    recorder = Recorder(status=503, body={"error": {"message": "The server is overloaded or not ready yet."}})
    with pytest.raises(ProviderError) as info:
        list(provider(client=recorder.client()).stream(HI, "m", timeout=5))
    assert info.value.error_class is ErrorClass.OVERLOADED


def test_stream_error_echoing_the_key_is_redacted():
    body = sse(json.dumps({"error": {"message": f"bad key {KEY}", "type": "authentication_error"}}))
    with pytest.raises(ProviderError) as info:
        run_stream(body)
    assert KEY not in info.value.message and "[REDACTED]" in info.value.message
    assert info.value.error_class is ErrorClass.AUTH


# --- errors ---------------------------------------------------------------------------------------


def err(message, code=None, kind=None):
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


@pytest.mark.parametrize(
    "status, body, cls",
    [
        (429, err("Rate limit reached", "rate_limit_exceeded", "requests"), ErrorClass.RATE_LIMITED),
        (503, err("The server is overloaded or not ready yet.", None, "server_error"), ErrorClass.OVERLOADED),
        (529, "overloaded", ErrorClass.OVERLOADED),
        (500, err("The server had an error"), ErrorClass.SERVER_ERROR),
        (502, {"error": {"code": 502, "message": "Provider returned error"}}, ErrorClass.SERVER_ERROR),
        (504, "<html>gateway timeout</html>", ErrorClass.SERVER_ERROR),
        (401, err("Invalid API Key", "invalid_api_key", "invalid_request_error"), ErrorClass.AUTH),
        (401, {"message": "Unauthorized", "request_id": "c61f"}, ErrorClass.AUTH),
        (401, {"detail": "Unauthorized"}, ErrorClass.AUTH),
        (403, err("Country, region, or territory not supported", "unsupported_country_region_territory",
                  "request_forbidden"), ErrorClass.AUTH),
        (404, err("The model `gpt-9` does not exist", "model_not_found"), ErrorClass.NOT_FOUND),
        (400, err("This model's maximum context length is 128000 tokens.", None, "invalid_request_error"),
         ErrorClass.CONTEXT_LENGTH),
        (400, err("too long", "context_length_exceeded"), ErrorClass.CONTEXT_LENGTH),
        (400, {"error": {"message": "foo/bar-9 is not a valid model ID", "code": 400},
               "user_id": "user_2x7D"}, ErrorClass.NOT_FOUND),
        (400, {"object": "error", "message": "Invalid model: mistral-huge-latest", "type": "invalid_model",
               "param": None, "code": "1500"}, ErrorClass.NOT_FOUND),
        (400, {"object": "error", "message": "Invalid model parameter: temperature",
               "type": "invalid_request_error", "param": None, "code": None}, ErrorClass.BAD_REQUEST),
        (400, {"object": "error", "message": "Assistant message must have either content or tool_calls",
               "type": "invalid_request_error", "param": None, "code": None}, ErrorClass.BAD_REQUEST),
        (422, {"detail": [{"loc": ["body", "x"], "msg": "Extra inputs are not permitted",
                           "type": "extra_forbidden"}]}, ErrorClass.BAD_REQUEST),
        (413, err("Request too large for model llama-3.1-8b-instant on tokens per minute (TPM)",
                  "rate_limit_exceeded", "tokens"), ErrorClass.RATE_LIMITED),
        (413, err("Maximum content size limit (26214400) exceeded", None, "server_error"),
         ErrorClass.CONTEXT_LENGTH),
        (408, {"error": {"code": 408, "message": "timed out"}}, ErrorClass.TIMEOUT),
        (402, {"error": {"code": 402, "message": "Insufficient credits"}}, ErrorClass.AUTH),
        (409, "conflict", ErrorClass.SERVER_ERROR),
        (418, "teapot", ErrorClass.BAD_REQUEST),
    ],
)
def test_error_classes(status, body, cls):
    recorder = Recorder(status=status, body=body)
    with pytest.raises(ProviderError) as info:
        provider(client=recorder.client()).complete(HI, "m", timeout=5)
    assert info.value.error_class is cls
    assert info.value.http_status == status


@pytest.mark.parametrize(
    "body, expected",
    [
        ({"message": "Requests rate limit exceeded"}, "Requests rate limit exceeded"),
        ({"detail": [{"msg": "a"}, {"msg": "b"}]}, "a; b"),
        ({"error": {"code": 429}}, "error code 429"),
        ({"error": "plain string"}, "plain string"),
        ("", "(empty body)"),
    ],
)
def test_error_message_extraction(body, expected):
    with pytest.raises(ProviderError) as info:
        provider(client=Recorder(status=429, body=body).client()).complete(HI, "m", timeout=5)
    assert info.value.message == expected


def test_error_message_is_trimmed():
    with pytest.raises(ProviderError) as info:
        provider(client=Recorder(status=400, body=err("x" * 5000)).client()).complete(HI, "m", timeout=5)
    assert len(info.value.message) <= 300


def test_402_message_says_credits():
    body = {"error": {"code": 402, "message": "Insufficient credits"}}
    with pytest.raises(ProviderError) as info:
        provider(client=Recorder(status=402, body=body).client()).complete(HI, "m", timeout=5)
    assert "insufficient credits" in info.value.message.lower()


def test_insufficient_quota_has_no_retry_after():
    body = err("You exceeded your current quota", "insufficient_quota", "insufficient_quota")
    recorder = Recorder(status=429, body=body, headers={"retry-after": "20"})
    with pytest.raises(ProviderError) as info:
        provider(client=recorder.client()).complete(HI, "m", timeout=5)
    assert info.value.error_class is ErrorClass.RATE_LIMITED
    assert info.value.retry_after_s is None and "quota exhausted" in info.value.message


def test_retry_after_ms_and_http_date():
    recorder = Recorder(status=429, body=err("slow"), headers={"retry-after-ms": "250", "retry-after": "9"})
    with pytest.raises(ProviderError) as info:
        provider(client=recorder.client()).complete(HI, "m", timeout=5)
    assert info.value.retry_after_s == 0.25
    recorder = Recorder(status=503, body="", headers={"retry-after": "Wed, 01 Jan 2025 00:00:30 GMT"})
    p = provider(client=recorder.client())
    p.wall_clock = lambda: 1_735_689_600.0
    with pytest.raises(ProviderError) as info:
        p.complete(HI, "m", timeout=5)
    assert info.value.retry_after_s == 30.0


def test_key_echoed_in_error_body_is_redacted():
    recorder = Recorder(status=401, body=err(f"Incorrect API key provided: {KEY}.", "invalid_api_key"))
    with pytest.raises(ProviderError) as info:
        provider(client=recorder.client()).complete(HI, "m", timeout=5)
    assert KEY not in info.value.message and KEY not in str(info.value)
    assert "[REDACTED]" in info.value.message


def test_custom_header_secret_echoed_is_redacted():
    secret = "hdr-secret-value-123"
    recorder = Recorder(status=400, body=err(f"bad header {secret}"))
    with pytest.raises(ProviderError) as info:
        provider(client=recorder.client(), headers={"X-Api-Token": secret}).complete(HI, "m", timeout=5)
    assert secret not in info.value.message


# --- key transport -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "base_url, allow_insecure, allowed",
    [
        ("https://api.example.com/v1", False, True),
        ("http://127.0.0.1:8080/v1", False, True),
        ("http://localhost:8080/v1", False, True),
        ("http://10.0.0.5:8000/v1", False, True),
        ("http://192.168.1.20/v1", False, True),
        ("http://example.com/v1", False, False),
        ("http://8.8.8.8/v1", False, False),
        ("http://example.com/v1", True, True),
    ],
)
def test_key_transport(base_url, allow_insecure, allowed):
    recorder = Recorder(body=OK_BODY)
    p = provider("box", client=recorder.client(), base_url=base_url, allow_insecure=allow_insecure)
    if allowed:
        assert p.complete(HI, "m", timeout=5).text == "Hello!"
    else:
        with pytest.raises(ProviderError) as info:
            p.complete(HI, "m", timeout=5)
        assert info.value.error_class is ErrorClass.AUTH and "allow_insecure" in info.value.message
        assert recorder.requests == []
        with pytest.raises(ProviderError):
            list(p.stream(HI, "m", timeout=5))
        assert recorder.requests == []


def test_plain_http_public_host_without_key_is_fine():
    recorder = Recorder(body=OK_BODY)
    provider("box", key=None, client=recorder.client(), base_url="http://example.com/v1").complete(HI, "m", timeout=5)
    assert len(recorder.requests) == 1


# --- transport failures, probe, async -------------------------------------------------------------


def test_connection_error_is_classified():
    def refuse(request):
        raise httpx.ConnectError("connection refused")

    p = provider(client=httpx.Client(transport=httpx.MockTransport(refuse)))
    with pytest.raises(ProviderError) as info:
        p.complete(HI, "m", timeout=5)
    assert info.value.error_class is ErrorClass.CONNECTION


def test_probe_sends_get_models_with_auth():
    recorder = Recorder(body={"object": "list", "data": [{"id": "a"}, {"id": "b"}]})
    assert provider("groq", client=recorder.client()).probe(timeout=5) == ["a", "b"]
    sent = recorder.requests[0]
    assert sent.method == "GET" and str(sent.url) == "https://api.groq.com/openai/v1/models"
    assert sent.headers["authorization"] == f"Bearer {KEY}"


def test_probe_auth_failure():
    recorder = Recorder(status=401, body=err("Invalid API Key", "invalid_api_key"))
    with pytest.raises(ProviderError) as info:
        provider(client=recorder.client()).probe(timeout=5)
    assert info.value.error_class is ErrorClass.AUTH


def test_acomplete_with_async_client():
    recorder = Recorder(body=OK_BODY, headers={"x-ratelimit-remaining-requests": "5"})
    aclient = httpx.AsyncClient(transport=httpx.MockTransport(recorder))
    p = create_provider(config("groq"), key=KEY, aclient=aclient)

    async def go():
        async with aclient:
            return await p.acomplete(HI, "llama", timeout=5)

    result = asyncio.run(go())
    assert result.text == "Hello!" and result.usage == Usage(9, 2, "provider")
    assert result.rate_limits.remaining_requests == 5
    assert recorder.json["max_completion_tokens"] == 64
    assert recorder.requests[0].headers["authorization"] == f"Bearer {KEY}"


def test_acomplete_error_is_classified():
    recorder = Recorder(status=404, body=err("The model `x` does not exist", "model_not_found"))
    aclient = httpx.AsyncClient(transport=httpx.MockTransport(recorder))
    p = create_provider(config(), key=KEY, aclient=aclient)
    with pytest.raises(ProviderError) as info:
        asyncio.run(p.acomplete(HI, "x", timeout=5))
    assert info.value.error_class is ErrorClass.NOT_FOUND


# --- transcription --------------------------------------------------------------------------------


@pytest.fixture
def audio(tmp_path) -> Path:
    path = tmp_path / "clip.mp3"
    path.write_bytes(b"ID3fake-mp3-bytes")
    return path


def form_fields(request: httpx.Request) -> str:
    return request.content.decode("latin-1")


def test_transcribe_json_with_token_usage(audio):
    body = {"text": "Hello world.", "usage": {"type": "tokens", "input_tokens": 14, "output_tokens": 4,
                                              "total_tokens": 18}}
    recorder = Recorder(body=body)
    result = provider(client=recorder.client()).transcribe(
        audio, "gpt-4o-mini-transcribe", language="en", response_format="json", timeout=5)
    assert (result.text, result.duration_s, result.usage) == ("Hello world.", None, Usage(14, 4, "provider"))
    assert isinstance(result, TranscriptionResult) and json.loads(result.raw) == body
    sent = recorder.requests[0]
    assert str(sent.url) == "https://api.openai.com/v1/audio/transcriptions"
    assert sent.headers["content-type"].startswith("multipart/form-data; boundary=")
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    form = form_fields(sent)
    for name, value in [("model", "gpt-4o-mini-transcribe"), ("language", "en"), ("response_format", "json")]:
        assert f'name="{name}"\r\n\r\n{value}\r\n' in form
    assert 'name="file"; filename="clip.mp3"' in form and "Content-Type: audio/mpeg" in form
    assert "ID3fake-mp3-bytes" in form


def test_transcribe_json_duration_usage_and_no_language(audio):
    recorder = Recorder(body={"text": "Hi.", "usage": {"type": "duration", "seconds": 3.2}})
    result = provider("groq", client=recorder.client()).transcribe(
        audio, "whisper-large-v3", language=None, response_format="json", timeout=5)
    assert result.text == "Hi." and result.duration_s == 3.2 and result.usage is None
    assert 'name="language"' not in form_fields(recorder.requests[0])
    assert str(recorder.requests[0].url) == "https://api.groq.com/openai/v1/audio/transcriptions"


def test_transcribe_verbose_json_duration(audio):
    body = {"task": "transcribe", "duration": 4.5, "text": "Hello.", "segments": []}
    result = provider(client=Recorder(body=body).client()).transcribe(
        audio, "whisper-1", language=None, response_format="verbose_json", timeout=5)
    assert result.text == "Hello." and result.duration_s == 4.5


@pytest.mark.parametrize(
    "fmt, raw, text",
    [
        ("text", "Hello world.\n", "Hello world."),
        ("srt", "1\n00:00:00,000 --> 00:00:01,000\nHello\n\n", "1\n00:00:00,000 --> 00:00:01,000\nHello\n\n"),
        ("vtt", "WEBVTT\n\n00:00.000 --> 00:01.000\nHello\n", "WEBVTT\n\n00:00.000 --> 00:01.000\nHello\n"),
    ],
)
def test_transcribe_raw_formats(audio, fmt, raw, text):
    recorder = Recorder(body=raw, headers={"content-type": "text/plain"})
    result = provider(client=recorder.client()).transcribe(audio, "whisper-1", language=None,
                                                          response_format=fmt, timeout=5)
    assert result.text == text and result.raw == raw and result.usage is None
    assert f'name="response_format"\r\n\r\n{fmt}\r\n' in form_fields(recorder.requests[0])


def test_transcribe_413_is_bad_request_file_too_large(audio):
    body = err("Maximum content size limit (26214400) exceeded (26306794 bytes read)", None, "server_error")
    with pytest.raises(ProviderError) as info:
        provider(client=Recorder(status=413, body=body).client()).transcribe(
            audio, "whisper-1", language=None, response_format="json", timeout=5)
    assert info.value.error_class is ErrorClass.BAD_REQUEST and info.value.http_status == 413
    assert "file too large" in info.value.message


def test_transcribe_other_errors_and_bad_json(audio):
    with pytest.raises(ProviderError) as info:
        provider(client=Recorder(status=401, body=err("bad key", "invalid_api_key")).client()).transcribe(
            audio, "whisper-1", language=None, response_format="json", timeout=5)
    assert info.value.error_class is ErrorClass.AUTH
    with pytest.raises(ProviderError) as info:
        provider(client=Recorder(body="not json").client()).transcribe(
            audio, "whisper-1", language=None, response_format="json", timeout=5)
    assert info.value.error_class is ErrorClass.MALFORMED


def test_stream_finish_reason_error_without_error_object():
    with pytest.raises(ProviderError) as info:
        run_stream(sse(chunk("A"), chunk(None, "error")), "openrouter")
    assert info.value.error_class is ErrorClass.SERVER_ERROR and info.value.partial_text == "A"
