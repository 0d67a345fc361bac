"""Anthropic Messages API (`POST {base}/v1/messages`).

Anthropic differs from the OpenAI shape in ways that matter to a router: `max_tokens` is
mandatory, the system prompt is a top-level field, the stream is named SSE events ending with
`message_stop` (input tokens arrive in `message_start`, the cumulative output count in
`message_delta`), overload is its own status (529), and rate-limit resets are RFC 3339 instants,
converted here to seconds from now through an injectable clock so tests never read real time.

Tools are translated: `tools` carry `input_schema`, `tool_choice` is an object (`required` is
`any`), an assistant turn's calls are `tool_use` blocks whose `input` is the parsed arguments
object, results are `tool_result` blocks in a user turn. Answers' `tool_use` blocks become
`Result.tool_calls` (arguments written back as JSON text); in a stream, `content_block_start`
of a `tool_use` block gives a call's id and name and each `input_json_delta` a fragment of its
arguments. `finish_reason` stays Anthropic's own (`tool_use`). `stop` is `stop_sequences`.
"""

from __future__ import annotations

import base64
import json
from typing import Any, Callable, ClassVar

import httpx

from ..errors import ErrorClass, ProviderError
from ..types import Chunk, Message, RateLimitInfo, Request, Result, ToolCall, ToolCallDelta, ToolSpec, Usage
from .base import HeldErrors, HttpCall, HttpProvider, StreamParser, json_or_none
from .ratelimits import header, parse_int, retry_after, seconds_until_rfc3339
from .sse import SSEDecoder
from .tool_args import arguments_object, arguments_text
from ..catalog.options import apply as apply_options
from ..structured import ANSWER_TOOL
from ..types import Attachment

API_VERSION = "2023-06-01"

# error.type -> class; the status code decides when the type is missing or unknown.
_TYPE_CLASSES: dict[str, ErrorClass] = {
    "overloaded_error": ErrorClass.OVERLOADED,
    "rate_limit_error": ErrorClass.RATE_LIMITED,
    "authentication_error": ErrorClass.AUTH,
    "permission_error": ErrorClass.AUTH,
    "billing_error": ErrorClass.AUTH,
    "not_found_error": ErrorClass.NOT_FOUND,
    "request_too_large": ErrorClass.CONTEXT_LENGTH,
    "api_error": ErrorClass.SERVER_ERROR,
    "timeout_error": ErrorClass.TIMEOUT,
    "invalid_request_error": ErrorClass.BAD_REQUEST,
}
_STATUS_CLASSES: dict[int, ErrorClass] = {
    401: ErrorClass.AUTH,
    402: ErrorClass.AUTH,
    403: ErrorClass.AUTH,
    404: ErrorClass.NOT_FOUND,
    413: ErrorClass.CONTEXT_LENGTH,
    429: ErrorClass.RATE_LIMITED,
    503: ErrorClass.OVERLOADED,
    504: ErrorClass.TIMEOUT,
    529: ErrorClass.OVERLOADED,
}
_CONTEXT_MARKERS = ("prompt is too long", "context window", "context length", "exceed context limit")


# Statuses that mean "busy, come back" whatever error type the body names (a 503 may say
# `api_error`, or carry a gateway's HTML): SPEC §4.1 records them as `overloaded`.
_OVERLOADED_STATUSES = frozenset({503, 529})


def classify(status: int | None, error_type: str, message: str) -> ErrorClass:
    """SPEC §4.1 class for an Anthropic error: 503 and 529 are always `overloaded`; otherwise
    the error type wins, the status decides the rest, and an invalid request that complains
    about length is a context-length error."""
    if status in _OVERLOADED_STATUSES:
        return ErrorClass.OVERLOADED
    error_class = _TYPE_CLASSES.get(error_type)
    if error_class is None and status is not None:
        error_class = _STATUS_CLASSES.get(status)
        if error_class is None:
            error_class = ErrorClass.SERVER_ERROR if status >= 500 else ErrorClass.BAD_REQUEST
    if error_class is None:
        error_class = ErrorClass.SERVER_ERROR  # an unknown in-stream error type
    if error_class is ErrorClass.BAD_REQUEST and any(m in message.lower() for m in _CONTEXT_MARKERS):
        return ErrorClass.CONTEXT_LENGTH
    return error_class


def _error_fields(body: Any) -> tuple[str, str]:
    """(error.type, error.message) of an Anthropic error body, tolerating other shapes."""
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return str(error.get("type") or ""), str(error.get("message") or "")
    return "", ""


def _messages(messages: tuple[Message, ...]) -> list[dict]:
    """Turns in Anthropic's shape. Plain turns keep string content; an assistant turn with tool
    calls becomes text + `tool_use` blocks; `tool` turns become `tool_result` blocks of one user
    turn (consecutive results merge, and a user turn right after them joins it as a text
    block), since Anthropic wants user and assistant turns to alternate."""
    out: list[dict] = []
    for m in messages:
        if m.role == "tool":
            block = {"type": "tool_result", "tool_use_id": m.tool_call_id, "content": m.content}
            if out and out[-1]["role"] == "user" and isinstance(out[-1]["content"], list):
                out[-1]["content"].append(block)
            else:
                out.append({"role": "user", "content": [block]})
        elif m.role == "assistant" and m.tool_calls:
            blocks: list[dict] = [{"type": "text", "text": m.content}] if m.content else []
            blocks += [
                {"type": "tool_use", "id": c.id, "name": c.name, "input": arguments_object(c)}
                for c in m.tool_calls
            ]
            out.append({"role": "assistant", "content": blocks})
        elif m.role == "user" and out and out[-1]["role"] == "user" and isinstance(out[-1]["content"], list):
            out[-1]["content"].append({"type": "text", "text": m.content})
        else:
            out.append({"role": m.role, "content": m.content})
    return out


def _tool(tool: ToolSpec) -> dict:
    out: dict[str, Any] = {"name": tool.name}
    if tool.description:
        out["description"] = tool.description
    out["input_schema"] = tool.parameters or {"type": "object", "properties": {}}
    return out


def _tool_choice(choice: str) -> dict:
    """`auto`/`none` as they are, `required` is Anthropic's `any`, anything else names a tool."""
    if choice in ("auto", "none"):
        return {"type": choice}
    if choice == "required":
        return {"type": "any"}
    return {"type": "tool", "name": choice}


_USAGE_FIELDS = ("input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens")


def usage_from(usage: Any) -> Usage:
    """Anthropic reports `input_tokens` (uncached input only), `cache_read_input_tokens` and
    `cache_creation_input_tokens` side by side; `Usage.input_tokens` counts every input token,
    so the three are added and the cache parts kept for their own rates. Thinking tokens are
    inside `output_tokens` and not reported apart."""
    usage = usage if isinstance(usage, dict) else {}

    def count(key: str) -> int:
        value = usage.get(key)
        return int(value) if isinstance(value, (int, float)) and value > 0 else 0

    read, write = count("cache_read_input_tokens"), count("cache_creation_input_tokens")
    return Usage(count("input_tokens") + read + write, count("output_tokens"), "provider",
                 cached_input_tokens=read, cache_write_tokens=write)


class AnthropicStreamParser(HeldErrors):
    """Messages SSE -> chunks. Text comes from `text_delta`s; the usage chunk is emitted at
    `message_stop`, the only proper end of the stream."""

    def __init__(self, redact: Callable[[str], str]):
        self._decoder = SSEDecoder()
        self._redact = redact
        self._usage: dict[str, int] = {}  # the raw usage fields, latest report wins
        self._stop_reason: str | None = None
        self._text: list[str] = []
        self._tools: dict[Any, int] = {}  # content block index -> tool call index
        self._done = False

    def feed(self, data: bytes) -> list[Chunk]:
        return self._deliver(self._decoder.feed(data), lambda e: self._handle(e.event, e.data))

    def close(self) -> list[Chunk]:
        self._raise_pending()
        chunks = [c for event in self._decoder.close() for c in self._handle(event.event, event.data)]
        if not self._done:
            raise ProviderError(
                ErrorClass.MALFORMED, "anthropic stream ended before message_stop",
                partial_text="".join(self._text),
            )
        return chunks


    def _handle(self, event: str, data: str) -> list[Chunk]:
        if self._done:
            return []
        payload = json_or_none(data)
        if not isinstance(payload, dict):
            raise ProviderError(
                ErrorClass.MALFORMED, f"unparseable anthropic stream event {event!r}",
                partial_text="".join(self._text),
            )
        kind = payload.get("type") or event
        if kind == "error":
            error_type, message = _error_fields(payload)
            raise ProviderError(
                classify(None, error_type, message),
                self._redact(f"anthropic stream error {error_type}: {message}"),
                partial_text="".join(self._text),
            )
        if kind == "message_start":
            self._note_usage((payload.get("message") or {}).get("usage"))
        elif kind == "content_block_start":
            block = payload.get("content_block") or {}
            if block.get("type") == "tool_use":
                # Tool calls are numbered among themselves, not among all content blocks.
                index = self._tools[payload.get("index")] = len(self._tools)
                return [Chunk(tool_call=ToolCallDelta(index, id=block.get("id"), name=block.get("name")))]
        elif kind == "content_block_delta":
            delta = payload.get("delta") or {}
            if delta.get("type") == "text_delta" and delta.get("text"):
                self._text.append(delta["text"])
                return [Chunk(text=delta["text"])]
            if delta.get("type") == "input_json_delta" and delta.get("partial_json") \
                    and payload.get("index") in self._tools:
                index = self._tools[payload["index"]]
                return [Chunk(tool_call=ToolCallDelta(index, arguments=delta["partial_json"]))]
        elif kind == "message_delta":
            self._apply_delta(payload)
        elif kind == "message_stop":
            self._done = True
            return [Chunk(usage=usage_from(self._usage), finish_reason=self._stop_reason)]
        return []  # ping, content_block_stop, text block starts, thinking deltas

    def _apply_delta(self, payload: dict) -> None:
        delta = payload.get("delta") or {}
        if delta.get("stop_reason"):
            self._stop_reason = delta["stop_reason"]
        # Counts here are cumulative, not increments: output_tokens is the final count, and the
        # input and cache fields, when repeated, restate message_start's.
        self._note_usage(payload.get("usage"))

    def _note_usage(self, usage: Any) -> None:
        if isinstance(usage, dict):
            self._usage.update({k: int(v) for k, v in usage.items()
                                if k in _USAGE_FIELDS and isinstance(v, (int, float))})


class AnthropicProvider(HttpProvider):
    """The Anthropic wire format. `now` (epoch seconds) resolves RFC 3339 resets and
    HTTP-date Retry-After values; tests pass a fixed clock."""

    default_base_url: ClassVar[str] = "https://api.anthropic.com"


    def _headers(self, *, json_body: bool = True) -> dict[str, str]:
        headers = {"anthropic-version": API_VERSION}
        if json_body:
            headers["content-type"] = "application/json"
        if self._key:
            headers["x-api-key"] = self._key
        headers.update(self.config.headers)
        return headers

    def build_call(self, request: Request, model: str, *, stream: bool) -> HttpCall:
        body: dict[str, Any] = {
            "model": model,
            "max_tokens": request.max_tokens,
            "messages": _with_images(_messages(request.messages), request.attachments),
        }
        if request.system:
            body["system"] = request.system
        if request.temperature is not None:
            body["temperature"] = request.temperature
        if request.top_p is not None:
            body["top_p"] = request.top_p
        if request.stop:
            body["stop_sequences"] = list(request.stop)
        if request.tools:
            body["tools"] = [_tool(t) for t in request.tools]
            if request.tool_choice:
                body["tool_choice"] = _tool_choice(request.tool_choice)
        if request.schema is not None:  # a forced tool whose input is the answer (SPEC §14)
            body["tools"] = [*body.get("tools", ()), {"name": ANSWER_TOOL, "input_schema": request.schema}]
            body["tool_choice"] = {"type": "tool", "name": ANSWER_TOOL}
        apply_options(body, request.options, self.config)
        if stream:
            body["stream"] = True
        return HttpCall("POST", f"{self.base_url}/v1/messages", self._headers(), body)

    def parse_result(self, body: Any, headers: httpx.Headers) -> Result:
        if body.get("type") == "error":
            raise self.classify_error(200, headers, json.dumps(body))
        text = "".join(
            block.get("text", "") for block in body["content"] if block.get("type") == "text"
        )
        calls = tuple(
            ToolCall(str(block["id"]), str(block["name"]), arguments_text(block.get("input")))
            for block in body["content"] if block.get("type") == "tool_use"
        )
        usage = usage_from(body.get("usage")) if body.get("usage") else None
        return Result(text=text, usage=usage, finish_reason=body.get("stop_reason"), tool_calls=calls)

    def stream_parser(self) -> StreamParser:
        return AnthropicStreamParser(self.redact)

    def classify_error(self, status: int, headers: httpx.Headers, body: str) -> ProviderError:
        error_type, message = _error_fields(json_or_none(body))
        if not message:
            message = body.strip()[:200] or httpx.codes.get_reason_phrase(status)
        label = f"{status} {error_type}" if error_type else str(status)
        return ProviderError(
            classify(status, error_type, message),
            f"anthropic {label}: {message}",
            http_status=status,
            retry_after_s=retry_after(headers, self.now()),
        )

    def rate_limits(self, headers: httpx.Headers) -> RateLimitInfo | None:
        now = self.now()
        prefix = "anthropic-ratelimit-"
        info = RateLimitInfo(
            limit_requests=parse_int(header(headers, prefix + "requests-limit")),
            remaining_requests=parse_int(header(headers, prefix + "requests-remaining")),
            reset_requests_s=seconds_until_rfc3339(header(headers, prefix + "requests-reset"), now),
            limit_tokens=parse_int(header(headers, prefix + "tokens-limit")),
            remaining_tokens=parse_int(header(headers, prefix + "tokens-remaining")),
            reset_tokens_s=seconds_until_rfc3339(header(headers, prefix + "tokens-reset"), now),
        )
        return None if info.is_empty else info

    def probe_call(self) -> HttpCall:
        return HttpCall("GET", f"{self.base_url}/v1/models", self._headers(json_body=False))

    def parse_probe(self, body: Any) -> list[str]:
        return [str(m["id"]) for m in body.get("data") or [] if isinstance(m, dict) and m.get("id")]


PROVIDER = AnthropicProvider


def _with_images(messages: list[dict], attachments: tuple[Attachment, ...]) -> list[dict]:
    """`-a FILE` images join the last user turn as base64 `image` blocks, before its text
    (Anthropic's vision guide: images first)."""
    if not attachments or not messages or messages[-1]["role"] != "user":
        return messages
    last = messages[-1]
    text = last["content"]
    blocks = text if isinstance(text, list) else [{"type": "text", "text": text}]
    images = [{"type": "image", "source": {"type": "base64", "media_type": a.media_type,
                                           "data": base64.b64encode(a.data).decode("ascii")}}
              for a in attachments]
    return [*messages[:-1], {**last, "content": [*images, *blocks]}]
