"""The OpenAI Chat Completions wire format, spoken by OpenAI and every compatible server.

One adapter covers OpenAI, Groq, Mistral, OpenRouter, DeepSeek, Together, Fireworks and local
servers (llama.cpp, vLLM, LM Studio, Ollama's `/v1`): they differ only in base URL, key, the
name of the max-tokens field, whether `stream_options` is accepted, and where stream usage
arrives. Those quirks come from `presets.preset_for(config)`; everything else is shared.

Key requirement is decided per configured provider (`providers.needs_key`), not per class: a
preset whose `key_env` is None (a local server), or a plain-HTTP base URL on this machine or a
private network with no key source configured, needs no key, while every hosted service does.

Stream usage is collected from wherever a server puts it (see `OpenAIStreamParser`). Mid-stream
error events and error bodies are classified by the same table (`classify_payload`), so a 502
from OpenRouter means the same thing before and after the first byte of the answer.

Tools are this format's own, so they pass through as they are: `tools`/`tool_choice`,
assistant turns with `tool_calls`, `tool` turns with `tool_call_id`; answers' `tool_calls` become
`Result.tool_calls`, streamed `delta.tool_calls[i]` pieces `Chunk.tool_call` deltas. As in every
format, `finish_reason` is the provider's own (`tool_calls` here); a caller that needs one
vocabulary looks at `Result.tool_calls`. `top_p` and `stop` are sent as named.
"""

from __future__ import annotations

import base64
import json
import mimetypes
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ClassVar

import httpx

from ..errors import ErrorClass, ProviderError
from ..types import Chunk, Message, RateLimitInfo, Request, Result, ToolCall, ToolCallDelta, ToolSpec, Usage
from . import ratelimits
from .base import HttpCall, HttpProvider, json_or_none
from ..catalog.presets import Preset, preset_for
from .openai_errors import MESSAGE_LIMIT, classify_payload, classify_status, error_fields, openai_rate_limits
from .sse import SSEDecoder
from ..catalog.options import apply as apply_options
from ..types import Attachment

OPENAI_BASE_URL = "https://api.openai.com/v1"


@dataclass(frozen=True)
class TranscriptionResult:
    """A speech-to-text answer. `raw` is the body as received (the srt/vtt/text output, or the
    JSON), `text` the transcript; `duration_s` is set when the server billed by duration."""

    text: str
    duration_s: float | None
    usage: Usage | None
    raw: str


class OpenAIProvider(HttpProvider):
    """Chat completions, model listing and transcription over the OpenAI wire format."""

    default_base_url: ClassVar[str] = OPENAI_BASE_URL
    # Wall clock for HTTP-date Retry-After hints; an instance attribute so tests replace it.
    wall_clock: Callable[[], float] = staticmethod(time.time)

    @property
    def preset(self) -> Preset | None:
        return preset_for(self.config)

    @property
    def base_url(self) -> str:
        preset = self.preset
        url = self.config.base_url or (preset.base_url if preset else None) or OPENAI_BASE_URL
        return url.rstrip("/")

    # --- requests ---------------------------------------------------------------------------

    def _headers(self, *, json_body: bool = True) -> dict[str, str]:
        headers = {"Content-Type": "application/json"} if json_body else {}
        if self._key:
            headers["Authorization"] = f"Bearer {self._key}"
        headers.update(self.config.headers)
        return headers

    def build_call(self, request: Request, model: str, *, stream: bool) -> HttpCall:
        preset = self.preset
        messages = [{"role": "system", "content": request.system}] if request.system else []
        messages += [_message(m) for m in request.messages]
        _add_images(messages, request.attachments)
        body: dict[str, Any] = {"model": model, "messages": messages}
        body[preset.max_tokens_field if preset else "max_tokens"] = request.max_tokens
        if request.temperature is not None:
            body["temperature"] = request.temperature
        if request.top_p is not None:
            body["top_p"] = request.top_p
        if request.stop:
            body["stop"] = list(request.stop)
        if request.tools:
            body["tools"] = [_tool(t) for t in request.tools]
            if request.tool_choice:
                body["tool_choice"] = _tool_choice(request.tool_choice)
        if request.schema is not None:  # structured output (SPEC §14)
            body["response_format"] = response_format(request.schema)
        apply_options(body, request.options, self.config)
        if stream:
            body["stream"] = True
            if preset is None or preset.send_stream_options:
                body["stream_options"] = {"include_usage": True}
        return HttpCall("POST", f"{self.base_url}/chat/completions", self._headers(), json=body)

    def probe_call(self) -> HttpCall:
        return HttpCall("GET", f"{self.base_url}/models", self._headers(json_body=False))

    # --- responses --------------------------------------------------------------------------

    def parse_result(self, body: Any, headers: httpx.Headers) -> Result:
        if isinstance(body, dict) and body.get("error") and not body.get("choices"):
            raise self._payload_error(body, None)
        usage = body.get("usage") or None
        if body["choices"] == []:
            # An answer with no choice at all (a filtered completion): no text, which the shared
            # driver reports as `empty`, not a broken body.
            return Result(text="", usage=usage_from(usage), provider_cost_usd=_cost(usage))
        choice = body["choices"][0]
        message = choice.get("message") or {}
        return Result(
            text=message.get("content") or "",
            usage=usage_from(usage),
            finish_reason=choice.get("finish_reason"),
            provider_cost_usd=_cost(usage),
            tool_calls=tuple(
                ToolCall(str(c["id"]), str(c["function"]["name"]), c["function"].get("arguments") or "{}")
                for c in message.get("tool_calls") or ()
            ),
        )

    def stream_parser(self) -> "OpenAIStreamParser":
        return OpenAIStreamParser(on_error=lambda payload: self._payload_error(payload, None))

    def classify_error(self, status: int, headers: httpx.Headers, body: str) -> ProviderError:
        payload = json_or_none(body)
        message, code, kind = error_fields(payload, body)
        error_class, message = classify_status(status, code, kind, message)
        wait = ratelimits.retry_after(headers, self.wall_clock())
        if code == "insufficient_quota" or kind == "insufficient_quota":
            wait = None  # waiting does not refill a quota
        return ProviderError(error_class, message, http_status=status, retry_after_s=wait)

    def rate_limits(self, headers: httpx.Headers) -> RateLimitInfo | None:
        return openai_rate_limits(headers)

    def _payload_error(self, payload: dict, status: int | None) -> ProviderError:
        """An error object inside a 200 body or a stream event, redacted like any other."""
        message, code, kind = error_fields(payload, json.dumps(payload)[:MESSAGE_LIMIT])
        error_class, message = classify_payload(code, kind, message)
        http_status = code if isinstance(code, int) else status
        return ProviderError(error_class, self.redact(message), http_status=http_status)

    # --- transcription ----------------------------------------------------------------------

    def transcribe(
        self, audio: Path, model: str, *, language: str | None, response_format: str, timeout: float
    ) -> TranscriptionResult:
        """Speech to text via `POST {base_url}/audio/transcriptions` (multipart)."""
        mime = mimetypes.guess_type(audio.name)[0] or "application/octet-stream"
        data = {"model": model, "response_format": response_format}
        if language:
            data["language"] = language
        call = HttpCall(
            "POST", f"{self.base_url}/audio/transcriptions", self._headers(json_body=False),
            files={"file": (audio.name, audio.read_bytes(), mime)}, data=data,
        )
        try:
            _, _, body = self._send_buffered(call, timeout)
        except ProviderError as error:
            if error.http_status == 413:
                raise ProviderError(
                    ErrorClass.BAD_REQUEST, f"file too large: {error.message}", http_status=413
                ) from None
            raise
        return parse_transcription(body, response_format)


class OpenAIStreamParser:
    """SSE chunks → `Chunk`s. Usage may come from the `choices: []` usage chunk (OpenAI with
    include_usage), any chunk's non-null `usage` (Mistral, OpenRouter) or Groq's
    `x_groq.usage`; the last one seen wins. One final usage/finish chunk is emitted at
    `[DONE]` (or at the end of a body that at least carried a finish reason)."""

    def __init__(self, on_error: Callable[[dict], ProviderError]):
        self._decoder = SSEDecoder()
        self._on_error = on_error
        self._usage: Usage | None = None
        self._cost: float | None = None  # OpenRouter's `usage.cost`, as in buffered answers
        self._finish: str | None = None
        self._done = False
        self._text: list[str] = []
        self._pending: ProviderError | None = None

    def feed(self, data: bytes) -> list[Chunk]:
        return self._handle(self._decoder.feed(data))

    def close(self) -> list[Chunk]:
        chunks = self._handle(self._decoder.close())
        self._raise_pending()  # last call: text held with it survives in partial_text
        if self._done:
            return chunks
        if self._finish is None:
            raise self._fail(ErrorClass.MALFORMED, "stream ended early (no [DONE] and no finish_reason)")
        return chunks + self._final()

    def _final(self) -> list[Chunk]:
        self._done = True
        return [Chunk(usage=self._usage, finish_reason=self._finish, provider_cost_usd=self._cost)]

    def _fail(self, error_class: ErrorClass, message: str) -> ProviderError:
        return ProviderError(error_class, message, partial_text="".join(self._text))

    def _raise_pending(self) -> None:
        if self._pending is not None:
            error, self._pending = self._pending, None
            self._done = True
            raise error

    def _handle(self, events: list) -> list[Chunk]:
        """Chunks for complete events. An error after some text in the same read is held
        back until the next call, so no text that arrived before the error is lost."""
        self._raise_pending()
        chunks: list[Chunk] = []
        try:
            self._collect(events, chunks)
        except ProviderError as error:
            if not chunks:
                self._done = True
                raise
            self._pending = error
        return chunks

    def _collect(self, events: list, chunks: list[Chunk]) -> None:
        for event in events:
            if self._done:
                break
            data = event.data.strip()
            if data == "[DONE]":
                chunks += self._final()
                break
            try:
                payload = json.loads(data)
            except ValueError:
                raise self._fail(ErrorClass.MALFORMED, f"unparseable stream event: {data[:80]!r}") from None
            if not isinstance(payload, dict):
                raise self._fail(ErrorClass.MALFORMED, f"unexpected stream event: {data[:80]!r}")
            chunks += self._payload(payload)

    def _payload(self, payload: dict) -> list[Chunk]:
        if payload.get("error"):
            error = self._on_error(payload)
            error.partial_text = "".join(self._text)
            raise error
        usage = usage_from(payload.get("usage")) or usage_from((payload.get("x_groq") or {}).get("usage"))
        if usage is not None:
            self._usage = usage
            reported = _cost(payload.get("usage"))
            self._cost = reported if reported is not None else self._cost
        choices = payload.get("choices") or []
        if not choices or not isinstance(choices[0], dict):
            return []
        choice = choices[0]
        if choice.get("finish_reason") == "error":
            raise self._fail(ErrorClass.SERVER_ERROR, "provider reported an error mid-stream")
        if choice.get("finish_reason"):
            self._finish = choice["finish_reason"]
        delta = choice.get("delta") or {}
        chunks = []
        text = delta.get("content")
        if isinstance(text, str) and text:
            self._text.append(text)
            chunks.append(Chunk(text=text))
        for piece in delta.get("tool_calls") or ():
            function = piece.get("function") or {}
            chunks.append(Chunk(tool_call=ToolCallDelta(
                index=int(piece.get("index") or 0), id=piece.get("id"), name=function.get("name"),
                arguments=function.get("arguments") or "",
            )))
        return chunks


# --- shared translation tables ------------------------------------------------------------


def _message(message: Message) -> dict:
    """One turn: assistant turns carry their tool calls, `tool` turns the call they answer."""
    if message.role == "tool":
        return {"role": "tool", "tool_call_id": message.tool_call_id, "content": message.content}
    out: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.tool_calls:
        out["content"] = message.content or None  # a call-only turn has null content
        out["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in message.tool_calls
        ]
    return out


def _tool(tool: ToolSpec) -> dict:
    function: dict[str, Any] = {"name": tool.name}
    if tool.description:
        function["description"] = tool.description
    function["parameters"] = tool.parameters or {"type": "object", "properties": {}}
    return {"type": "function", "function": function}


def _tool_choice(choice: str) -> Any:
    """`auto`/`none`/`required` as they are; any other value names the one tool to call."""
    if choice in ("auto", "none", "required"):
        return choice
    return {"type": "function", "function": {"name": choice}}


def usage_from(usage: Any) -> Usage | None:
    """`prompt_tokens`/`completion_tokens` as reported by the provider, if present, with the
    parts priced at their own rates: `prompt_tokens_details.cached_tokens` (input served from
    the prompt cache), OpenRouter's `prompt_tokens_details.cache_write_tokens`, and
    `completion_tokens_details.reasoning_tokens`. Each part is already inside its total."""
    if not isinstance(usage, dict) or "prompt_tokens" not in usage:
        return None
    prompt = usage.get("prompt_tokens_details")
    prompt = prompt if isinstance(prompt, dict) else {}
    completion = usage.get("completion_tokens_details")
    completion = completion if isinstance(completion, dict) else {}
    return Usage(int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0), "provider",
                 cached_input_tokens=_count(prompt.get("cached_tokens")),
                 cache_write_tokens=_count(prompt.get("cache_write_tokens")),
                 reasoning_tokens=_count(completion.get("reasoning_tokens")))


def _count(value: Any) -> int:
    """A reported token count; absent, null or malformed counts as 0."""
    return int(value) if isinstance(value, (int, float)) and value > 0 else 0


def _cost(usage: Any) -> float | None:
    """OpenRouter's own `usage.cost` in USD."""
    if isinstance(usage, dict) and isinstance(usage.get("cost"), (int, float)):
        return float(usage["cost"])
    return None


def parse_transcription(body: str, response_format: str) -> TranscriptionResult:
    """json/verbose_json bodies carry text and usage; text/srt/vtt come back as raw text."""
    if response_format not in ("json", "verbose_json", "diarized_json"):
        text = body.strip() if response_format == "text" else body
        return TranscriptionResult(text=text, duration_s=None, usage=None, raw=body)
    payload = json_or_none(body)
    if not isinstance(payload, dict) or not isinstance(payload.get("text"), str):
        raise ProviderError(ErrorClass.MALFORMED, "unreadable transcription response")
    usage_raw = payload.get("usage") if isinstance(payload.get("usage"), dict) else {}
    duration = payload.get("duration")
    usage = None
    if usage_raw.get("type") == "duration" and isinstance(usage_raw.get("seconds"), (int, float)):
        duration = usage_raw["seconds"]
    elif usage_raw.get("type") == "tokens":
        usage = Usage(int(usage_raw.get("input_tokens") or 0), int(usage_raw.get("output_tokens") or 0), "provider")
    duration_s = float(duration) if isinstance(duration, (int, float)) else None
    return TranscriptionResult(text=payload["text"], duration_s=duration_s, usage=usage, raw=body)


PROVIDER = OpenAIProvider


def data_url(attachment: Attachment) -> str:
    return f"data:{attachment.media_type};base64,{base64.b64encode(attachment.data).decode('ascii')}"


def _add_images(messages: list[dict], attachments: tuple[Attachment, ...]) -> None:
    """`-a FILE` images join the last user turn: its content becomes a text part followed by
    one `image_url` part per image, each a base64 data URL."""
    if attachments and messages and messages[-1]["role"] == "user":
        last = messages[-1]
        last["content"] = [{"type": "text", "text": last["content"]},
                           *({"type": "image_url", "image_url": {"url": data_url(a)}} for a in attachments)]


def response_format(schema: dict) -> dict:
    """OpenAI's structured outputs. `strict` is asked for only when the schema meets strict
    mode's rules (every object closed with `additionalProperties: false`, every property
    required), which a server otherwise refuses with a 400; the answer is validated either way."""
    name = schema.get("title") if isinstance(schema.get("title"), str) else "answer"
    name = "".join(c if c.isalnum() or c in "_-" else "_" for c in name)[:64] or "answer"
    return {"type": "json_schema", "json_schema": {"name": name, "schema": schema, "strict": strict_ready(schema)}}


def strict_ready(schema: Any) -> bool:
    """Whether every object in the schema is closed and requires all its properties."""
    if isinstance(schema, list):
        return all(strict_ready(item) for item in schema)
    if not isinstance(schema, dict):
        return True
    if schema.get("type") == "object" or "properties" in schema:
        properties = schema.get("properties") or {}
        if schema.get("additionalProperties") is not False or set(schema.get("required") or ()) != set(properties):
            return False
    return all(strict_ready(value) for key, value in schema.items()
               if key not in ("enum", "const", "default", "examples", "required"))
