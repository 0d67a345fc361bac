"""Ollama's native chat API (`POST {base}/api/chat`), local or Ollama cloud.

Ollama needs no key on a local machine, so `requires_key` is False and the `Authorization`
header is sent only when a key was configured (Ollama cloud). Its stream is NDJSON — one JSON
object per line, ending with a `"done": true` object that carries the token counts — and it
streams by default, so `stream` is always sent explicitly. Errors are a bare
`{"error": "<text>"}`, both as HTTP bodies and as a line in the middle of a 200 stream.

`top_p` and `stop` go in `options` with the sampling settings. Tools are not translated for
the native API (the planner filters these targets out of a request with tools:
`catalog.capabilities`); Ollama's `/v1` endpoint, an OpenAI-format preset, takes them.
"""

from __future__ import annotations

import base64
import json
from typing import Any, Callable, ClassVar, NoReturn

import httpx

from ..errors import ErrorClass, ProviderError
from ..types import Chunk, Request, Result, Usage
from .base import HeldErrors, classify_by_status, HttpCall, HttpProvider, StreamParser, json_or_none
from .ratelimits import retry_after
from .sse import NDJSONDecoder
from ..catalog.options import apply as apply_options

_STATUS_CLASSES: dict[int, ErrorClass] = {
    400: ErrorClass.BAD_REQUEST,
    401: ErrorClass.AUTH,
    403: ErrorClass.AUTH,
    404: ErrorClass.NOT_FOUND,
    429: ErrorClass.RATE_LIMITED,
    500: ErrorClass.SERVER_ERROR,
    502: ErrorClass.OVERLOADED,
    503: ErrorClass.OVERLOADED,
    504: ErrorClass.TIMEOUT,
}
_CONTEXT_MARKERS = ("context length", "context window", "exceeds the context", "input length")


def classify(status: int, message: str) -> ErrorClass:
    """SPEC §4.1 class for an Ollama HTTP error."""
    return classify_by_status(_STATUS_CLASSES, status, message, _CONTEXT_MARKERS)


def _error_text(body: Any) -> str | None:
    error = body.get("error") if isinstance(body, dict) else None
    if error is None:
        return None
    if isinstance(error, dict):  # tolerate an OpenAI-style object from a proxy in front
        return str(error.get("message") or json.dumps(error))
    return str(error)


def _usage(body: dict) -> Usage:
    """Counts are `omitempty` in Ollama's Go types: an absent count means zero."""
    return Usage(int(body.get("prompt_eval_count") or 0), int(body.get("eval_count") or 0))


class OllamaStreamParser(HeldErrors):
    """NDJSON chat stream -> chunks; the `done` object becomes the final usage chunk."""

    def __init__(self, redact: Callable[[str], str]):
        self._decoder = NDJSONDecoder()
        self._redact = redact
        self._text: list[str] = []
        self._done = False

    def feed(self, data: bytes) -> list[Chunk]:
        return self._deliver(self._decoder.feed(data), self._line)

    def close(self) -> list[Chunk]:
        self._raise_pending()
        chunks = [c for line in self._decoder.close() for c in self._line(line)]
        if not self._done:
            self._fail(ErrorClass.MALFORMED, "ollama stream ended before a done message")
        return chunks


    def _line(self, line: str) -> list[Chunk]:
        if self._done:
            return []
        payload = json_or_none(line)
        if not isinstance(payload, dict):
            self._fail(ErrorClass.MALFORMED, "unparseable ollama stream line")
        error = _error_text(payload)
        if error is not None:
            error_class = ErrorClass.NOT_FOUND if "not found" in error.lower() else ErrorClass.SERVER_ERROR
            self._fail(error_class, self._redact(f"ollama stream error: {error}"))
        chunks = []
        content = (payload.get("message") or {}).get("content") or ""
        if content:
            self._text.append(content)
            chunks.append(Chunk(text=content))
        if payload.get("done"):
            self._done = True
            chunks.append(Chunk(usage=_usage(payload), finish_reason=payload.get("done_reason")))
        return chunks

    def _fail(self, error_class: ErrorClass, message: str) -> NoReturn:
        raise ProviderError(error_class, message, partial_text="".join(self._text))


class OllamaProvider(HttpProvider):
    """The Ollama native format. `now` resolves HTTP-date Retry-After (Ollama cloud)."""

    default_base_url: ClassVar[str] = "http://localhost:11434"
    requires_key: ClassVar[bool] = False



    def build_call(self, request: Request, model: str, *, stream: bool) -> HttpCall:
        messages = [{"role": "system", "content": request.system}] if request.system else []
        messages += [{"role": m.role, "content": m.content} for m in request.messages]
        if request.attachments and messages and messages[-1]["role"] == "user":  # `-a FILE` images
            messages[-1]["images"] = [base64.b64encode(a.data).decode("ascii") for a in request.attachments]
        options: dict[str, Any] = {"num_predict": request.max_tokens}
        if request.temperature is not None:
            options["temperature"] = request.temperature
        if request.top_p is not None:
            options["top_p"] = request.top_p
        if request.stop:
            options["stop"] = list(request.stop)
        body: dict[str, Any] = {"model": model, "messages": messages, "stream": stream, "options": options}
        if request.schema is not None:  # structured output: the schema as `format` (SPEC §14)
            body["format"] = request.schema
        apply_options(body, request.options, self.config)
        return HttpCall("POST", f"{self.base_url}/api/chat", self.bearer_headers(), body)

    def parse_result(self, body: Any, headers: httpx.Headers) -> Result:
        error = _error_text(body)
        if error is not None:
            raise ProviderError(ErrorClass.SERVER_ERROR, self.redact(f"ollama: {error}"))
        return Result(
            text=str(body["message"].get("content") or ""),
            usage=_usage(body),
            finish_reason=body.get("done_reason"),
        )

    def stream_parser(self) -> StreamParser:
        return OllamaStreamParser(self.redact)

    def classify_error(self, status: int, headers: httpx.Headers, body: str) -> ProviderError:
        message = _error_text(json_or_none(body)) or body.strip()[:200] or httpx.codes.get_reason_phrase(status)
        return ProviderError(
            classify(status, message), f"ollama {status}: {message}",
            http_status=status, retry_after_s=retry_after(headers, self.now()),
        )

    def probe_call(self) -> HttpCall:
        return HttpCall("GET", f"{self.base_url}/api/tags", self.bearer_headers(json_body=False))

    def parse_probe(self, body: Any) -> list[str]:
        return [str(m["name"]) for m in body.get("models") or [] if isinstance(m, dict) and m.get("name")]


PROVIDER = OllamaProvider
