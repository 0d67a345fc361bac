"""The Anthropic Messages wire format: a request body → `Request`; an `Answer` or a stream of
`Chunk`s → the message or its named-event stream (`message_start` … `message_stop`)."""

from __future__ import annotations

import json
from typing import AsyncIterator

from ..config.model import Config
from ..types import Answer, Message, Request, ToolCall, ToolSpec, Usage
from .common import Parsed, arguments_object, bad, finish, integer, number, options_for, stops

STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use", "content_filter": "end_turn"}


def parse(config: Config, body: dict) -> Parsed:
    options = options_for(config, body.get("model"))
    raw = body.get("messages")
    if not isinstance(raw, list) or not raw:
        raise bad("`messages` must be a non-empty list")
    messages: list[Message] = []
    for index, item in enumerate(raw):
        if not isinstance(item, dict) or item.get("role") not in ("user", "assistant"):
            raise bad(f"messages[{index}] must be an object with role user or assistant")
        messages += _turn(item["role"], item.get("content"), index)
    max_tokens = integer(body, "max_tokens")
    if max_tokens is None:
        raise bad("`max_tokens` is required")
    request = Request(
        messages=tuple(messages), system=_system(body.get("system")), max_tokens=max_tokens,
        temperature=number(body, "temperature", 0, 1), top_p=number(body, "top_p", 0, 1),
        stop=stops(body.get("stop_sequences"), "stop_sequences"),
        tools=tuple(_tool_spec(t) for t in body.get("tools") or []),
        tool_choice=_tool_choice(body.get("tool_choice")),
    )
    return Parsed(request, options, body.get("stream") is True)


def _system(system: object) -> str | None:
    if system is None or isinstance(system, str):
        return system or None
    if isinstance(system, list):
        return "\n\n".join(str(b.get("text", "")) for b in system if isinstance(b, dict)) or None
    raise bad("`system` must be a string or a list of text blocks")


def _turn(role: str, content: object, index: int) -> list[Message]:
    if isinstance(content, str):
        return [Message(role, content)]
    if not isinstance(content, list):
        raise bad(f"messages[{index}].content must be a string or a list of blocks")
    texts: list[str] = []
    calls: list[ToolCall] = []
    results: list[Message] = []
    for block in content:
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text":
            texts.append(str(block.get("text", "")))
        elif kind == "tool_use" and role == "assistant":
            calls.append(ToolCall(id=str(block.get("id", "")), name=str(block.get("name", "")),
                                  arguments=json.dumps(block.get("input") or {})))
        elif kind == "tool_result" and role == "user":
            results.append(Message("tool", _result_text(block.get("content")),
                                   tool_call_id=str(block.get("tool_use_id", ""))))
        else:
            raise bad(f"messages[{index}]: unsupported content block {kind!r}")
    out = results
    if texts or calls or not results:
        out = out + [Message(role, "".join(texts), tool_calls=tuple(calls))]
    return out


def _result_text(content: object) -> str:
    if isinstance(content, list):
        return "".join(str(b.get("text", "")) for b in content if isinstance(b, dict))
    return "" if content is None else str(content)


def _tool_spec(item: object) -> ToolSpec:
    if not isinstance(item, dict) or not isinstance(item.get("name"), str):
        raise bad("tools: each needs `name` and `input_schema`")
    return ToolSpec(name=item["name"], description=item.get("description"),
                    parameters=item.get("input_schema") or {})


def _tool_choice(choice: object) -> str | None:
    if choice is None:
        return None
    kind = choice.get("type") if isinstance(choice, dict) else None
    if kind in ("auto", "none"):
        return kind
    if kind == "any":
        return "required"
    if kind == "tool" and isinstance(choice.get("name"), str):
        return choice["name"]
    raise bad("`tool_choice` must be {type: auto|any|none} or {type: tool, name}")


def usage_body(usage: Usage | None) -> dict:
    return {"input_tokens": usage.input_tokens if usage else 0,
            "output_tokens": usage.output_tokens if usage else 0}


def response_body(answer: Answer) -> dict:
    content: list[dict] = [{"type": "text", "text": answer.text}] if answer.text else []
    content += [{"type": "tool_use", "id": c.id, "name": c.name, "input": arguments_object(c.arguments)}
                for c in answer.tool_calls]
    return {"id": f"msg_{answer.request_id}", "type": "message", "role": "assistant",
            "model": answer.target.id, "content": content,
            "stop_reason": STOP_REASONS[finish(answer.finish_reason, bool(answer.tool_calls))],
            "stop_sequence": None, "usage": usage_body(answer.usage)}


def _event(name: str, data: dict) -> bytes:
    return f"event: {name}\ndata: ".encode() + json.dumps(data, separators=(",", ":")).encode() + b"\n\n"


async def sse(stream, on_error) -> AsyncIterator[bytes]:
    """The named events of a streamed answer. Text is block 0 when it comes first; each tool
    call is a block of its own. A failure after the first piece ends with an `error` event."""
    yield _event("message_start", {"type": "message_start", "message": {
        "id": f"msg_{stream.request_id}", "type": "message", "role": "assistant", "model": stream.target.id,
        "content": [], "stop_reason": None, "stop_sequence": None, "usage": usage_body(None)}})
    block = -1
    open_kind: str | None = None  # "text", or ("tool", index of the call)
    tools = False

    def stop_block() -> bytes:
        return _event("content_block_stop", {"type": "content_block_stop", "index": block})

    try:
        async for piece in stream:
            if piece.text:
                if open_kind != "text":
                    if open_kind is not None:
                        yield stop_block()
                    block += 1
                    open_kind = "text"
                    yield _event("content_block_start", {"type": "content_block_start", "index": block,
                                                         "content_block": {"type": "text", "text": ""}})
                yield _event("content_block_delta", {"type": "content_block_delta", "index": block,
                                                     "delta": {"type": "text_delta", "text": piece.text}})
            delta = piece.tool_call
            if delta is not None:
                tools = True
                if open_kind != ("tool", delta.index):
                    if open_kind is not None:
                        yield stop_block()
                    block += 1
                    open_kind = ("tool", delta.index)
                    yield _event("content_block_start", {"type": "content_block_start", "index": block,
                                                         "content_block": {"type": "tool_use", "id": delta.id or "",
                                                                           "name": delta.name or "", "input": {}}})
                if delta.arguments:
                    yield _event("content_block_delta", {"type": "content_block_delta", "index": block, "delta": {
                        "type": "input_json_delta", "partial_json": delta.arguments}})
    except Exception as error:  # noqa: BLE001 - every failure becomes the format's error event
        yield _event("error", on_error(error))
        return
    if open_kind is not None:
        yield stop_block()
    answer = stream.answer
    reason = STOP_REASONS[finish(answer.finish_reason, tools or bool(answer.tool_calls))]
    yield _event("message_delta", {"type": "message_delta", "delta": {"stop_reason": reason, "stop_sequence": None},
                                   "usage": usage_body(answer.usage)})
    yield _event("message_stop", {"type": "message_stop"})
