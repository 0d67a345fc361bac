"""SSE and NDJSON decoders: any chunk boundary, any line ending, comments, split UTF-8."""

from __future__ import annotations

import pytest

from llmroute.providers.sse import NDJSONDecoder, SSEDecoder, SSEEvent

BODY = (
    ": OPENROUTER PROCESSING\n\n"
    "data: {\"a\":1}\n\n"
    "event: message_delta\ndata: {\"b\":\"héllo 🌍\"}\n\n"
    "data: line1\ndata: line2\n\n"
    "data: [DONE]\n\n"
).encode("utf-8")

EXPECTED = [
    SSEEvent("message", '{"a":1}'),
    SSEEvent("message_delta", '{"b":"héllo 🌍"}'),
    SSEEvent("message", "line1\nline2"),
    SSEEvent("message", "[DONE]"),
]


def decode_in_pieces(body: bytes, size: int) -> list[SSEEvent]:
    decoder = SSEDecoder()
    events = []
    for start in range(0, len(body), size):
        events += decoder.feed(body[start : start + size])
    return events + decoder.close()


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 13, 64, 10_000])
def test_any_chunk_boundary(size):
    assert decode_in_pieces(BODY, size) == EXPECTED


@pytest.mark.parametrize("size", [1, 2, 3, 4, 10_000])
@pytest.mark.parametrize("newline", [b"\r\n", b"\r"])
def test_crlf_and_cr_line_endings(size, newline):
    assert decode_in_pieces(BODY.replace(b"\n", newline), size) == EXPECTED


def test_cr_lf_split_across_feeds_is_one_line_end():
    decoder = SSEDecoder()
    events = decoder.feed(b"data: x\r")
    events += decoder.feed(b"\n\r")
    events += decoder.feed(b"\ndata: y\r\n\r\n")
    assert events == [SSEEvent("message", "x"), SSEEvent("message", "y")]


def test_split_utf8_character_is_reassembled():
    raw = "data: 🌍é\n\n".encode("utf-8")
    cut = raw.index("🌍".encode("utf-8")) + 2  # inside the 4-byte emoji
    decoder = SSEDecoder()
    assert decoder.feed(raw[:cut]) == []
    assert decoder.feed(raw[cut:]) == [SSEEvent("message", "🌍é")]


def test_invalid_utf8_is_replaced_not_fatal():
    decoder = SSEDecoder()
    assert decoder.feed(b"data: \xff\xfeok\n\n") == [SSEEvent("message", "\ufffd\ufffdok")]


def test_comments_only_yield_nothing():
    decoder = SSEDecoder()
    assert decoder.feed(b": keep-alive\n\n: again\n\n") == []
    assert decoder.close() == []


def test_unterminated_last_event_counts_at_close():
    decoder = SSEDecoder()
    assert decoder.feed(b"data: tail") == []
    assert decoder.close() == [SSEEvent("message", "tail")]


def test_field_without_space_and_unknown_fields():
    decoder = SSEDecoder()
    assert decoder.feed(b"id: 7\nretry: 10\ndata:x\n\n") == [SSEEvent("message", "x")]


def test_event_name_resets_between_events():
    decoder = SSEDecoder()
    events = decoder.feed(b"event: ping\ndata: 1\n\ndata: 2\n\n")
    assert events == [SSEEvent("ping", "1"), SSEEvent("message", "2")]


@pytest.mark.parametrize("size", [1, 3, 100])
def test_ndjson(size):
    body = '{"a":1}\r\n\n{"b":"ü"}\n{"c":3}'.encode("utf-8")
    decoder = NDJSONDecoder()
    lines = []
    for start in range(0, len(body), size):
        lines += decoder.feed(body[start : start + size])
    lines += decoder.close()
    assert lines == ['{"a":1}', '{"b":"ü"}', '{"c":3}']
