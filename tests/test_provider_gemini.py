"""Gemini wire format: hand-written cassettes replayed with vcrpy, plus MockTransport tests
for the exact request, google.rpc.Status classification and the terminator-less stream."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
import vcr

from llmroute.config.model import ProviderConfig
from llmroute.errors import ErrorClass, ProviderError
from llmroute.providers import create_provider
from llmroute.providers.gemini import GeminiStreamParser, parse_duration
from llmroute.types import Message, Request, Usage

CASSETTES = Path(__file__).resolve().parent.parent / "cassettes" / "gemini"
KEY = "AIzaSy-test-0123456789"
REQUEST = Request(messages=(Message("user", "Hi"),), system="Be brief.", max_tokens=64, temperature=0.2)
MODEL = "gemini-2.5-flash"
BASE = "https://generativelanguage.googleapis.com/v1beta"

replay = vcr.VCR(
    cassette_library_dir=str(CASSETTES),
    record_mode="none",
    match_on=("method", "uri", "body"),
    filter_headers=("x-goog-api-key", "authorization"),
    filter_query_parameters=("key",),
)


def make(client: httpx.Client | None = None, **config):
    return create_provider(ProviderConfig(name="gemini", type="gemini", **config), key=KEY, client=client or httpx.Client())


def mock(handler, **config):
    return make(httpx.Client(transport=httpx.MockTransport(handler)), **config)


def status_body(code: int, status: str, message: str, *details: dict) -> dict:
    return {"error": {"code": code, "message": message, "status": status, "details": list(details)}}


def data_event(text: str, finish: str | None = None, usage: dict | None = None, sep: str = "\n\n") -> str:
    candidate = {"content": {"role": "model", "parts": [{"text": text}]}, "index": 0}
    if finish:
        candidate["finishReason"] = finish
    payload = {"candidates": [candidate]}
    if usage:
        payload["usageMetadata"] = usage
    return f"data: {json.dumps(payload)}{sep}"


# --- cassettes -------------------------------------------------------------------------------


def test_complete_from_cassette_counts_thoughts_as_output():
    with replay.use_cassette("non_stream.yaml") as cassette:
        result = make().complete(REQUEST, MODEL, timeout=10)
    assert cassette.play_count == 1
    assert result.text == "Hello!"
    assert result.usage == Usage(5, 5, reasoning_tokens=2)  # 3 candidates + 2 thoughts
    assert result.finish_reason == "STOP"


def test_stream_from_cassette_with_crlf_separators_and_no_terminator():
    with replay.use_cassette("stream.yaml"):
        chunks = list(make().stream(REQUEST, MODEL, timeout=10))
    assert [c.text for c in chunks if c.text] == ["Hel", "lo!"]
    assert chunks[-1].usage == Usage(5, 3)
    assert chunks[-1].finish_reason == "STOP"


def test_rate_limit_from_cassette_reads_retry_info():
    with replay.use_cassette("rate_limit.yaml"), pytest.raises(ProviderError) as info:
        make().complete(REQUEST, MODEL, timeout=10)
    assert info.value.error_class is ErrorClass.RATE_LIMITED
    assert info.value.retry_after_s == 36.0
    assert info.value.http_status == 429


def test_bad_key_from_cassette_is_auth_not_bad_request():
    with replay.use_cassette("bad_key.yaml"), pytest.raises(ProviderError) as info:
        make().complete(REQUEST, MODEL, timeout=10)
    assert info.value.error_class is ErrorClass.AUTH
    assert info.value.http_status == 400


def test_unavailable_from_cassette_is_overloaded():
    with replay.use_cassette("server_error.yaml"), pytest.raises(ProviderError) as info:
        make().complete(REQUEST, MODEL, timeout=10)
    assert info.value.error_class is ErrorClass.OVERLOADED


def test_midstream_bare_json_error_from_cassette():
    seen = []
    with replay.use_cassette("midstream_error.yaml"), pytest.raises(ProviderError) as info:
        for chunk in make().stream(REQUEST, MODEL, timeout=10):
            seen.append(chunk.text)
    assert seen == ["Hel"]
    assert info.value.error_class is ErrorClass.OVERLOADED
    assert info.value.partial_text == "Hel"


def test_probe_from_cassette_strips_prefix_and_skips_non_chat_models():
    with replay.use_cassette("models.yaml"):
        assert make().probe(timeout=10) == ["gemini-2.5-flash", "gemini-2.5-pro"]


# --- exact request ---------------------------------------------------------------------------


def test_request_url_headers_and_camelcase_body():
    seen = {}

    def handler(request):
        seen["request"] = request
        return httpx.Response(200, json={"candidates": [{"content": {"parts": [{"text": "x"}]}}]})

    request = Request(messages=(Message("user", "a"), Message("assistant", "b"), Message("user", "c")),
                      system="sys", max_tokens=99, temperature=1.5)
    mock(handler, headers={"x-goog-user-project": "p"}).complete(request, MODEL, timeout=5)
    sent = seen["request"]
    assert str(sent.url) == f"{BASE}/models/gemini-2.5-flash:generateContent"
    assert sent.headers["x-goog-api-key"] == KEY
    assert sent.headers["x-goog-user-project"] == "p"
    assert "key=" not in str(sent.url) and "authorization" not in sent.headers
    assert json.loads(sent.content) == {
        "contents": [
            {"role": "user", "parts": [{"text": "a"}]},
            {"role": "model", "parts": [{"text": "b"}]},
            {"role": "user", "parts": [{"text": "c"}]},
        ],
        "systemInstruction": {"parts": [{"text": "sys"}]},
        "generationConfig": {"maxOutputTokens": 99, "temperature": 1.5},
    }


def test_stream_url_and_optional_fields_omitted():
    seen = {}

    def handler(request):
        seen["url"], seen["body"] = str(request.url), json.loads(request.content)
        return httpx.Response(200, text=data_event("x", "STOP"))

    request = Request(messages=(Message("user", "Hi"),), max_tokens=10)
    list(mock(handler).stream(request, "models/gemini-2.5-pro", timeout=5))
    assert seen["url"] == f"{BASE}/models/gemini-2.5-pro:streamGenerateContent?alt=sse"
    assert seen["body"] == {"contents": [{"role": "user", "parts": [{"text": "Hi"}]}],
                            "generationConfig": {"maxOutputTokens": 10}}


def test_blocked_prompt_is_bad_request_with_reason():
    body = {"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": {"promptTokenCount": 4}}
    with pytest.raises(ProviderError) as info:
        mock(lambda r: httpx.Response(200, json=body)).complete(REQUEST, MODEL, timeout=5)
    assert info.value.error_class is ErrorClass.BAD_REQUEST
    assert "SAFETY" in info.value.message


def test_thought_parts_are_not_answer_text():
    body = {"candidates": [{"content": {"parts": [{"text": "thinking", "thought": True}, {"text": "answer"}]},
                            "finishReason": "MAX_TOKENS"}]}
    result = mock(lambda r: httpx.Response(200, json=body)).complete(REQUEST, MODEL, timeout=5)
    assert (result.text, result.finish_reason, result.usage) == ("answer", "MAX_TOKENS", None)


@pytest.mark.parametrize(
    "body",
    [
        {"usageMetadata": {"promptTokenCount": 4}},
        {"candidates": [], "usageMetadata": {"promptTokenCount": 4}},
        {"candidates": [{"content": {"role": "model", "parts": []}, "finishReason": "SAFETY"}]},
        {"candidates": [{"finishReason": "RECITATION", "index": 0}]},
        {"candidates": [{"content": {"parts": [{"text": "thinking", "thought": True}]}, "finishReason": "MAX_TOKENS"}]},
    ],
)
def test_answer_without_text_is_empty(body):
    with pytest.raises(ProviderError) as info:
        mock(lambda r: httpx.Response(200, json=body)).complete(REQUEST, MODEL, timeout=5)
    assert info.value.error_class is ErrorClass.EMPTY and info.value.http_status == 200


def test_stream_without_text_is_empty():
    body = (data_event("", usage={"promptTokenCount": 4}) + data_event("", "STOP")).encode()
    provider = mock(lambda r: httpx.Response(200, content=body, headers={"content-type": "text/event-stream"}))
    with pytest.raises(ProviderError) as info:
        list(provider.stream(REQUEST, MODEL, timeout=5))
    assert info.value.error_class is ErrorClass.EMPTY and "finish reason STOP" in info.value.message


# --- error classification --------------------------------------------------------------------

ERROR_INFO = {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}


@pytest.mark.parametrize(
    "code, status, message, details, expected",
    [
        (400, "INVALID_ARGUMENT", "bad", [ERROR_INFO], ErrorClass.AUTH),
        (400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.", [], ErrorClass.AUTH),
        (400, "INVALID_ARGUMENT", "* GenerateContentRequest.contents: contents is not specified", [], ErrorClass.BAD_REQUEST),
        (400, "INVALID_ARGUMENT", "The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).", [], ErrorClass.CONTEXT_LENGTH),
        (400, "FAILED_PRECONDITION", "User location is not supported for the API use.", [], ErrorClass.AUTH),
        (403, "PERMISSION_DENIED", "Method doesn't allow unregistered callers.", [], ErrorClass.AUTH),
        (404, "NOT_FOUND", "models/gemini-pro is not found for API version v1beta", [], ErrorClass.NOT_FOUND),
        (429, "RESOURCE_EXHAUSTED", "quota", [], ErrorClass.RATE_LIMITED),
        (500, "INTERNAL", "An internal error has occurred.", [], ErrorClass.SERVER_ERROR),
        (503, "UNAVAILABLE", "The model is overloaded.", [], ErrorClass.OVERLOADED),
        (504, "DEADLINE_EXCEEDED", "Deadline expired.", [], ErrorClass.TIMEOUT),
        (502, "", "", [], ErrorClass.SERVER_ERROR),
    ],
)
def test_error_classes(code, status, message, details, expected):
    body = status_body(code, status, message, *details)
    with pytest.raises(ProviderError) as info:
        mock(lambda r: httpx.Response(code, json=body)).complete(REQUEST, MODEL, timeout=5)
    assert info.value.error_class is expected
    assert info.value.http_status == code


def test_fractional_retry_delay_and_list_wrapped_error():
    retry = {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "0.5s"}
    body = [status_body(429, "RESOURCE_EXHAUSTED", "quota", retry)]
    with pytest.raises(ProviderError) as info:
        mock(lambda r: httpx.Response(429, json=body)).complete(REQUEST, MODEL, timeout=5)
    assert info.value.error_class is ErrorClass.RATE_LIMITED
    assert info.value.retry_after_s == 0.5


def test_non_json_error_body_falls_back_to_status_and_redacts_key():
    with pytest.raises(ProviderError) as info:
        mock(lambda r: httpx.Response(500, text=f"oops {KEY}")).complete(REQUEST, MODEL, timeout=5)
    assert info.value.error_class is ErrorClass.SERVER_ERROR
    assert KEY not in info.value.message


@pytest.mark.parametrize("text, expected", [("36s", 36.0), ("0.5s", 0.5), (" 2s ", 2.0), ("36", None), (None, None), ("1m", None)])
def test_parse_duration(text, expected):
    assert parse_duration(text) == expected


# --- stream parser ---------------------------------------------------------------------------


def _parse(body: bytes, step: int | None = None):
    parser = GeminiStreamParser(lambda t: t.replace(KEY, "[REDACTED]"))
    step = step or len(body) or 1
    chunks = [c for i in range(0, len(body), step) for c in parser.feed(body[i:i + step])]
    return chunks + parser.close()


def test_stream_lf_separators_fed_byte_by_byte():
    body = (data_event("Hé", usage={"promptTokenCount": 2}) +
            data_event("llo", "STOP", {"promptTokenCount": 2, "candidatesTokenCount": 2, "thoughtsTokenCount": 1})).encode()
    chunks = _parse(body, step=1)
    assert "".join(c.text for c in chunks) == "Héllo"
    assert chunks[-1].usage == Usage(2, 3, reasoning_tokens=1)


def test_stream_crlf_split_across_reads():
    body = data_event("a", sep="\r\n\r\n") + data_event("b", "STOP", sep="\r\n\r\n")
    for step in (1, 2, 3, 7):
        assert [c.text for c in _parse(body.encode(), step) if c.text] == ["a", "b"]


def test_stream_last_event_without_blank_line_still_counts():
    body = data_event("a", "STOP", sep="")
    assert _parse(body.encode())[-1].finish_reason == "STOP"


def test_stream_without_finish_reason_is_malformed():
    with pytest.raises(ProviderError) as info:
        _parse(data_event("partial").encode())
    assert info.value.error_class is ErrorClass.MALFORMED
    assert info.value.partial_text == "partial"


def test_stream_error_as_data_event_is_classified():
    body = f"data: {json.dumps(status_body(429, 'RESOURCE_EXHAUSTED', 'quota'))}\n\n".encode()
    with pytest.raises(ProviderError) as info:
        _parse(body)
    assert info.value.error_class is ErrorClass.RATE_LIMITED


def test_stream_single_line_bare_error():
    body = json.dumps(status_body(400, "INVALID_ARGUMENT", f"API key not valid {KEY}")).encode()
    with pytest.raises(ProviderError) as info:
        _parse(body)
    assert info.value.error_class is ErrorClass.AUTH
    assert KEY not in info.value.message


def test_stream_truncated_bare_json_is_malformed():
    with pytest.raises(ProviderError) as info:
        _parse(b'{\n  "error": {\n    "code": 500,\n')
    assert info.value.error_class is ErrorClass.MALFORMED


def test_stream_bare_non_error_json_is_malformed():
    with pytest.raises(ProviderError) as info:
        _parse(b'{"candidates": []}\n')
    assert info.value.error_class is ErrorClass.MALFORMED


def test_stream_unparseable_data_is_malformed():
    with pytest.raises(ProviderError) as info:
        _parse(b"data: {nope\n\n")
    assert info.value.error_class is ErrorClass.MALFORMED


def test_stream_blocked_prompt_is_bad_request():
    body = f"data: {json.dumps({'promptFeedback': {'blockReason': 'PROHIBITED_CONTENT'}})}\n\n".encode()
    with pytest.raises(ProviderError) as info:
        _parse(body)
    assert info.value.error_class is ErrorClass.BAD_REQUEST
    assert "PROHIBITED_CONTENT" in info.value.message


def test_stream_ignores_comments_and_usage_only_events():
    body = (": keep-alive\n\n" + f"data: {json.dumps({'usageMetadata': {'promptTokenCount': 1}})}\n\n"
            + data_event("x", "STOP")).encode()
    chunks = _parse(body)
    assert [c.text for c in chunks if c.text] == ["x"]
    assert chunks[-1].usage == Usage(1, 0)


def test_stream_http_error_is_classified():
    body = status_body(404, "NOT_FOUND", "models/nope is not found")
    with pytest.raises(ProviderError) as info:
        list(mock(lambda r: httpx.Response(404, json=body)).stream(REQUEST, "nope", timeout=5))
    assert info.value.error_class is ErrorClass.NOT_FOUND


def test_probe_request_sends_key_header_without_content_type():
    seen = {}

    def handler(request):
        seen["request"] = request
        return httpx.Response(200, json={"models": [{"name": "models/gemini-2.0-flash"}]})

    assert mock(handler).probe(timeout=5) == ["gemini-2.0-flash"]
    assert str(seen["request"].url) == f"{BASE}/models"
    assert seen["request"].headers["x-goog-api-key"] == KEY
    assert "content-type" not in seen["request"].headers


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
