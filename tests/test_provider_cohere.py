"""Cohere v2 format: hand-written cassettes replayed with vcrpy, plus MockTransport tests for
the exact request, billed-unit usage, named-event stream edges and error mapping."""

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
from llmroute.providers.cohere import CohereStreamParser
from llmroute.types import Message, RateLimitInfo, Request, Usage

CASSETTES = Path(__file__).resolve().parent.parent / "cassettes" / "cohere"
NOW = datetime(2025, 8, 21, 12, 40, 0, tzinfo=timezone.utc).timestamp()  # 1755780000
KEY = "co-test-0123456789abcdef"
REQUEST = Request(messages=(Message("user", "Hi"),), system="Be brief.", max_tokens=64, temperature=0.2)
MODEL = "command-a-03-2025"

replay = vcr.VCR(
    cassette_library_dir=str(CASSETTES),
    record_mode="none",
    match_on=("method", "uri", "body"),
    filter_headers=("authorization",),
)


def make(client: httpx.Client | None = None, **config):
    provider = create_provider(ProviderConfig(name="cohere", type="cohere", **config), key=KEY, client=client or httpx.Client())
    provider.now = lambda: NOW
    return provider


def mock(handler, **config):
    return make(httpx.Client(transport=httpx.MockTransport(handler)), **config)


def sse(*payloads: dict, done: bool = False) -> bytes:
    text = "".join(f"event: {p['type']}\ndata: {json.dumps(p)}\n\n" for p in payloads)
    return (text + ("data: [DONE]\n\n" if done else "")).encode()


def delta(text: str) -> dict:
    return {"type": "content-delta", "index": 0, "delta": {"message": {"content": {"text": text}}}}


def end(finish: str = "COMPLETE", usage: dict | None = None) -> dict:
    return {"type": "message-end", "delta": {"finish_reason": finish, "usage": usage or {}}}


# --- cassettes -------------------------------------------------------------------------------


def test_complete_from_cassette_uses_billed_units():
    with replay.use_cassette("non_stream.yaml") as cassette:
        result = make().complete(REQUEST, MODEL, timeout=10)
    assert cassette.play_count == 1
    assert (result.text, result.usage, result.finish_reason) == ("Hello!", Usage(5, 3), "COMPLETE")
    assert result.rate_limits == RateLimitInfo(reset_requests_s=30.0)


def test_stream_from_cassette_tolerates_done_and_unknown_events():
    with replay.use_cassette("stream.yaml"):
        chunks = list(make().stream(REQUEST, MODEL, timeout=10))
    assert [c.text for c in chunks if c.text] == ["Hel", "lo!"]
    assert chunks[-1].usage == Usage(5, 3)
    assert chunks[-1].finish_reason == "COMPLETE"


def test_rate_limit_from_cassette_falls_back_to_reset_epoch():
    with replay.use_cassette("rate_limit.yaml"), pytest.raises(ProviderError) as info:
        make().complete(REQUEST, MODEL, timeout=10)
    assert info.value.error_class is ErrorClass.RATE_LIMITED
    assert info.value.retry_after_s == 30.0
    assert info.value.rate_limits == RateLimitInfo(reset_requests_s=30.0)


def test_bad_key_from_cassette():
    with replay.use_cassette("bad_key.yaml"), pytest.raises(ProviderError) as info:
        make().complete(REQUEST, MODEL, timeout=10)
    assert info.value.error_class is ErrorClass.AUTH
    assert "invalid api token" in info.value.message


def test_server_error_from_cassette():
    with replay.use_cassette("server_error.yaml"), pytest.raises(ProviderError) as info:
        make().complete(REQUEST, MODEL, timeout=10)
    assert info.value.error_class is ErrorClass.SERVER_ERROR
    assert info.value.http_status == 500


def test_midstream_error_finish_from_cassette():
    seen = []
    with replay.use_cassette("midstream_error.yaml"), pytest.raises(ProviderError) as info:
        for chunk in make().stream(REQUEST, MODEL, timeout=10):
            seen.append(chunk.text)
    assert seen == ["Hel"]
    assert info.value.error_class is ErrorClass.SERVER_ERROR
    assert info.value.partial_text == "Hel"


def test_probe_from_cassette():
    with replay.use_cassette("models.yaml"):
        assert make().probe(timeout=10) == ["command-a-03-2025", "command-r7b-12-2024"]


# --- exact request ---------------------------------------------------------------------------


def test_request_url_headers_and_body():
    seen = {}

    def handler(request):
        seen["request"] = request
        return httpx.Response(200, json={"message": {"content": [{"type": "text", "text": "ok"}]},
                                         "finish_reason": "COMPLETE"})

    mock(handler, headers={"X-Client-Name": "llmroute"}).complete(REQUEST, MODEL, timeout=5)
    sent = seen["request"]
    assert str(sent.url) == "https://api.cohere.com/v2/chat"
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    assert sent.headers["x-client-name"] == "llmroute"
    assert sent.headers["content-type"] == "application/json"
    assert json.loads(sent.content) == {
        "model": MODEL, "max_tokens": 64, "temperature": 0.2, "stream": False,
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
    }


def test_stream_body_and_no_system_or_temperature():
    seen = {}

    def handler(request):
        seen["body"] = json.loads(request.content)
        return httpx.Response(200, content=sse(delta("ok"), end()))

    request = Request(messages=(Message("user", "a"), Message("assistant", "b"), Message("user", "c")), max_tokens=7)
    list(mock(handler).stream(request, MODEL, timeout=5))
    assert seen["body"] == {
        "model": MODEL, "max_tokens": 7, "stream": True,
        "messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},
                     {"role": "user", "content": "c"}],
    }


@pytest.mark.parametrize("content", [[], [{"type": "text", "text": ""}], [{"type": "thinking", "thinking": "hm"}]])
def test_answer_without_text_is_empty(content):
    body = {"message": {"role": "assistant", "content": content}, "finish_reason": "COMPLETE",
            "usage": {"billed_units": {"input_tokens": 5, "output_tokens": 0}}}
    with pytest.raises(ProviderError) as info:
        mock(lambda r: httpx.Response(200, json=body)).complete(REQUEST, MODEL, timeout=5)
    assert info.value.error_class is ErrorClass.EMPTY and "COMPLETE" in info.value.message


@pytest.mark.parametrize("events", [(end(),), (delta(""), end()), (delta(" "), end("MAX_TOKENS"))])
def test_stream_without_text_is_empty(events):
    provider = mock(lambda r: httpx.Response(200, content=sse(*events, done=True)))
    with pytest.raises(ProviderError) as info:
        list(provider.stream(REQUEST, MODEL, timeout=5))
    assert info.value.error_class is ErrorClass.EMPTY


def test_usage_falls_back_to_tokens_and_skips_non_text_content():
    body = {"message": {"content": [{"type": "thinking", "thinking": "hm"}, {"type": "text", "text": "A"}]},
            "finish_reason": "MAX_TOKENS", "usage": {"tokens": {"input_tokens": 70, "output_tokens": 2}}}
    result = mock(lambda r: httpx.Response(200, json=body)).complete(REQUEST, MODEL, timeout=5)
    assert (result.text, result.usage, result.finish_reason) == ("A", Usage(70, 2), "MAX_TOKENS")


def test_missing_usage_is_none_and_no_reset_header_means_no_rate_limits():
    body = {"message": {"content": [{"type": "text", "text": "A"}]}, "finish_reason": "COMPLETE"}
    result = mock(lambda r: httpx.Response(200, json=body)).complete(REQUEST, MODEL, timeout=5)
    assert result.usage is None and result.rate_limits is None


def test_error_finish_reason_without_stream_is_server_error():
    body = {"message": {"content": []}, "finish_reason": "ERROR"}
    with pytest.raises(ProviderError) as info:
        mock(lambda r: httpx.Response(200, json=body)).complete(REQUEST, MODEL, timeout=5)
    assert info.value.error_class is ErrorClass.SERVER_ERROR


# --- error classification --------------------------------------------------------------------


@pytest.mark.parametrize(
    "status, message, expected",
    [
        (400, "invalid request: message must not be empty", ErrorClass.BAD_REQUEST),
        (400, "too many tokens: total number of tokens in the prompt cannot exceed 256000", ErrorClass.CONTEXT_LENGTH),
        (401, "invalid api token", ErrorClass.AUTH),
        (402, "Please add a payment method", ErrorClass.AUTH),
        (403, "forbidden", ErrorClass.AUTH),
        (404, "model 'x' not found", ErrorClass.NOT_FOUND),
        (422, "unprocessable", ErrorClass.BAD_REQUEST),
        (429, "slow down", ErrorClass.RATE_LIMITED),
        (498, "invalid token", ErrorClass.AUTH),
        (499, "client closed request", ErrorClass.CONNECTION),
        (500, "internal", ErrorClass.SERVER_ERROR),
        (501, "not implemented", ErrorClass.SERVER_ERROR),
        (503, "unavailable", ErrorClass.OVERLOADED),
        (504, "gateway timeout", ErrorClass.TIMEOUT),
    ],
)
def test_error_classes(status, message, expected):
    with pytest.raises(ProviderError) as info:
        mock(lambda r: httpx.Response(status, json={"message": message})).complete(REQUEST, MODEL, timeout=5)
    assert info.value.error_class is expected
    assert info.value.http_status == status


@pytest.mark.parametrize(
    "headers, expected",
    [
        ({"retry-after-ms": "1500", "retry-after": "9", "x-ratelimit-reset": "1755780030"}, 1.5),
        ({"retry-after": "4", "x-ratelimit-reset": "1755780030"}, 4.0),
        ({"x-ratelimit-reset": "1755779990"}, 0.0),  # already past
        ({}, None),
    ],
)
def test_retry_hint_precedence(headers, expected):
    with pytest.raises(ProviderError) as info:
        mock(lambda r: httpx.Response(429, json={"message": "x"}, headers=headers)).complete(REQUEST, MODEL, timeout=5)
    assert info.value.retry_after_s == expected


def test_non_json_error_body_is_redacted():
    with pytest.raises(ProviderError) as info:
        mock(lambda r: httpx.Response(503, text=f"down {KEY}")).complete(REQUEST, MODEL, timeout=5)
    assert info.value.error_class is ErrorClass.OVERLOADED
    assert KEY not in info.value.message


# --- stream parser ---------------------------------------------------------------------------


def _parse(body: bytes, step: int | None = None):
    parser = CohereStreamParser(lambda t: t)
    step = step or len(body) or 1
    return [c for i in range(0, len(body), step) for c in parser.feed(body[i:i + step])] + parser.close()


def test_stream_byte_by_byte_without_done():
    body = sse({"type": "message-start"}, delta("Hé"), {"type": "tool-plan-delta", "delta": {}},
               {"type": "debug"}, end("MAX_TOKENS", {"billed_units": {"input_tokens": 1, "output_tokens": 2}}))
    chunks = _parse(body, step=1)
    assert "".join(c.text for c in chunks) == "Hé"
    assert (chunks[-1].usage, chunks[-1].finish_reason) == (Usage(1, 2), "MAX_TOKENS")


def test_stream_without_message_end_is_malformed_even_with_done():
    with pytest.raises(ProviderError) as info:
        _parse(sse(delta("par"), done=True))
    assert info.value.error_class is ErrorClass.MALFORMED
    assert info.value.partial_text == "par"


def test_stream_timeout_finish_is_timeout():
    with pytest.raises(ProviderError) as info:
        _parse(sse(delta("x"), end("TIMEOUT")))
    assert info.value.error_class is ErrorClass.TIMEOUT


def test_stream_bare_error_event_is_server_error():
    with pytest.raises(ProviderError) as info:
        _parse(b'data: {"message":"internal error"}\n\n')
    assert info.value.error_class is ErrorClass.SERVER_ERROR


def test_stream_unparseable_event_is_malformed():
    with pytest.raises(ProviderError) as info:
        _parse(b"event: content-delta\ndata: {oops\n\n")
    assert info.value.error_class is ErrorClass.MALFORMED


def test_stream_http_error_is_classified():
    with pytest.raises(ProviderError) as info:
        list(mock(lambda r: httpx.Response(401, json={"message": "invalid api token"})).stream(REQUEST, MODEL, timeout=5))
    assert info.value.error_class is ErrorClass.AUTH


def test_probe_request():
    seen = {}

    def handler(request):
        seen["request"] = request
        return httpx.Response(200, json={"models": [{"name": "command-r-08-2024"}], "next_page_token": None})

    assert mock(handler).probe(timeout=5) == ["command-r-08-2024"]
    assert str(seen["request"].url) == "https://api.cohere.com/v1/models?endpoint=chat"
    assert seen["request"].headers["authorization"] == f"Bearer {KEY}"


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
