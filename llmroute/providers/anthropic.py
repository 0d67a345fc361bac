"""Anthropic Messages API (`POST {base}/v1/messages`).

Anthropic differs from the OpenAI shape in ways that matter to a router: `max_tokens` is
mandatory, the system prompt is a top-level field, the stream is named SSE events ending with
`message_stop` (input tokens arrive in `message_start`, the cumulative output count in
`message_delta`), overload is its own status (529), and rate-limit resets are RFC 3339 instants,
converted here to seconds from now through an injectable clock so tests never read real time.
"""

from __future__ import annotations

import json
from typing import Any, Callable, ClassVar

import httpx

from ..errors import ErrorClass, ProviderError
from ..types import Chunk, RateLimitInfo, Request, Result, Usage
from .base import HeldErrors, HttpCall, HttpProvider, StreamParser, json_or_none
from .ratelimits import header, parse_int, retry_after, seconds_until_rfc3339
from .sse import SSEDecoder

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


class AnthropicStreamParser(HeldErrors):
    """Messages SSE -> chunks. Text comes from `text_delta`s; the usage chunk is emitted at
    `message_stop`, the only proper end of the stream."""

    def __init__(self, redact: Callable[[str], str]):
        self._decoder = SSEDecoder()
        self._redact = redact
        self._input_tokens = 0
        self._output_tokens = 0
        self._stop_reason: str | None = None
        self._text: list[str] = []
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
            usage = (payload.get("message") or {}).get("usage") or {}
            self._input_tokens = int(usage.get("input_tokens") or 0)
            self._output_tokens = int(usage.get("output_tokens") or 0)
        elif kind == "content_block_delta":
            delta = payload.get("delta") or {}
            if delta.get("type") == "text_delta" and delta.get("text"):
                self._text.append(delta["text"])
                return [Chunk(text=delta["text"])]
        elif kind == "message_delta":
            self._apply_delta(payload)
        elif kind == "message_stop":
            self._done = True
            usage = Usage(self._input_tokens, self._output_tokens)
            return [Chunk(usage=usage, finish_reason=self._stop_reason)]
        return []  # ping, content_block_start/stop, thinking and tool deltas

    def _apply_delta(self, payload: dict) -> None:
        delta = payload.get("delta") or {}
        if delta.get("stop_reason"):
            self._stop_reason = delta["stop_reason"]
        usage = payload.get("usage") or {}
        if usage.get("output_tokens") is not None:
            self._output_tokens = int(usage["output_tokens"])  # cumulative, not an increment
        if usage.get("input_tokens") is not None:
            self._input_tokens = int(usage["input_tokens"])


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
            "messages": [{"role": m.role, "content": m.content} for m in request.messages],
        }
        if request.system:
            body["system"] = request.system
        if request.temperature is not None:
            body["temperature"] = request.temperature
        if stream:
            body["stream"] = True
        return HttpCall("POST", f"{self.base_url}/v1/messages", self._headers(), body)

    def parse_result(self, body: Any, headers: httpx.Headers) -> Result:
        if body.get("type") == "error":
            raise self.classify_error(200, headers, json.dumps(body))
        text = "".join(
            block.get("text", "") for block in body["content"] if block.get("type") == "text"
        )
        usage_body = body.get("usage") or {}
        usage = None
        if usage_body:
            usage = Usage(int(usage_body.get("input_tokens") or 0), int(usage_body.get("output_tokens") or 0))
        return Result(text=text, usage=usage, finish_reason=body.get("stop_reason"))

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
