"""Ollama native format: hand-written cassettes replayed with vcrpy, plus MockTransport tests
for the exact request, optional Bearer auth, NDJSON stream edges and error mapping."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
import vcr

from llmroute.config.model import ProviderConfig
from llmroute.errors import ErrorClass, ProviderError
from llmroute.providers import create_provider
from llmroute.providers.ollama import OllamaStreamParser
from llmroute.types import Message, Request, Usage

CASSETTES = Path(__file__).resolve().parent.parent / "cassettes" / "ollama"
KEY = "ollama-cloud-test-0123456789"
REQUEST = Request(messages=(Message("user", "Hi"),), system="Be brief.", max_tokens=64, temperature=0.2)
MODEL = "llama3.2"
CLOUD = "https://ollama.com"

replay = vcr.VCR(
    cassette_library_dir=str(CASSETTES),
    record_mode="none",
    match_on=("method", "uri", "body"),
    filter_headers=("authorization",),
)


def make(client: httpx.Client | None = None, key: str | None = None, **config):
    return create_provider(ProviderConfig(name="ollama", type="ollama", **config), key=key, client=client or httpx.Client())


def mock(handler, key: str | None = None, **config):
    return make(httpx.Client(transport=httpx.MockTransport(handler)), key=key, **config)


def ndjson(*objects: dict) -> bytes:
    return "".join(json.dumps(o) + "\n" for o in objects).encode()


# --- cassettes -------------------------------------------------------------------------------


def test_complete_from_cassette():
    with replay.use_cassette("non_stream.yaml") as cassette:
        result = make().complete(REQUEST, MODEL, timeout=10)
    assert cassette.play_count == 1
    assert (result.text, result.usage, result.finish_reason) == ("Hello!", Usage(26, 298), "stop")


def test_stream_from_cassette():
    with replay.use_cassette("stream.yaml"):
        chunks = list(make().stream(REQUEST, MODEL, timeout=10))
    assert [c.text for c in chunks if c.text] == ["Hel", "lo!"]
    assert chunks[-1].usage == Usage(26, 2)
    assert chunks[-1].finish_reason == "stop"


def test_cloud_rate_limit_from_cassette():
    with replay.use_cassette("rate_limit.yaml"), pytest.raises(ProviderError) as info:
        make(key=KEY, base_url=CLOUD).complete(REQUEST, MODEL, timeout=10)
    assert info.value.error_class is ErrorClass.RATE_LIMITED
    assert info.value.retry_after_s == 2.0


def test_cloud_bad_key_from_cassette():
    with replay.use_cassette("bad_key.yaml"), pytest.raises(ProviderError) as info:
        make(key=KEY, base_url=CLOUD).complete(REQUEST, MODEL, timeout=10)
    assert info.value.error_class is ErrorClass.AUTH


def test_server_error_from_cassette():
    with replay.use_cassette("server_error.yaml"), pytest.raises(ProviderError) as info:
        make().complete(REQUEST, MODEL, timeout=10)
    assert info.value.error_class is ErrorClass.SERVER_ERROR
    assert "system memory" in info.value.message


def test_unknown_model_from_cassette():
    with replay.use_cassette("not_found.yaml"), pytest.raises(ProviderError) as info:
        make().complete(REQUEST, "llama9", timeout=10)
    assert info.value.error_class is ErrorClass.NOT_FOUND
    assert "llama9" in info.value.message


def test_midstream_error_from_cassette():
    seen = []
    with replay.use_cassette("midstream_error.yaml"), pytest.raises(ProviderError) as info:
        for chunk in make().stream(REQUEST, MODEL, timeout=10):
            seen.append(chunk.text)
    assert seen == ["Hel"]
    assert info.value.error_class is ErrorClass.SERVER_ERROR
    assert info.value.partial_text == "Hel"


def test_probe_from_cassette():
    with replay.use_cassette("tags.yaml"):
        assert make().probe(timeout=10) == ["llama3.2:latest", "qwen2.5:7b"]


# --- exact request ---------------------------------------------------------------------------


def test_local_request_has_no_auth_and_exact_body():
    seen = {}

    def handler(request):
        seen["request"] = request
        return httpx.Response(200, json={"message": {"content": "x"}, "done": True})

    provider = mock(handler)
    assert provider.needs_key() is False
    provider.complete(REQUEST, MODEL, timeout=5)
    sent = seen["request"]
    assert str(sent.url) == "http://localhost:11434/api/chat"
    assert "authorization" not in sent.headers
    assert sent.headers["content-type"] == "application/json"
    assert json.loads(sent.content) == {
        "model": MODEL, "stream": False,
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
        "options": {"num_predict": 64, "temperature": 0.2},
    }


def test_cloud_request_sends_bearer_and_stream_true_without_temperature():
    seen = {}

    def handler(request):
        seen["request"] = request
        return httpx.Response(200, content=ndjson({"message": {"content": "x"}, "done": True}))

    request = Request(messages=(Message("user", "a"), Message("assistant", "b")), max_tokens=5)
    list(mock(handler, key=KEY, base_url=CLOUD).stream(request, MODEL, timeout=5))
    sent = seen["request"]
    assert str(sent.url) == "https://ollama.com/api/chat"
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    assert json.loads(sent.content) == {
        "model": MODEL, "stream": True, "options": {"num_predict": 5},
        "messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}],
    }


@pytest.mark.parametrize("message", [{"role": "assistant", "content": ""}, {"role": "assistant"}, {}])
def test_answer_without_text_is_empty(message):
    body = {"model": MODEL, "message": message, "done": True, "done_reason": "stop", "prompt_eval_count": 5}
    with pytest.raises(ProviderError) as info:
        mock(lambda r: httpx.Response(200, json=body)).complete(REQUEST, MODEL, timeout=5)
    assert info.value.error_class is ErrorClass.EMPTY and "stop" in info.value.message


def test_stream_without_text_is_empty():
    body = ndjson({"message": {"role": "assistant", "content": ""}, "done": False},
                  {"message": {"role": "assistant", "content": ""}, "done": True, "done_reason": "stop"})
    with pytest.raises(ProviderError) as info:
        list(mock(lambda r: httpx.Response(200, content=body)).stream(REQUEST, MODEL, timeout=5))
    assert info.value.error_class is ErrorClass.EMPTY


def test_absent_counts_are_zero():
    body = {"message": {"role": "assistant", "content": "hi"}, "done": True}
    result = mock(lambda r: httpx.Response(200, json=body)).complete(REQUEST, MODEL, timeout=5)
    assert result.usage == Usage(0, 0)


def test_error_object_with_status_200_is_an_error():
    with pytest.raises(ProviderError) as info:
        mock(lambda r: httpx.Response(200, json={"error": "boom"})).complete(REQUEST, MODEL, timeout=5)
    assert info.value.error_class is ErrorClass.SERVER_ERROR


@pytest.mark.parametrize(
    "status, message, expected",
    [
        (400, "model is required", ErrorClass.BAD_REQUEST),
        (400, "input length exceeds the context length", ErrorClass.CONTEXT_LENGTH),
        (401, "unauthorized", ErrorClass.AUTH),
        (403, "forbidden", ErrorClass.AUTH),
        (404, "model 'x' not found", ErrorClass.NOT_FOUND),
        (429, "too many requests", ErrorClass.RATE_LIMITED),
        (500, "boom", ErrorClass.SERVER_ERROR),
        (502, "bad gateway", ErrorClass.OVERLOADED),
        (503, "server busy", ErrorClass.OVERLOADED),
        (504, "timeout", ErrorClass.TIMEOUT),
        (418, "teapot", ErrorClass.BAD_REQUEST),
    ],
)
def test_error_classes(status, message, expected):
    with pytest.raises(ProviderError) as info:
        mock(lambda r: httpx.Response(status, json={"error": message})).complete(REQUEST, MODEL, timeout=5)
    assert info.value.error_class is expected
    assert info.value.http_status == status
    assert message in info.value.message


def test_plain_text_error_body_and_redaction():
    with pytest.raises(ProviderError) as info:
        mock(lambda r: httpx.Response(502, text=f"upstream died {KEY}"), key=KEY, base_url=CLOUD).complete(
            REQUEST, MODEL, timeout=5)
    assert info.value.error_class is ErrorClass.OVERLOADED
    assert KEY not in info.value.message and "upstream died" in info.value.message


def test_connection_refused_is_connection_error():
    def handler(request):
        raise httpx.ConnectError("Connection refused")

    with pytest.raises(ProviderError) as info:
        mock(handler).complete(REQUEST, MODEL, timeout=5)
    assert info.value.error_class is ErrorClass.CONNECTION


# --- stream parser ---------------------------------------------------------------------------


def _parse(body: bytes, step: int | None = None):
    parser = OllamaStreamParser(lambda t: t)
    step = step or len(body) or 1
    return [c for i in range(0, len(body), step) for c in parser.feed(body[i:i + step])] + parser.close()


def test_stream_byte_by_byte_with_content_in_done_object():
    body = ndjson({"message": {"content": "Hé"}, "done": False},
                  {"message": {"content": "!"}, "done": True, "done_reason": "length", "eval_count": 3})
    chunks = _parse(body, step=1)
    assert "".join(c.text for c in chunks) == "Hé!"
    assert chunks[-1].usage == Usage(0, 3) and chunks[-1].finish_reason == "length"


def test_stream_without_done_is_malformed():
    with pytest.raises(ProviderError) as info:
        _parse(ndjson({"message": {"content": "par"}, "done": False}))
    assert info.value.error_class is ErrorClass.MALFORMED
    assert info.value.partial_text == "par"


def test_stream_not_found_error_line():
    with pytest.raises(ProviderError) as info:
        _parse(ndjson({"error": "model 'x' not found, try pulling it first"}))
    assert info.value.error_class is ErrorClass.NOT_FOUND


def test_stream_garbage_line_is_malformed():
    with pytest.raises(ProviderError) as info:
        _parse(b"not json\n")
    assert info.value.error_class is ErrorClass.MALFORMED


def test_stream_final_line_without_newline_counts():
    body = b'{"message": {"content": "x"}, "done": true, "prompt_eval_count": 1, "eval_count": 1}'
    assert _parse(body)[-1].usage == Usage(1, 1)


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
