"""The OpenAI Chat Completions wire format: a request body → `Request`; an `Answer` or a stream of
`Chunk`s → the response body or its SSE chunks (`data: [DONE]` last, the usage chunk when
`stream_options.include_usage`)."""

from __future__ import annotations

import json
import time
from typing import AsyncIterator

from ..config.model import Config
from ..types import Answer, Chunk, Message, Request, ToolCall, ToolSpec, Usage
from .common import Parsed, bad, finish, integer, number, options_for, stops


def parse(config: Config, body: dict) -> Parsed:
    options = options_for(config, body.get("model"))
    raw = body.get("messages")
    if not isinstance(raw, list) or not raw:
        raise bad("`messages` must be a non-empty list")
    system: list[str] = []
    messages: list[Message] = []
    for index, item in enumerate(raw):
        if not isinstance(item, dict):
            raise bad(f"messages[{index}] must be an object")
        role = item.get("role")
        text = _content(item.get("content"), index)
        if role in ("system", "developer"):
            system.append(text)
        elif role == "user":
            messages.append(Message("user", text))
        elif role == "assistant":
            calls = tuple(_tool_call(c, index) for c in item.get("tool_calls") or [])
            messages.append(Message("assistant", text, tool_calls=calls))
        elif role == "tool":
            call_id = item.get("tool_call_id")
            if not isinstance(call_id, str):
                raise bad(f"messages[{index}]: a tool message needs `tool_call_id`")
            messages.append(Message("tool", text, tool_call_id=call_id))
        else:
            raise bad(f"messages[{index}]: unknown role {role!r}")
    if not messages:
        raise bad("`messages` must hold at least one user message")
    max_tokens = integer(body, "max_completion_tokens") or integer(body, "max_tokens") or config.defaults.max_tokens
    request = Request(
        messages=tuple(messages), system="\n\n".join(system) or None, max_tokens=max_tokens,
        temperature=number(body, "temperature", 0, 2), top_p=number(body, "top_p", 0, 1),
        stop=stops(body.get("stop"), "stop"), tools=tuple(_tool_spec(t) for t in body.get("tools") or []),
        tool_choice=_tool_choice(body.get("tool_choice")),
    )
    stream = body.get("stream") is True
    stream_options = body.get("stream_options") or {}
    include_usage = stream and isinstance(stream_options, dict) and stream_options.get("include_usage") is True
    return Parsed(request, options, stream, include_usage)


def _content(content: object, index: int) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if not isinstance(part, dict) or part.get("type") != "text":
                raise bad(f"messages[{index}]: only text content parts are supported")
            parts.append(str(part.get("text", "")))
        return "".join(parts)
    raise bad(f"messages[{index}].content must be a string or a list of parts")


def _tool_call(item: object, index: int) -> ToolCall:
    function = item.get("function") if isinstance(item, dict) else None
    if not isinstance(function, dict) or not isinstance(function.get("name"), str):
        raise bad(f"messages[{index}].tool_calls: each needs `function.name`")
    return ToolCall(id=str(item.get("id", "")), name=function["name"], arguments=function.get("arguments") or "{}")


def _tool_spec(item: object) -> ToolSpec:
    function = item.get("function") if isinstance(item, dict) else None
    if not isinstance(function, dict) or not isinstance(function.get("name"), str):
        raise bad("tools: each must be {type: function, function: {name, parameters}}")
    return ToolSpec(name=function["name"], description=function.get("description"),
                    parameters=function.get("parameters") or {})


def _tool_choice(choice: object) -> str | None:
    if choice is None or choice in ("auto", "none", "required"):
        return choice
    if isinstance(choice, dict) and isinstance((choice.get("function") or {}).get("name"), str):
        return choice["function"]["name"]
    raise bad("`tool_choice` must be auto, none, required or {type: function, function: {name}}")


def usage_body(usage: Usage | None) -> dict | None:
    if usage is None:
        return None
    return {"prompt_tokens": usage.input_tokens, "completion_tokens": usage.output_tokens,
            "total_tokens": usage.input_tokens + usage.output_tokens}


def response_body(answer: Answer) -> dict:
    message: dict = {"role": "assistant", "content": answer.text or None}
    if answer.tool_calls:
        message["tool_calls"] = [{"id": c.id, "type": "function",
                                  "function": {"name": c.name, "arguments": c.arguments}}
                                 for c in answer.tool_calls]
    return {
        "id": f"chatcmpl-{answer.request_id}", "object": "chat.completion", "created": int(time.time()),
        "model": answer.target.id,
        "choices": [{"index": 0, "message": message, "logprobs": None,
                     "finish_reason": finish(answer.finish_reason, bool(answer.tool_calls))}],
        "usage": usage_body(answer.usage),
    }


def _event(data: dict) -> bytes:
    return b"data: " + json.dumps(data, separators=(",", ":")).encode() + b"\n\n"


async def sse(stream, include_usage: bool, on_error) -> AsyncIterator[bytes]:
    """The SSE chunks of a streamed answer (`engine_async.AnswerStream`). A failure after the
    first piece ends the stream with an `error` event (no `[DONE]`)."""
    base = {"id": f"chatcmpl-{stream.request_id}", "object": "chat.completion.chunk",
            "created": int(time.time()), "model": stream.target.id}

    def chunk(delta: dict, finish_reason: str | None = None) -> bytes:
        return _event({**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}]})

    yield chunk({"role": "assistant", "content": ""})
    tools = False
    try:
        async for piece in stream:
            if piece.text:
                yield chunk({"content": piece.text})
            if piece.tool_call is not None:
                tools = True
                yield chunk({"tool_calls": [_tool_delta(piece)]})
    except Exception as error:  # noqa: BLE001 - every failure becomes the format's error event
        yield _event(on_error(error))
        return
    answer = stream.answer
    yield chunk({}, finish(answer.finish_reason, tools or bool(answer.tool_calls)))
    if include_usage:
        yield _event({**base, "choices": [], "usage": usage_body(answer.usage)})
    yield b"data: [DONE]\n\n"


def _tool_delta(piece: Chunk) -> dict:
    delta = piece.tool_call
    out: dict = {"index": delta.index}
    function: dict = {"arguments": delta.arguments}
    if delta.id is not None:
        out["id"] = delta.id
        out["type"] = "function"
    if delta.name is not None:
        function["name"] = delta.name
    out["function"] = function
    return out
