"""Tools (function calling), `top_p` and `stop` in every wire format (SPEC §13).

MockTransport tests pin the exact request body each format gets for tool definitions,
`tool_choice`, assistant turns with tool calls, tool results, `top_p` and `stop`, and parse
hand-written buffered and streamed tool-call answers in each format's documented shape
(OpenAI `tool_calls`, Anthropic `tool_use` blocks and `input_json_delta`, Gemini
`functionCall` parts). A tool call with no text is an answer, never `empty`. One hand-written
cassette per tool format (cassettes/<format>/) replays a whole round trip with vcrpy, matching
the request body."""

from __future__ import annotations

import json
from pathlib import Path
from types import MappingProxyType

import httpx
import pytest
import vcr

from llmroute.config.model import ModelConfig, ProviderConfig
from llmroute.errors import ErrorClass, ProviderError
from llmroute.providers import create_provider
from llmroute.types import Chunk, Message, Request, ToolCall, ToolCallDelta, ToolSpec, Usage

WEATHER_SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
TOOLS = (ToolSpec("get_weather", "Current weather for a city", WEATHER_SCHEMA), ToolSpec("get_time"))
CONVERSATION = (
    Message("user", "Weather in Paris and Lyon?"),
    Message("assistant", "Checking.", tool_calls=(
        ToolCall("call_1", "get_weather", '{"city": "Paris"}'),
        ToolCall("call_2", "get_weather", '{"city": "Lyon"}'),
    )),
    Message("tool", '{"temp_c": 21}', tool_call_id="call_1"),
    Message("tool", "sunny", tool_call_id="call_2"),
)
REQUEST = Request(CONVERSATION, system="Be brief.", max_tokens=64, top_p=0.9, stop=("END",),
                  tools=TOOLS, tool_choice="auto")
PLAIN = Request((Message("user", "Hi"),), max_tokens=64)


def make(type_: str, handler, name: str | None = None):
    config = ProviderConfig(name=name or type_, type=type_)
    client = httpx.Client(transport=httpx.MockTransport(handler))
    return create_provider(config, key="test-key", client=client)


class Recorder:
    def __init__(self, body: object = None, content: bytes | None = None):
        self.body, self.content = body, content
        self.sent: list[dict] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(json.loads(request.content))
        if self.content is not None:
            return httpx.Response(200, content=self.content)
        return httpx.Response(200, json=self.body)


def sent_body(type_: str, request: Request, model: str) -> dict:
    """The body a format sends for `request` (the answer is irrelevant here)."""
    answers = {
        "openai": {"choices": [{"message": {"content": "ok"}, "finish_reason": "stop"}]},
        "anthropic": {"content": [{"type": "text", "text": "ok"}], "stop_reason": "end_turn"},
        "gemini": {"candidates": [{"content": {"parts": [{"text": "ok"}]}, "finishReason": "STOP"}]},
        "cohere": {"message": {"content": [{"type": "text", "text": "ok"}]}, "finish_reason": "COMPLETE"},
        "ollama": {"message": {"content": "ok"}, "done": True},
    }
    recorder = Recorder(answers[type_])
    make(type_, recorder).complete(request, model, timeout=5)
    return recorder.sent[0]


def stream(type_: str, content: bytes, request: Request = PLAIN, model: str = "m") -> list[Chunk]:
    return list(make(type_, Recorder(content=content)).stream(request, model, timeout=5))


def deltas(chunks: list[Chunk]) -> list[ToolCallDelta]:
    return [c.tool_call for c in chunks if c.tool_call is not None]


# --- OpenAI ----------------------------------------------------------------------------------


def test_openai_body_carries_tools_calls_results_top_p_and_stop():
    assert sent_body("openai", REQUEST, "gpt-4o-mini") == {
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Weather in Paris and Lyon?"},
            {"role": "assistant", "content": "Checking.", "tool_calls": [
                {"id": "call_1", "type": "function",
                 "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}},
                {"id": "call_2", "type": "function",
                 "function": {"name": "get_weather", "arguments": '{"city": "Lyon"}'}},
            ]},
            {"role": "tool", "tool_call_id": "call_1", "content": '{"temp_c": 21}'},
            {"role": "tool", "tool_call_id": "call_2", "content": "sunny"},
        ],
        "max_completion_tokens": 64,
        "top_p": 0.9,
        "stop": ["END"],
        "tools": [
            {"type": "function", "function": {"name": "get_weather", "description": "Current weather for a city",
                                              "parameters": WEATHER_SCHEMA}},
            {"type": "function", "function": {"name": "get_time",
                                              "parameters": {"type": "object", "properties": {}}}},
        ],
        "tool_choice": "auto",
    }


def test_openai_call_only_assistant_turn_has_null_content():
    request = Request((Message("user", "t?"), Message("assistant", "", (ToolCall("c", "get_time", "{}"),)),
                       Message("tool", "noon", tool_call_id="c")), tools=TOOLS)
    assert sent_body("openai", request, "gpt-4o")["messages"][1] == {
        "role": "assistant", "content": None,
        "tool_calls": [{"id": "c", "type": "function", "function": {"name": "get_time", "arguments": "{}"}}]}


@pytest.mark.parametrize("choice, sent", [
    ("auto", "auto"), ("none", "none"), ("required", "required"),
    ("get_time", {"type": "function", "function": {"name": "get_time"}}),
])
def test_openai_tool_choice(choice, sent):
    request = Request((Message("user", "t?"),), tools=TOOLS, tool_choice=choice)
    assert sent_body("openai", request, "gpt-4o")["tool_choice"] == sent


def test_openai_sends_no_tool_fields_top_p_or_stop_when_unset():
    body = sent_body("openai", Request((Message("user", "Hi"),), tool_choice="auto"), "gpt-4o")
    assert not {"tools", "tool_choice", "top_p", "stop"} & set(body)


def test_openai_buffered_tool_call_answer_is_not_empty():
    answer = {"id": "chatcmpl-1", "object": "chat.completion", "model": "gpt-4o-mini", "choices": [{
        "index": 0, "finish_reason": "tool_calls",
        "message": {"role": "assistant", "content": None, "refusal": None, "tool_calls": [
            {"id": "call_abc", "type": "function",
             "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]}}],
        "usage": {"prompt_tokens": 80, "completion_tokens": 17, "total_tokens": 97}}
    result = make("openai", Recorder(answer)).complete(REQUEST, "gpt-4o-mini", timeout=5)
    assert result.text == ""
    assert result.tool_calls == (ToolCall("call_abc", "get_weather", '{"city":"Paris"}'),)
    assert result.finish_reason == "tool_calls" and result.usage == Usage(80, 17)


def _openai_sse(*chunks: dict) -> bytes:
    return b"".join(f"data: {json.dumps(c)}\n\n".encode() for c in chunks) + b"data: [DONE]\n\n"


def test_openai_streamed_tool_call_pieces():
    def chunk(delta, finish=None):
        return {"id": "c1", "object": "chat.completion.chunk", "model": "gpt-4o-mini",
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], "usage": None}

    body = _openai_sse(
        chunk({"role": "assistant", "content": None, "tool_calls": [
            {"index": 0, "id": "call_abc", "type": "function", "function": {"name": "get_weather", "arguments": ""}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": "{\"ci"}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": "ty\":\"Paris\"}"}}]}),
        chunk({"tool_calls": [{"index": 1, "id": "call_def", "type": "function",
                               "function": {"name": "get_time", "arguments": "{}"}}]}),
        chunk({}, "tool_calls"),
        {"id": "c1", "object": "chat.completion.chunk", "choices": [],
         "usage": {"prompt_tokens": 80, "completion_tokens": 20, "total_tokens": 100}},
    )
    chunks = stream("openai", body, REQUEST, "gpt-4o-mini")
    assert deltas(chunks) == [
        ToolCallDelta(0, "call_abc", "get_weather", ""),
        ToolCallDelta(0, None, None, "{\"ci"),
        ToolCallDelta(0, None, None, "ty\":\"Paris\"}"),
        ToolCallDelta(1, "call_def", "get_time", "{}"),
    ]
    assert chunks[-1] == Chunk(usage=Usage(80, 20), finish_reason="tool_calls")


def test_openai_stream_with_neither_text_nor_tool_call_is_still_empty():
    body = _openai_sse({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    with pytest.raises(ProviderError) as info:
        stream("openai", body)
    assert info.value.error_class is ErrorClass.EMPTY


def test_openai_presets_pass_tools_through():
    recorder = Recorder({"choices": [{"message": {"content": "ok"}, "finish_reason": "stop"}]})
    make("openai", recorder, name="groq").complete(REQUEST, "llama-3.3-70b-versatile", timeout=5)
    assert recorder.sent[0]["tools"][0]["function"]["name"] == "get_weather"
    assert recorder.sent[0]["tool_choice"] == "auto" and recorder.sent[0]["max_completion_tokens"] == 64


# --- Anthropic -------------------------------------------------------------------------------


def test_anthropic_body_translates_tools_calls_results_top_p_and_stop():
    assert sent_body("anthropic", REQUEST, "claude-haiku-4-5") == {
        "model": "claude-haiku-4-5",
        "max_tokens": 64,
        "messages": [
            {"role": "user", "content": "Weather in Paris and Lyon?"},
            {"role": "assistant", "content": [
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Paris"}},
                {"type": "tool_use", "id": "call_2", "name": "get_weather", "input": {"city": "Lyon"}},
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "call_1", "content": '{"temp_c": 21}'},
                {"type": "tool_result", "tool_use_id": "call_2", "content": "sunny"},
            ]},
        ],
        "system": "Be brief.",
        "top_p": 0.9,
        "stop_sequences": ["END"],
        "tools": [
            {"name": "get_weather", "description": "Current weather for a city", "input_schema": WEATHER_SCHEMA},
            {"name": "get_time", "input_schema": {"type": "object", "properties": {}}},
        ],
        "tool_choice": {"type": "auto"},
    }


def test_anthropic_user_turn_after_tool_results_joins_their_turn():
    request = Request(CONVERSATION + (Message("user", "And Nice?"),), tools=TOOLS)
    messages = sent_body("anthropic", request, "claude-haiku-4-5")["messages"]
    assert len(messages) == 3
    assert messages[2]["content"][-1] == {"type": "text", "text": "And Nice?"}
    assert [b["type"] for b in messages[2]["content"]] == ["tool_result", "tool_result", "text"]


@pytest.mark.parametrize("choice, sent", [
    ("auto", {"type": "auto"}), ("none", {"type": "none"}), ("required", {"type": "any"}),
    ("get_time", {"type": "tool", "name": "get_time"}),
])
def test_anthropic_tool_choice(choice, sent):
    request = Request((Message("user", "t?"),), tools=TOOLS, tool_choice=choice)
    assert sent_body("anthropic", request, "claude-haiku-4-5")["tool_choice"] == sent


def test_anthropic_arguments_that_are_not_an_object_are_a_bad_request():
    request = Request((Message("user", "t?"), Message("assistant", "", (ToolCall("c", "get_time", "[1]"),)),
                       Message("tool", "noon", tool_call_id="c")), tools=TOOLS)
    with pytest.raises(ProviderError) as info:
        sent_body("anthropic", request, "claude-haiku-4-5")
    assert info.value.error_class is ErrorClass.BAD_REQUEST


def test_anthropic_buffered_tool_use_answer_is_not_empty():
    answer = {"id": "msg_01", "type": "message", "role": "assistant", "model": "claude-haiku-4-5",
              "content": [{"type": "tool_use", "id": "toolu_01A", "name": "get_weather",
                           "input": {"city": "Paris"}}],
              "stop_reason": "tool_use", "stop_sequence": None,
              "usage": {"input_tokens": 350, "output_tokens": 40}}
    result = make("anthropic", Recorder(answer)).complete(REQUEST, "claude-haiku-4-5", timeout=5)
    assert result.text == ""
    assert result.tool_calls == (ToolCall("toolu_01A", "get_weather", '{"city":"Paris"}'),)
    assert result.finish_reason == "tool_use"


def _anthropic_sse(*events: dict) -> bytes:
    return "".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n" for e in events).encode()


def _anthropic_stream(*blocks: dict) -> bytes:
    start = {"type": "message_start", "message": {"id": "msg_01", "type": "message", "role": "assistant",
                                                  "content": [], "model": "claude-haiku-4-5",
                                                  "usage": {"input_tokens": 350, "output_tokens": 1}}}
    end = [{"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": None},
            "usage": {"output_tokens": 42}}, {"type": "message_stop"}]
    return _anthropic_sse(start, {"type": "ping"}, *blocks, *end)


def test_anthropic_streamed_tool_use_pieces_after_text():
    body = _anthropic_stream(
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Let me check."}},
        {"type": "content_block_stop", "index": 0},
        {"type": "content_block_start", "index": 1,
         "content_block": {"type": "tool_use", "id": "toolu_01A", "name": "get_weather", "input": {}}},
        {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": ""}},
        {"type": "content_block_delta", "index": 1,
         "delta": {"type": "input_json_delta", "partial_json": "{\"city\": \"Pa"}},
        {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "ris\"}"}},
        {"type": "content_block_stop", "index": 1},
        {"type": "content_block_start", "index": 2,
         "content_block": {"type": "tool_use", "id": "toolu_01B", "name": "get_time", "input": {}}},
        {"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": "{}"}},
        {"type": "content_block_stop", "index": 2},
    )
    chunks = stream("anthropic", body, REQUEST, "claude-haiku-4-5")
    assert [c.text for c in chunks if c.text] == ["Let me check."]
    assert deltas(chunks) == [
        ToolCallDelta(0, "toolu_01A", "get_weather", ""),
        ToolCallDelta(0, None, None, "{\"city\": \"Pa"),
        ToolCallDelta(0, None, None, "ris\"}"),
        ToolCallDelta(1, "toolu_01B", "get_time", ""),
        ToolCallDelta(1, None, None, "{}"),
    ]
    assert chunks[-1] == Chunk(usage=Usage(350, 42), finish_reason="tool_use")


def test_anthropic_stream_of_only_a_tool_call_is_not_empty():
    body = _anthropic_stream(
        {"type": "content_block_start", "index": 0,
         "content_block": {"type": "tool_use", "id": "toolu_01A", "name": "get_time", "input": {}}},
        {"type": "content_block_stop", "index": 0},
    )
    chunks = stream("anthropic", body, REQUEST, "claude-haiku-4-5")
    assert deltas(chunks) == [ToolCallDelta(0, "toolu_01A", "get_time", "")]


# --- Gemini ----------------------------------------------------------------------------------


def test_gemini_body_translates_tools_calls_results_top_p_and_stop():
    assert sent_body("gemini", REQUEST, "gemini-2.5-flash") == {
        "contents": [
            {"role": "user", "parts": [{"text": "Weather in Paris and Lyon?"}]},
            {"role": "model", "parts": [
                {"text": "Checking."},
                {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}},
                {"functionCall": {"name": "get_weather", "args": {"city": "Lyon"}}},
            ]},
            {"role": "user", "parts": [
                {"functionResponse": {"name": "get_weather", "response": {"temp_c": 21}}},
                {"functionResponse": {"name": "get_weather", "response": {"result": "sunny"}}},
            ]},
        ],
        "systemInstruction": {"parts": [{"text": "Be brief."}]},
        "tools": [{"functionDeclarations": [
            {"name": "get_weather", "description": "Current weather for a city", "parameters": WEATHER_SCHEMA},
            {"name": "get_time"},
        ]}],
        "toolConfig": {"functionCallingConfig": {"mode": "AUTO"}},
        "generationConfig": {"maxOutputTokens": 64, "topP": 0.9, "stopSequences": ["END"]},
    }


def test_gemini_call_only_model_turn_has_no_empty_text_part():
    request = Request((Message("user", "t?"), Message("assistant", "", (ToolCall("c", "get_time", ""),)),
                       Message("tool", "noon", tool_call_id="c")), tools=TOOLS)
    contents = sent_body("gemini", request, "gemini-2.5-flash")["contents"]
    assert contents[1] == {"role": "model", "parts": [{"functionCall": {"name": "get_time", "args": {}}}]}
    assert contents[2]["parts"][0]["functionResponse"]["name"] == "get_time"


@pytest.mark.parametrize("choice, sent", [
    ("auto", {"mode": "AUTO"}), ("none", {"mode": "NONE"}), ("required", {"mode": "ANY"}),
    ("get_time", {"mode": "ANY", "allowedFunctionNames": ["get_time"]}),
])
def test_gemini_tool_choice(choice, sent):
    request = Request((Message("user", "t?"),), tools=TOOLS, tool_choice=choice)
    assert sent_body("gemini", request, "gemini-2.5-flash")["toolConfig"] == {"functionCallingConfig": sent}


def test_gemini_result_for_an_unknown_call_is_a_bad_request():
    request = Request((Message("user", "t?"), Message("tool", "noon", tool_call_id="nope")), tools=TOOLS)
    with pytest.raises(ProviderError) as info:
        sent_body("gemini", request, "gemini-2.5-flash")
    assert info.value.error_class is ErrorClass.BAD_REQUEST


def test_gemini_buffered_function_call_answer_is_not_empty():
    answer = {"candidates": [{"content": {"role": "model", "parts": [
        {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}},
        {"functionCall": {"id": "fc-7", "name": "get_time", "args": {}}},
    ]}, "finishReason": "STOP", "index": 0}],
        "usageMetadata": {"promptTokenCount": 60, "candidatesTokenCount": 12, "totalTokenCount": 72},
        "modelVersion": "gemini-2.5-flash"}
    result = make("gemini", Recorder(answer)).complete(REQUEST, "gemini-2.5-flash", timeout=5)
    assert result.text == "" and result.finish_reason == "STOP" and result.usage == Usage(60, 12)
    first, second = result.tool_calls
    assert (first.name, first.arguments) == ("get_weather", '{"city":"Paris"}')
    assert first.id.startswith("call_") and len(first.id) > len("call_")
    assert second == ToolCall("fc-7", "get_time", "{}")


def test_gemini_made_up_call_id_finds_the_name_in_the_next_turn():
    answer = {"candidates": [{"content": {"role": "model", "parts": [
        {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}}]}, "finishReason": "STOP"}]}
    call = make("gemini", Recorder(answer)).complete(REQUEST, "gemini-2.5-flash", timeout=5).tool_calls[0]
    follow_up = Request((Message("user", "w?"), Message("assistant", "", (call,)),
                         Message("tool", "rain", tool_call_id=call.id)), tools=TOOLS)
    part = sent_body("gemini", follow_up, "gemini-2.5-flash")["contents"][2]["parts"][0]
    assert part == {"functionResponse": {"name": "get_weather", "response": {"result": "rain"}}}


def test_gemini_streamed_function_calls_come_whole():
    events = [
        {"candidates": [{"content": {"role": "model", "parts": [{"text": "Checking. "}]}}]},
        {"candidates": [{"content": {"role": "model", "parts": [
            {"functionCall": {"id": "fc-1", "name": "get_weather", "args": {"city": "Paris"}}}]}}]},
        {"candidates": [{"content": {"role": "model", "parts": [
            {"functionCall": {"id": "fc-2", "name": "get_time", "args": {}}}]}, "finishReason": "STOP"}],
         "usageMetadata": {"promptTokenCount": 60, "candidatesTokenCount": 15}},
    ]
    body = b"".join(f"data: {json.dumps(e)}\r\n\r\n".encode() for e in events)
    chunks = stream("gemini", body, REQUEST, "gemini-2.5-flash")
    assert deltas(chunks) == [ToolCallDelta(0, "fc-1", "get_weather", '{"city":"Paris"}'),
                              ToolCallDelta(1, "fc-2", "get_time", "{}")]
    assert chunks[-1] == Chunk(usage=Usage(60, 15), finish_reason="STOP")


def test_gemini_stream_of_only_a_function_call_is_not_empty():
    event = {"candidates": [{"content": {"role": "model", "parts": [
        {"functionCall": {"name": "get_time", "args": {}}}]}, "finishReason": "STOP"}]}
    chunks = stream("gemini", f"data: {json.dumps(event)}\n\n".encode(), REQUEST, "gemini-2.5-flash")
    assert [d.name for d in deltas(chunks)] == ["get_time"]


# --- Cohere and Ollama: top_p and stop ----------------------------------------------------------


def test_cohere_sends_p_and_stop_sequences():
    body = sent_body("cohere", Request((Message("user", "Hi"),), top_p=0.5, stop=("END", "STOP")), "command-a-03-2025")
    assert (body["p"], body["stop_sequences"]) == (0.5, ["END", "STOP"])
    assert not {"p", "stop_sequences"} & set(sent_body("cohere", PLAIN, "command-a-03-2025"))


def test_ollama_sends_top_p_and_stop_in_options():
    body = sent_body("ollama", Request((Message("user", "Hi"),), max_tokens=32, top_p=0.5, stop=("END",)), "llama3.2")
    assert body["options"] == {"num_predict": 32, "top_p": 0.5, "stop": ["END"]}
    assert sent_body("ollama", PLAIN, "llama3.2")["options"] == {"num_predict": 64}


# --- mock --------------------------------------------------------------------------------------


def _mock():
    config = ProviderConfig(name="mock", type="mock", models=MappingProxyType({"m1": ModelConfig("m1")}))
    return create_provider(config, sleep=lambda s: None)


def test_mock_answers_call_tool_with_a_tool_call():
    request = Request((Message("user", 'please call get_weather {"city": "Paris"} now'),), tools=TOOLS)
    result = _mock().complete(request, "m1", timeout=5)
    assert result.tool_calls == (ToolCall("call_mock_0", "get_weather", '{"city":"Paris"}'),)
    assert (result.text, result.finish_reason) == ("", "tool_calls")
    chunks = list(_mock().stream(request, "m1", timeout=5))
    assert deltas(chunks) == [ToolCallDelta(0, "call_mock_0", "get_weather", '{"city":"Paris"}')]
    assert chunks[-1].finish_reason == "tool_calls"


def test_mock_answers_text_without_tools_or_after_the_result():
    assert not _mock().complete(Request((Message("user", "call get_time"),)), "m1", timeout=5).tool_calls
    after = Request((Message("user", "call get_time"), Message("assistant", "", (ToolCall("call_mock_0", "get_time"),)),
                     Message("tool", "noon", tool_call_id="call_mock_0")), tools=TOOLS)
    result = _mock().complete(after, "m1", timeout=5)
    assert not result.tool_calls and result.text.startswith("mock answer from m1")
    unknown = Request((Message("user", "call get_stock"),), tools=TOOLS)
    assert not _mock().complete(unknown, "m1", timeout=5).tool_calls


# --- cassettes: the whole round trip's request as each format documents it ----------------------

CASSETTES = Path(__file__).resolve().parent.parent / "cassettes"


def _replay(type_: str) -> vcr.VCR:
    return vcr.VCR(cassette_library_dir=str(CASSETTES / type_), record_mode="none",
                   match_on=("method", "uri", "body"),
                   filter_headers=("authorization", "x-api-key", "x-goog-api-key"))


def _real(type_: str):
    return create_provider(ProviderConfig(name=type_, type=type_), key="test-key", client=httpx.Client())


def test_openai_tool_call_round_trip_from_cassette():
    with _replay("openai").use_cassette("tool_calls.yaml") as cassette:
        result = _real("openai").complete(REQUEST, "gpt-4o-mini", timeout=10)
    assert cassette.play_count == 1
    assert result.tool_calls == (ToolCall("call_Xq3", "get_time", '{"tz":"Europe/Paris"}'),)
    assert (result.text, result.finish_reason, result.usage) == ("", "tool_calls", Usage(120, 18))


def test_anthropic_tool_use_stream_from_cassette():
    with _replay("anthropic").use_cassette("tool_use_stream.yaml") as cassette:
        chunks = list(_real("anthropic").stream(REQUEST, "claude-haiku-4-5", timeout=10))
    assert cassette.play_count == 1
    assert "".join(c.text for c in chunks) == "Checking the time."
    pieces = deltas(chunks)
    assert (pieces[0].id, pieces[0].name) == ("toolu_01T", "get_time")
    assert json.loads("".join(p.arguments for p in pieces)) == {"tz": "Europe/Paris"}
    assert chunks[-1] == Chunk(usage=Usage(410, 35), finish_reason="tool_use")


def test_gemini_function_call_stream_from_cassette():
    with _replay("gemini").use_cassette("function_call_stream.yaml") as cassette:
        chunks = list(_real("gemini").stream(REQUEST, "gemini-2.5-flash", timeout=10))
    assert cassette.play_count == 1
    (piece,) = deltas(chunks)
    assert (piece.index, piece.name, piece.arguments) == (0, "get_time", '{"tz":"Europe/Paris"}')
    assert chunks[-1] == Chunk(usage=Usage(95, 9), finish_reason="STOP")
