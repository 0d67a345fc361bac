"""Cohere Chat v2 (`POST {base}/v2/chat`).

Cohere's v2 request looks OpenAI-like (Bearer auth, a `role: system` message, `max_tokens`),
but the answer is not: text lives in `message.content[]`, usage in `usage.billed_units` (what is
charged; `usage.tokens` adds template overhead and is only a fallback), and the stream is
named SSE events where only `message-end` carries the finish reason and usage. Some servers
append a `data: [DONE]` after `message-end`; it is tolerated, never required. Cohere has no
rate-limit header family of its own; its SDK honours `retry-after(-ms)` and `x-ratelimit-reset`
(epoch seconds), and so do we.

`top_p` is sent as `p`, `stop` as `stop_sequences`. Tools are not translated for this format
(the planner filters Cohere targets out of a request with tools: `catalog.capabilities`).
"""

from __future__ import annotations

from typing import Any, Callable, ClassVar, NoReturn

import httpx

from ..errors import ErrorClass, ProviderError
from ..types import Chunk, RateLimitInfo, Request, Result, Usage
from .base import HeldErrors, classify_by_status, HttpCall, HttpProvider, StreamParser, json_or_none
from .ratelimits import header, retry_after, seconds_until_epoch
from .sse import SSEDecoder
from ..catalog.options import apply as apply_options
from .openai import data_url

_STATUS_CLASSES: dict[int, ErrorClass] = {
    400: ErrorClass.BAD_REQUEST,
    401: ErrorClass.AUTH,
    402: ErrorClass.AUTH,  # billing: this account cannot pay, another provider may
    403: ErrorClass.AUTH,
    404: ErrorClass.NOT_FOUND,
    422: ErrorClass.BAD_REQUEST,
    429: ErrorClass.RATE_LIMITED,
    498: ErrorClass.AUTH,  # invalid token
    499: ErrorClass.CONNECTION,  # client closed request
    500: ErrorClass.SERVER_ERROR,
    503: ErrorClass.OVERLOADED,
    504: ErrorClass.TIMEOUT,
}
_CONTEXT_MARKERS = ("too long", "too many tokens", "context length", "context window", "exceeds the maximum")
# A message-end finish reason that means the answer did not complete.
_FAILED_FINISH = {"ERROR": ErrorClass.SERVER_ERROR, "TIMEOUT": ErrorClass.TIMEOUT}


def classify(status: int, message: str) -> ErrorClass:
    """SPEC §4.1 class for a Cohere HTTP error."""
    return classify_by_status(_STATUS_CLASSES, status, message, _CONTEXT_MARKERS)


def _usage(usage: Any) -> Usage | None:
    """Billed units when present (what Cohere charges), else the raw token counts. Cohere's
    `usage.cached_tokens` (prompt tokens that hit its cache) is kept as the cached part, never
    more than the input it is part of; Cohere publishes no cached rate, so unless the config
    sets `cached_input` it costs the input rate, as billed."""
    if not isinstance(usage, dict):
        return None
    for key in ("billed_units", "tokens"):
        counts = usage.get(key)
        if isinstance(counts, dict) and (counts.get("input_tokens") is not None or counts.get("output_tokens") is not None):
            input_tokens = int(counts.get("input_tokens") or 0)
            cached = usage.get("cached_tokens")
            cached = int(cached) if isinstance(cached, (int, float)) and cached > 0 else 0
            return Usage(input_tokens, int(counts.get("output_tokens") or 0), "provider",
                         cached_input_tokens=min(cached, input_tokens))
    return None


class CohereStreamParser(HeldErrors):
    """Chat v2 SSE -> chunks; `message-end` is the terminator and carries the usage."""

    def __init__(self, redact: Callable[[str], str]):
        self._decoder = SSEDecoder()
        self._redact = redact
        self._text: list[str] = []
        self._done = False

    def feed(self, data: bytes) -> list[Chunk]:
        return self._deliver(self._decoder.feed(data), lambda e: self._handle(e.event, e.data))

    def close(self) -> list[Chunk]:
        self._raise_pending()
        chunks = [c for event in self._decoder.close() for c in self._handle(event.event, event.data)]
        if not self._done:
            self._fail(ErrorClass.MALFORMED, "cohere stream ended before message-end")
        return chunks


    def _handle(self, event: str, data: str) -> list[Chunk]:
        if self._done or data.strip() == "[DONE]":
            return []
        payload = json_or_none(data)
        if not isinstance(payload, dict):
            self._fail(ErrorClass.MALFORMED, f"unparseable cohere stream event {event!r}")
        kind = payload.get("type") or event
        if kind == "content-delta":
            content = ((payload.get("delta") or {}).get("message") or {}).get("content") or {}
            text = content.get("text") if isinstance(content, dict) else None
            if text:
                self._text.append(text)
                return [Chunk(text=text)]
        elif kind == "message-end":
            delta = payload.get("delta") or {}
            finish = delta.get("finish_reason")
            if finish in _FAILED_FINISH:
                self._fail(_FAILED_FINISH[finish], self._redact(f"cohere stream ended with {finish}"))
            self._done = True
            return [Chunk(usage=_usage(delta.get("usage")), finish_reason=finish)]
        elif "message" in payload and "type" not in payload:
            # A bare error object sent as an event instead of an HTTP error.
            self._fail(ErrorClass.SERVER_ERROR, self._redact(f"cohere stream error: {payload['message']}"))
        return []  # message-start, content-start/-end, tool-plan, tool-call, citation, debug

    def _fail(self, error_class: ErrorClass, message: str) -> NoReturn:
        raise ProviderError(error_class, message, partial_text="".join(self._text))


class CohereProvider(HttpProvider):
    """The Cohere v2 format. `now` (epoch seconds) resolves `x-ratelimit-reset` and
    HTTP-date Retry-After values; tests pass a fixed clock."""

    default_base_url: ClassVar[str] = "https://api.cohere.com"



    def build_call(self, request: Request, model: str, *, stream: bool) -> HttpCall:
        messages = [{"role": "system", "content": request.system}] if request.system else []
        messages += [{"role": m.role, "content": m.content} for m in request.messages]
        if request.attachments and messages and messages[-1]["role"] == "user":  # `-a FILE` images
            messages[-1]["content"] = [{"type": "text", "text": messages[-1]["content"]},
                                       *({"type": "image_url", "image_url": {"url": data_url(a)}}
                                         for a in request.attachments)]
        body: dict[str, Any] = {"model": model, "messages": messages, "max_tokens": request.max_tokens}
        if request.temperature is not None:
            body["temperature"] = request.temperature
        if request.top_p is not None:
            body["p"] = request.top_p
        if request.stop:
            body["stop_sequences"] = list(request.stop)
        if request.schema is not None:  # structured output (SPEC §14)
            body["response_format"] = {"type": "json_object", "json_schema": request.schema}
        apply_options(body, request.options, self.config)
        body["stream"] = stream
        return HttpCall("POST", f"{self.base_url}/v2/chat", self.bearer_headers(), body)

    def parse_result(self, body: Any, headers: httpx.Headers) -> Result:
        finish = body.get("finish_reason")
        if finish in _FAILED_FINISH:
            raise ProviderError(_FAILED_FINISH[finish], f"cohere answer ended with {finish}")
        content = body["message"].get("content") or []
        text = "".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type", "text") == "text")
        return Result(text=text, usage=_usage(body.get("usage")), finish_reason=finish)

    def stream_parser(self) -> StreamParser:
        return CohereStreamParser(self.redact)

    def classify_error(self, status: int, headers: httpx.Headers, body: str) -> ProviderError:
        parsed = json_or_none(body)
        message = parsed.get("message") if isinstance(parsed, dict) else None
        message = str(message or body.strip()[:200] or httpx.codes.get_reason_phrase(status))
        now = self.now()
        wait = retry_after(headers, now)
        if wait is None and status == 429:
            wait = seconds_until_epoch(header(headers, "x-ratelimit-reset"), now)
        return ProviderError(
            classify(status, message), f"cohere {status}: {message}",
            http_status=status, retry_after_s=wait,
        )

    def rate_limits(self, headers: httpx.Headers) -> RateLimitInfo | None:
        reset = seconds_until_epoch(header(headers, "x-ratelimit-reset"), self.now())
        return None if reset is None else RateLimitInfo(reset_requests_s=reset)

    def probe_call(self) -> HttpCall:
        return HttpCall("GET", f"{self.base_url}/v1/models?endpoint=chat", self.bearer_headers(json_body=False))

    def parse_probe(self, body: Any) -> list[str]:
        return [str(m["name"]) for m in body.get("models") or [] if isinstance(m, dict) and m.get("name")]


PROVIDER = CohereProvider
