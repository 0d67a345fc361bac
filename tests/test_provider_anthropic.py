"""Anthropic wire format: hand-written cassettes replayed with vcrpy, plus MockTransport tests
that pin the exact request and each error/stream edge case."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import httpx
import pytest
import vcr

from llmroute.config.model import ProviderConfig
from llmroute.errors import ErrorClass, ProviderError
from llmroute.providers import create_provider
from llmroute.providers.anthropic import AnthropicStreamParser, classify
from llmroute.types import Message, RateLimitInfo, Request, Usage

CASSETTES = Path(__file__).resolve().parent.parent / "cassettes" / "anthropic"
NOW = datetime(2025, 8, 21, 12, 40, 0, tzinfo=timezone.utc).timestamp()
KEY = "sk-ant-test-0123456789"
REQUEST = Request(messages=(Message("user", "Hi"),), system="Be brief.", max_tokens=64, temperature=0.2)
MODEL = "claude-haiku-4-5"

replay = vcr.VCR(
    cassette_library_dir=str(CASSETTES),
    record_mode="none",
    match_on=("method", "uri", "body"),
    filter_headers=("x-api-key", "authorization"),
)


def make(client: httpx.Client | None = None, **config) -> object:
    provider = create_provider(
        ProviderConfig(name="anthropic", type="anthropic", **config),
        key=KEY, client=client or httpx.Client(),
    )
    provider.now = lambda: NOW
    return provider


def mock(handler, **config):
    return make(httpx.Client(transport=httpx.MockTransport(handler)), **config)


def sse(*events: tuple[str, dict]) -> bytes:
    return "".join(f"event: {name}\ndata: {json.dumps(data)}\n\n" for name, data in events).encode()


# --- cassettes -------------------------------------------------------------------------------


def test_complete_from_cassette():
    with replay.use_cassette("non_stream.yaml") as cassette:
        result = make().complete(REQUEST, MODEL, timeout=10)
    assert cassette.play_count == 1
    assert result.text == "Hello!"
    assert result.usage == Usage(12, 4)
    assert result.finish_reason == "end_turn"
    assert result.rate_limits == RateLimitInfo(1000, 999, 59.0, 80000, 79984, 30.0)


def test_stream_from_cassette():
    with replay.use_cassette("stream.yaml"):
        chunks = list(make().stream(REQUEST, MODEL, timeout=10))
    assert "".join(c.text for c in chunks) == "Hello!"
    assert chunks[-1].usage == Usage(12, 4)
    assert chunks[-1].finish_reason == "end_turn"


def test_rate_limit_from_cassette():
    with replay.use_cassette("rate_limit.yaml"), pytest.raises(ProviderError) as info:
        make().complete(REQUEST, MODEL, timeout=10)
    error = info.value
    assert error.error_class is ErrorClass.RATE_LIMITED
    assert error.http_status == 429
    assert error.retry_after_s == 20.0
    assert error.rate_limits.remaining_tokens == 0
    assert error.rate_limits.reset_tokens_s == 20.0
    assert error.rate_limits.reset_requests_s == 59.0


def test_bad_key_from_cassette():
    with replay.use_cassette("bad_key.yaml"), pytest.raises(ProviderError) as info:
        make().complete(REQUEST, MODEL, timeout=10)
    assert info.value.error_class is ErrorClass.AUTH
    assert "invalid x-api-key" in info.value.message


def test_overloaded_from_cassette():
    with replay.use_cassette("server_error.yaml"), pytest.raises(ProviderError) as info:
        make().complete(REQUEST, MODEL, timeout=10)
    assert info.value.error_class is ErrorClass.OVERLOADED
    assert info.value.http_status == 529


def test_midstream_error_from_cassette_keeps_partial_text():
    seen = []
    with replay.use_cassette("midstream_error.yaml"), pytest.raises(ProviderError) as info:
        for chunk in make().stream(REQUEST, MODEL, timeout=10):
            seen.append(chunk.text)
    assert seen == ["Hel"]
    assert info.value.error_class is ErrorClass.OVERLOADED
    assert info.value.partial_text == "Hel"


def test_probe_from_cassette():
    with replay.use_cassette("models.yaml"):
        ids = make().probe(timeout=10)
    assert ids == ["claude-haiku-4-5-20251001", "claude-sonnet-4-5-20250929"]


# --- exact request ---------------------------------------------------------------------------


def test_request_url_headers_and_body():
    seen = {}

    def handler(request: httpx.Request) -> httpx.Response:
        seen["request"] = request
        return httpx.Response(200, json={"type": "message", "content": [{"type": "text", "text": "ok"}],
                                         "stop_reason": "end_turn"})

    mock(handler, headers={"anthropic-beta": "x"}).complete(REQUEST, MODEL, timeout=5)
    request = seen["request"]
    assert request.method == "POST"
    assert str(request.url) == "https://api.anthropic.com/v1/messages"
    assert request.headers["x-api-key"] == KEY
    assert request.headers["anthropic-version"] == "2023-06-01"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["anthropic-beta"] == "x"
    assert "authorization" not in request.headers
    assert json.loads(request.content) == {
        "model": MODEL, "max_tokens": 64, "system": "Be brief.", "temperature": 0.2,
        "messages": [{"role": "user", "content": "Hi"}],
    }


def test_body_omits_unset_temperature_and_system_and_honours_base_url():
    seen = {}

    def handler(request):
        seen["url"], seen["body"] = str(request.url), json.loads(request.content)
        return httpx.Response(200, json={"content": [{"type": "text", "text": "ok"}], "stop_reason": "end_turn"})

    request = Request(messages=(Message("user", "a"), Message("assistant", "b"), Message("user", "c")), max_tokens=10)
    mock(handler, base_url="https://proxy.example/anthropic/").complete(request, MODEL, timeout=5)
    assert seen["url"] == "https://proxy.example/anthropic/v1/messages"
    assert seen["body"] == {
        "model": MODEL, "max_tokens": 10,
        "messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},
                     {"role": "user", "content": "c"}],
    }


def test_stream_request_sets_stream_true():
    seen = {}

    def handler(request):
        seen["body"] = json.loads(request.content)
        return httpx.Response(200, content=sse(
            ("content_block_delta", {"type": "content_block_delta", "delta": {"type": "text_delta", "text": "ok"}}),
            ("message_stop", {"type": "message_stop"})))

    list(mock(handler).stream(REQUEST, MODEL, timeout=5))
    assert seen["body"]["stream"] is True


def test_text_concatenates_only_text_blocks():
    body = {"content": [{"type": "thinking", "thinking": "hmm"}, {"type": "text", "text": "A"},
                        {"type": "tool_use", "id": "t", "name": "f", "input": {}},
                        {"type": "text", "text": "B"}],
            "usage": {"input_tokens": 3, "output_tokens": 2}, "stop_reason": "max_tokens"}
    result = mock(lambda r: httpx.Response(200, json=body)).complete(REQUEST, MODEL, timeout=5)
    assert (result.text, result.usage, result.finish_reason) == ("AB", Usage(3, 2), "max_tokens")


def test_unexpected_shape_is_malformed():
    with pytest.raises(ProviderError) as info:
        mock(lambda r: httpx.Response(200, json={"id": "x"})).complete(REQUEST, MODEL, timeout=5)
    assert info.value.error_class is ErrorClass.MALFORMED


# --- error classification --------------------------------------------------------------------


@pytest.mark.parametrize(
    "status, error_type, message, expected",
    [
        (529, "overloaded_error", "Overloaded", ErrorClass.OVERLOADED),
        (429, "rate_limit_error", "slow down", ErrorClass.RATE_LIMITED),
        (401, "authentication_error", "invalid x-api-key", ErrorClass.AUTH),
        (403, "permission_error", "no", ErrorClass.AUTH),
        (402, "billing_error", "credit balance too low", ErrorClass.AUTH),
        (404, "not_found_error", "model: x", ErrorClass.NOT_FOUND),
        (400, "invalid_request_error", "prompt is too long: 208000 tokens > 200000 maximum", ErrorClass.CONTEXT_LENGTH),
        (400, "invalid_request_error", "max_tokens: Field required", ErrorClass.BAD_REQUEST),
        (413, "request_too_large", "Request exceeds the maximum allowed number of bytes.", ErrorClass.CONTEXT_LENGTH),
        (500, "api_error", "Internal server error", ErrorClass.SERVER_ERROR),
        (504, "timeout_error", "Request timed out", ErrorClass.TIMEOUT),
        (503, "", "", ErrorClass.OVERLOADED),
        (503, "api_error", "Service Unavailable", ErrorClass.OVERLOADED),
        (503, "overloaded_error", "Overloaded", ErrorClass.OVERLOADED),
        (529, "api_error", "Overloaded", ErrorClass.OVERLOADED),
        (502, "", "", ErrorClass.SERVER_ERROR),
        (409, "", "", ErrorClass.BAD_REQUEST),
    ],
)
def test_error_classes(status, error_type, message, expected):
    body = {"type": "error", "error": {"type": error_type, "message": message}} if error_type else {}
    with pytest.raises(ProviderError) as info:
        mock(lambda r: httpx.Response(status, json=body)).complete(REQUEST, MODEL, timeout=5)
    assert info.value.error_class is expected
    assert info.value.http_status == status


@pytest.mark.parametrize("body", [{"type": "error", "error": {"type": "api_error", "message": "Service Unavailable"}},
                                  "<html>503 Service Temporarily Unavailable</html>"])
def test_503_is_overloaded_buffered_and_streamed(body):
    def handler(request):
        if isinstance(body, dict):
            return httpx.Response(503, json=body)
        return httpx.Response(503, text=body)

    with pytest.raises(ProviderError) as buffered:
        mock(handler).complete(REQUEST, MODEL, timeout=5)
    with pytest.raises(ProviderError) as streamed:
        list(mock(handler).stream(REQUEST, MODEL, timeout=5))
    assert buffered.value.error_class is streamed.value.error_class is ErrorClass.OVERLOADED
    assert buffered.value.http_status == streamed.value.http_status == 503


@pytest.mark.parametrize("content", [[], [{"type": "text", "text": ""}], [{"type": "thinking", "thinking": "hm"}]])
def test_answer_without_text_is_empty(content):
    body = {"type": "message", "content": content, "stop_reason": "end_turn",
            "usage": {"input_tokens": 5, "output_tokens": 0}}
    with pytest.raises(ProviderError) as info:
        mock(lambda r: httpx.Response(200, json=body)).complete(REQUEST, MODEL, timeout=5)
    assert info.value.error_class is ErrorClass.EMPTY and "end_turn" in info.value.message


def test_stream_without_text_is_empty():
    body = sse(
        ("message_start", {"type": "message_start", "message": {"usage": {"input_tokens": 5, "output_tokens": 1}}}),
        ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        ("ping", {"type": "ping"}),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 0}}),
        ("message_stop", {"type": "message_stop"}),
    )
    provider = mock(lambda r: httpx.Response(200, content=body, headers={"content-type": "text/event-stream"}))
    with pytest.raises(ProviderError) as info:
        list(provider.stream(REQUEST, MODEL, timeout=5))
    assert info.value.error_class is ErrorClass.EMPTY


def test_non_json_error_body_and_key_redaction():
    body = f"<html>bad gateway for key {KEY}</html>"
    with pytest.raises(ProviderError) as info:
        mock(lambda r: httpx.Response(502, text=body)).complete(REQUEST, MODEL, timeout=5)
    assert info.value.error_class is ErrorClass.SERVER_ERROR
    assert KEY not in info.value.message
    assert "bad gateway" in info.value.message


def test_retry_after_http_date_uses_injected_clock():
    headers = {"retry-after": "Thu, 21 Aug 2025 12:40:07 GMT"}
    body = {"type": "error", "error": {"type": "rate_limit_error", "message": "x"}}
    with pytest.raises(ProviderError) as info:
        mock(lambda r: httpx.Response(429, json=body, headers=headers)).complete(REQUEST, MODEL, timeout=5)
    assert info.value.retry_after_s == 7.0


def test_no_rate_limit_headers_means_none():
    body = {"content": [{"type": "text", "text": "x"}], "stop_reason": "end_turn"}
    result = mock(lambda r: httpx.Response(200, json=body)).complete(REQUEST, MODEL, timeout=5)
    assert result.rate_limits is None


def test_classify_in_stream_without_status():
    assert classify(None, "overloaded_error", "") is ErrorClass.OVERLOADED
    assert classify(None, "something_new", "") is ErrorClass.SERVER_ERROR


# --- stream parser ---------------------------------------------------------------------------


def _parser():
    return AnthropicStreamParser(lambda text: text.replace(KEY, "[REDACTED]"))


def test_stream_without_message_stop_is_malformed():
    parser = _parser()
    chunks = parser.feed(sse(
        ("message_start", {"type": "message_start", "message": {"usage": {"input_tokens": 5}}}),
        ("content_block_delta", {"type": "content_block_delta", "delta": {"type": "text_delta", "text": "Hi"}}),
    ))
    assert [c.text for c in chunks] == ["Hi"]
    with pytest.raises(ProviderError) as info:
        parser.close()
    assert info.value.error_class is ErrorClass.MALFORMED
    assert info.value.partial_text == "Hi"


def test_stream_parser_handles_byte_by_byte_feeding_and_ignores_other_deltas():
    body = sse(
        ("message_start", {"type": "message_start", "message": {"usage": {"input_tokens": 7, "output_tokens": 1}}}),
        ("content_block_delta", {"type": "content_block_delta", "delta": {"type": "thinking_delta", "thinking": "x"}}),
        ("content_block_delta", {"type": "content_block_delta", "delta": {"type": "text_delta", "text": "é!"}}),
        ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "max_tokens"}, "usage": {"output_tokens": 9}}),
        ("message_stop", {"type": "message_stop"}),
    )
    parser = _parser()
    chunks = [c for i in range(len(body)) for c in parser.feed(body[i:i + 1])] + parser.close()
    assert "".join(c.text for c in chunks) == "é!"
    assert chunks[-1].usage == Usage(7, 9)
    assert chunks[-1].finish_reason == "max_tokens"


def test_stream_unparseable_event_is_malformed():
    parser = _parser()
    with pytest.raises(ProviderError) as info:
        parser.feed(b"event: content_block_delta\ndata: {not json\n\n")
    assert info.value.error_class is ErrorClass.MALFORMED


def test_stream_error_event_is_classified_and_redacted():
    parser = _parser()
    with pytest.raises(ProviderError) as info:
        parser.feed(sse(("error", {"type": "error", "error": {"type": "rate_limit_error", "message": f"k={KEY}"}})))
    assert info.value.error_class is ErrorClass.RATE_LIMITED
    assert KEY not in info.value.message


def test_stream_http_error_before_body_is_classified():
    body = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    with pytest.raises(ProviderError) as info:
        list(mock(lambda r: httpx.Response(529, json=body)).stream(REQUEST, MODEL, timeout=5))
    assert info.value.error_class is ErrorClass.OVERLOADED


# --- async, probe, transport -----------------------------------------------------------------


def test_acomplete_uses_async_client():
    import asyncio

    async def handler(request):
        assert request.headers["x-api-key"] == KEY
        return httpx.Response(200, json={"content": [{"type": "text", "text": "async!"}],
                                         "usage": {"input_tokens": 1, "output_tokens": 2}, "stop_reason": "end_turn"})

    async def run():
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as aclient:
            provider = create_provider(ProviderConfig(name="anthropic", type="anthropic"), key=KEY, aclient=aclient)
            return await provider.acomplete(REQUEST, MODEL, timeout=5)

    result = asyncio.run(run())
    assert (result.text, result.usage) == ("async!", Usage(1, 2))


def test_probe_request_and_auth_failure():
    seen = {}

    def handler(request):
        seen["url"], seen["headers"] = str(request.url), request.headers
        return httpx.Response(401, json={"type": "error", "error": {"type": "authentication_error", "message": "no"}})

    with pytest.raises(ProviderError) as info:
        mock(handler).probe(timeout=5)
    assert info.value.error_class is ErrorClass.AUTH
    assert seen["url"] == "https://api.anthropic.com/v1/models"
    assert seen["headers"]["anthropic-version"] == "2023-06-01"
    assert seen["headers"]["x-api-key"] == KEY


def test_requires_key_and_refuses_plain_http_to_public_host():
    provider = mock(lambda r: httpx.Response(200), base_url="http://anthropic.example.com")
    assert provider.needs_key()
    with pytest.raises(ProviderError) as info:
        provider.complete(REQUEST, MODEL, timeout=5)
    assert info.value.error_class is ErrorClass.AUTH


def test_cassettes_hold_no_credentials():
    import yaml

    paths = sorted(CASSETTES.glob("*.yaml"))
    assert len(paths) >= 6
    for path in paths:
        for interaction in yaml.safe_load(path.read_text())["interactions"]:
            request = interaction["request"]
            sent = {name.lower() for name in request["headers"]}
            assert not sent & {"x-api-key", "x-goog-api-key", "authorization"}, path.name
            assert "key=" not in request["uri"], path.name
