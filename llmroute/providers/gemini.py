"""Google Gemini Developer API (v1beta `generateContent` / `streamGenerateContent?alt=sse`).

What makes Gemini its own format: camelCase bodies with `user`/`model` roles and a separate
`systemInstruction`; errors are google.rpc.Status objects whose *details* carry the meaning (a
bad key is a 400 with ErrorInfo `API_KEY_INVALID`, a 429 says how long to wait in
`RetryInfo.retryDelay`); and the stream has no terminator — each SSE event is a complete
response, and the body simply ends after the chunk carrying `finishReason`. The stream parser
therefore treats "ended without any finishReason" as a broken stream, and also recognises a
bare JSON error object written into the body instead of an SSE event (the SDK brace-balances
such lines too).

Tools are translated: `tools: [{functionDeclarations}]`, `toolConfig.functionCallingConfig`
(`required` is ANY; a tool's name is ANY with `allowedFunctionNames`), an assistant turn's calls
are `functionCall` parts (arguments as an object), results `functionResponse` parts naming the
function (found through the call's id). Answers' `functionCall` parts become `Result.tool_calls`;
a stream carries whole calls, each one `Chunk.tool_call` delta with all its arguments.
`finish_reason` stays Gemini's own — `STOP` for a tool-call answer too, so callers look at
`Result.tool_calls`. `top_p`/`stop` are `generationConfig.topP`/`stopSequences`.
"""

from __future__ import annotations

import base64
import codecs
import re
import uuid
from typing import Any, Callable, ClassVar, NoReturn

import httpx

from ..errors import ErrorClass, ProviderError
from ..types import Chunk, Message, Request, Result, ToolCall, ToolCallDelta, ToolSpec, Usage
from .base import HeldErrors, HttpCall, HttpProvider, StreamParser, json_or_none
from .ratelimits import retry_after
from .tool_args import arguments_object, arguments_text
from ..catalog.options import apply as apply_options
from ..types import Attachment

_RPC_TYPE = "type.googleapis.com/google.rpc."
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?|\.\d+)s\s*$")
_CONTEXT_MARKERS = (
    "exceeds the maximum number of tokens",
    "input token count",
    "too many tokens",
    "context length",
    "context window",
    "prompt is too long",
)
_STATUS_CLASSES: dict[int, ErrorClass] = {
    401: ErrorClass.AUTH,
    403: ErrorClass.AUTH,
    404: ErrorClass.NOT_FOUND,
    429: ErrorClass.RATE_LIMITED,
    500: ErrorClass.SERVER_ERROR,
    503: ErrorClass.OVERLOADED,
    504: ErrorClass.TIMEOUT,
}
_RPC_STATUS_CLASSES: dict[str, ErrorClass] = {
    "UNAUTHENTICATED": ErrorClass.AUTH,
    "PERMISSION_DENIED": ErrorClass.AUTH,
    "NOT_FOUND": ErrorClass.NOT_FOUND,
    "RESOURCE_EXHAUSTED": ErrorClass.RATE_LIMITED,
    "INTERNAL": ErrorClass.SERVER_ERROR,
    "UNAVAILABLE": ErrorClass.OVERLOADED,
    "DEADLINE_EXCEEDED": ErrorClass.TIMEOUT,
}


def parse_duration(text: Any) -> float | None:
    """Seconds in a protobuf Duration string (`"36s"`, `"0.5s"`); None if it is not one."""
    match = _DURATION.match(text) if isinstance(text, str) else None
    return float(match.group(1)) if match else None


def _details(error: dict, kind: str) -> list[dict]:
    return [
        d for d in error.get("details") or []
        if isinstance(d, dict) and d.get("@type") == _RPC_TYPE + kind
    ]


def classify_status(error: dict, http_status: int | None) -> tuple[ErrorClass, float | None]:
    """SPEC §4.1 class and server wait hint for one google.rpc.Status error object."""
    message = str(error.get("message") or "")
    rpc_status = str(error.get("status") or "")
    code = http_status if http_status is not None else _int_or_none(error.get("code"))
    delay = next((parse_duration(d.get("retryDelay")) for d in _details(error, "RetryInfo")), None)
    reasons = {str(d.get("reason")) for d in _details(error, "ErrorInfo")}
    if "API_KEY_INVALID" in reasons or "api key not valid" in message.lower():
        return ErrorClass.AUTH, None
    if rpc_status == "FAILED_PRECONDITION":
        # Location not supported / billing not enabled: the account cannot use this
        # provider, so another target may still answer — treat like an auth failure.
        return ErrorClass.AUTH, None
    error_class = _RPC_STATUS_CLASSES.get(rpc_status) if code in (None, 200) else None
    if error_class is None and code is not None:
        error_class = _STATUS_CLASSES.get(code)
        if error_class is None:
            error_class = ErrorClass.SERVER_ERROR if code >= 500 else ErrorClass.BAD_REQUEST
    if error_class is None:
        error_class = _RPC_STATUS_CLASSES.get(rpc_status, ErrorClass.SERVER_ERROR)
    if error_class is ErrorClass.BAD_REQUEST and any(m in message.lower() for m in _CONTEXT_MARKERS):
        error_class = ErrorClass.CONTEXT_LENGTH
    return error_class, delay


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _error_object(body: Any) -> dict | None:
    """The `error` object of a Status body; streaming endpoints may wrap it in a list."""
    if isinstance(body, list) and body:
        body = body[0]
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) else None


def _candidate_text(candidate: dict) -> str:
    parts = (candidate.get("content") or {}).get("parts") or []
    # `thought: true` parts are thinking summaries, not the answer.
    return "".join(p.get("text", "") for p in parts if isinstance(p, dict) and not p.get("thought"))


def _function_calls(candidate: dict) -> list[ToolCall]:
    """The candidate's `functionCall` parts as tool calls. Gemini may give a call an `id`; when
    it does not, one is made up (`call_<random>`): clients send it back with the result, and
    `_contents` finds the function's name through it."""
    parts = (candidate.get("content") or {}).get("parts") or []
    calls = []
    for part in parts:
        call = part.get("functionCall") if isinstance(part, dict) else None
        if isinstance(call, dict):
            call_id = str(call.get("id") or f"call_{uuid.uuid4().hex[:24]}")
            calls.append(ToolCall(call_id, str(call["name"]), arguments_text(call.get("args"))))
    return calls


def _contents(messages: tuple[Message, ...]) -> list[dict]:
    """Turns in Gemini's shape: `model` for the assistant (its tool calls as `functionCall`
    parts), `user` otherwise; `tool` turns become `functionResponse` parts of one user turn
    (consecutive results merge). A response must name its function, which the shared types
    carry only on the call: it is looked up by id in the latest earlier assistant turn."""
    names: dict[str, str] = {}
    out: list[dict] = []
    for m in messages:
        if m.role == "tool":
            name = names.get(m.tool_call_id or "")
            if name is None:
                raise ProviderError(
                    ErrorClass.BAD_REQUEST,
                    f"tool result {m.tool_call_id!r} answers no tool call of an earlier assistant turn",
                )
            response = json_or_none(m.content)
            part = {"functionResponse": {
                "name": name, "response": response if isinstance(response, dict) else {"result": m.content},
            }}
            if out and out[-1]["role"] == "user" and "functionResponse" in out[-1]["parts"][-1]:
                out[-1]["parts"].append(part)
            else:
                out.append({"role": "user", "parts": [part]})
            continue
        parts: list[dict] = [{"text": m.content}] if m.content or not m.tool_calls else []
        for call in m.tool_calls:
            names[call.id] = call.name
            parts.append({"functionCall": {"name": call.name, "args": arguments_object(call)}})
        out.append({"role": "model" if m.role == "assistant" else "user", "parts": parts})
    return out


def _declaration(tool: ToolSpec) -> dict:
    out: dict[str, Any] = {"name": tool.name}
    if tool.description:
        out["description"] = tool.description
    if tool.parameters:
        out["parameters"] = tool.parameters
    return out


def _calling_config(choice: str) -> dict:
    """`auto`/`none`/`required` are AUTO/NONE/ANY; any other value names the one function
    allowed (ANY restricted to it)."""
    modes = {"auto": "AUTO", "none": "NONE", "required": "ANY"}
    if choice in modes:
        return {"mode": modes[choice]}
    return {"mode": "ANY", "allowedFunctionNames": [choice]}


def _usage(metadata: dict | None) -> Usage | None:
    """`promptTokenCount` counts every input token; `cachedContentTokenCount` is the part served
    from the cache (implicit or explicit caching), priced at the cached rate. Thinking tokens
    (`thoughtsTokenCount`) are billed as output but reported apart from candidatesTokenCount,
    so output_tokens adds them and reasoning_tokens names that part."""
    if not metadata:
        return None

    def count(key: str) -> int:
        value = metadata.get(key)
        return int(value) if isinstance(value, (int, float)) and value > 0 else 0

    thoughts = count("thoughtsTokenCount")
    return Usage(count("promptTokenCount"), count("candidatesTokenCount") + thoughts, "provider",
                 cached_input_tokens=count("cachedContentTokenCount"), reasoning_tokens=thoughts)


def _blocked(body: dict) -> ProviderError | None:
    """A prompt refused before generation: no candidates, `promptFeedback.blockReason`."""
    if body.get("candidates"):
        return None
    reason = (body.get("promptFeedback") or {}).get("blockReason")
    if reason:
        return ProviderError(ErrorClass.BAD_REQUEST, f"gemini blocked the prompt: {reason}")
    return None


class GeminiStreamParser(HeldErrors):
    """`streamGenerateContent?alt=sse` -> chunks.

    Own line handling rather than `SSEDecoder`: besides `data:` events (separated by `\\n\\n`
    or `\\r\\n\\r\\n`) the body may hold a bare, possibly multi-line JSON error object, which a
    plain SSE decoder would silently drop."""

    def __init__(self, redact: Callable[[str], str]):
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._redact = redact
        self._buffer = ""
        self._data: list[str] = []
        self._bare: list[str] = []
        self._text: list[str] = []
        self._usage: Usage | None = None
        self._finish: str | None = None
        self._calls = 0  # tool calls seen so far: the next one's index

    def feed(self, data: bytes) -> list[Chunk]:
        self._buffer += self._decoder.decode(data)
        self._buffer = self._buffer.replace("\r\n", "\n")
        if self._buffer.endswith("\r"):  # a CR whose LF may come in the next read
            complete, self._buffer = self._buffer[:-1], "\r"
        else:
            complete, self._buffer = self._buffer, ""
        *lines, tail = complete.replace("\r", "\n").split("\n")
        self._buffer = tail + self._buffer
        return self._deliver(lines, self._line)

    def close(self) -> list[Chunk]:
        self._raise_pending()
        rest = self._buffer + self._decoder.decode(b"", final=True)
        self._buffer = ""
        chunks = [c for line in rest.replace("\r", "\n").split("\n") for c in self._line(line)]
        chunks += self._flush()
        if self._bare:
            self._fail(ErrorClass.MALFORMED, "gemini stream ended inside an unparseable JSON object")
        if self._finish is None:
            self._fail(ErrorClass.MALFORMED, "gemini stream ended without a finishReason")
        return chunks + [Chunk(usage=self._usage, finish_reason=self._finish)]


    def _line(self, line: str) -> list[Chunk]:
        if self._bare or (not self._data and line.lstrip().startswith(("{", "["))):
            self._bare.append(line)
            parsed = json_or_none("\n".join(self._bare))
            if parsed is None:
                return []  # not complete yet: keep collecting lines
            error = _error_object(parsed)
            if error is not None:
                self._raise_status(error)
            self._fail(ErrorClass.MALFORMED, "gemini stream held JSON outside an SSE event")
        if line == "":
            return self._flush()
        if line.startswith("data:"):
            value = line[5:]
            self._data.append(value[1:] if value.startswith(" ") else value)
        return []  # `event:`, `id:` and `:` comments carry nothing for us

    def _flush(self) -> list[Chunk]:
        if not self._data:
            return []
        payload = json_or_none("\n".join(self._data))
        self._data = []
        if not isinstance(payload, dict):
            self._fail(ErrorClass.MALFORMED, "unparseable gemini stream event")
        error = _error_object(payload)
        if error is not None:
            self._raise_status(error)
        blocked = _blocked(payload)
        if blocked is not None:
            blocked.partial_text = "".join(self._text)
            raise blocked
        if payload.get("usageMetadata"):
            self._usage = _usage(payload["usageMetadata"])
        candidates = payload.get("candidates") or []
        if not candidates:
            return []
        if candidates[0].get("finishReason"):
            self._finish = candidates[0]["finishReason"]
        text = _candidate_text(candidates[0])
        chunks = []
        if text:
            self._text.append(text)
            chunks.append(Chunk(text=text))
        for call in _function_calls(candidates[0]):
            # Gemini streams whole calls: one delta carries id, name and all the arguments.
            chunks.append(Chunk(tool_call=ToolCallDelta(self._calls, call.id, call.name, call.arguments)))
            self._calls += 1
        return chunks

    def _raise_status(self, error: dict) -> NoReturn:
        error_class, delay = classify_status(error, None)
        message = self._redact(f"gemini stream error {error.get('status') or ''}: {error.get('message') or ''}")
        raise ProviderError(
            error_class, message, http_status=_int_or_none(error.get("code")),
            retry_after_s=delay, partial_text="".join(self._text),
        )

    def _fail(self, error_class: ErrorClass, message: str) -> NoReturn:
        raise ProviderError(error_class, message, partial_text="".join(self._text))


class GeminiProvider(HttpProvider):
    """The Gemini Developer API format. `now` resolves HTTP-date Retry-After headers."""

    default_base_url: ClassVar[str] = "https://generativelanguage.googleapis.com/v1beta"


    def _headers(self) -> dict[str, str]:
        headers = {"content-type": "application/json"}
        if self._key:
            headers["x-goog-api-key"] = self._key
        headers.update(self.config.headers)
        return headers

    def build_call(self, request: Request, model: str, *, stream: bool) -> HttpCall:
        model_id = model.removeprefix("models/")
        method = "streamGenerateContent?alt=sse" if stream else "generateContent"
        generation: dict[str, Any] = {"maxOutputTokens": request.max_tokens}
        if request.temperature is not None:
            generation["temperature"] = request.temperature
        if request.top_p is not None:
            generation["topP"] = request.top_p
        if request.stop:
            generation["stopSequences"] = list(request.stop)
        body: dict[str, Any] = {"contents": _with_images(_contents(request.messages), request.attachments)}
        if request.system:
            body["systemInstruction"] = {"parts": [{"text": request.system}]}
        if request.tools:
            body["tools"] = [{"functionDeclarations": [_declaration(t) for t in request.tools]}]
            if request.tool_choice:
                body["toolConfig"] = {"functionCallingConfig": _calling_config(request.tool_choice)}
        if request.schema is not None:  # structured output (SPEC §14)
            generation["responseMimeType"] = "application/json"
            generation["responseSchema"] = response_schema(request.schema)
        body["generationConfig"] = generation
        apply_options(body, request.options, self.config)
        return HttpCall("POST", f"{self.base_url}/models/{model_id}:{method}", self._headers(), body)

    def parse_result(self, body: Any, headers: httpx.Headers) -> Result:
        error = _error_object(body)
        if error is not None:
            raise self._status_error(error, _int_or_none(error.get("code")), headers)
        blocked = _blocked(body)
        if blocked is not None:
            raise blocked
        if not body.get("candidates"):
            # No candidate and no block reason: nothing was generated, which the shared driver
            # reports as `empty` (a body that is not an object still fails as `malformed`).
            return Result(text="", usage=_usage(body.get("usageMetadata")))
        candidate = body["candidates"][0]
        return Result(
            text=_candidate_text(candidate),
            usage=_usage(body.get("usageMetadata")),
            finish_reason=candidate.get("finishReason"),
            tool_calls=tuple(_function_calls(candidate)),
        )

    def stream_parser(self) -> StreamParser:
        return GeminiStreamParser(self.redact)

    def classify_error(self, status: int, headers: httpx.Headers, body: str) -> ProviderError:
        error = _error_object(json_or_none(body))
        if error is None:
            error = {"message": body.strip()[:200] or httpx.codes.get_reason_phrase(status)}
        return self._status_error(error, status, headers)

    def _status_error(self, error: dict, status: int | None, headers: httpx.Headers) -> ProviderError:
        error_class, delay = classify_status(error, status)
        if delay is None:
            delay = retry_after(headers, self.now())
        label = " ".join(str(x) for x in (status, error.get("status")) if x)
        return ProviderError(
            error_class, self.redact(f"gemini {label}: {error.get('message') or ''}".strip()),
            http_status=status, retry_after_s=delay,
        )

    def probe_call(self) -> HttpCall:
        headers = {k: v for k, v in self._headers().items() if k != "content-type"}
        return HttpCall("GET", f"{self.base_url}/models", headers)

    def parse_probe(self, body: Any) -> list[str]:
        """Model ids without `models/`; models that cannot `generateContent` (embeddings,
        imagen) are left out when the listing says what each supports."""
        ids = []
        for item in body.get("models") or []:
            methods = item.get("supportedGenerationMethods") if isinstance(item, dict) else None
            if isinstance(item, dict) and item.get("name") and (methods is None or "generateContent" in methods):
                ids.append(str(item["name"]).removeprefix("models/"))
        return ids


PROVIDER = GeminiProvider


def _with_images(contents: list[dict], attachments: tuple[Attachment, ...]) -> list[dict]:
    """`-a FILE` images join the last user turn as `inlineData` parts (base64), before its
    text (the REST API's camelCase spelling of `inline_data {mime_type, data}`)."""
    if attachments and contents and contents[-1]["role"] == "user":
        images = [{"inlineData": {"mimeType": a.media_type, "data": base64.b64encode(a.data).decode("ascii")}}
                  for a in attachments]
        contents[-1] = {**contents[-1], "parts": [*images, *contents[-1]["parts"]]}
    return contents


# The keywords of Gemini's `Schema` (an OpenAPI 3.0 subset; python-genai `types.py Schema`).
_SCHEMA_KEYS = frozenset({
    "type", "format", "title", "description", "nullable", "enum", "items", "properties", "required",
    "minItems", "maxItems", "minimum", "maximum", "minLength", "maxLength", "pattern",
    "minProperties", "maxProperties", "anyOf", "propertyOrdering", "default", "example",
})


def response_schema(schema: Any) -> Any:
    """A JSON schema converted to Gemini's `responseSchema` subset: types in the upper case of
    its `Type` enum, `["string", "null"]` types become `nullable`, `const` a one-value `enum`,
    and keywords Gemini does not know (`$schema`, `additionalProperties`, `$ref`, ...) are
    dropped. What is dropped still holds: the answer is validated against the full schema
    afterwards."""
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    kind = schema.get("type")
    if isinstance(kind, list):
        kinds = [k for k in kind if k != "null"]
        if len(kinds) < len(kind):
            out["nullable"] = True
        kind = kinds[0] if len(kinds) == 1 else None
        if len(kinds) > 1:
            out["anyOf"] = [{"type": str(k).upper()} for k in kinds]
    if "const" in schema:
        out["enum"] = [schema["const"]]
    for key, value in schema.items():
        if key not in _SCHEMA_KEYS or key == "type":
            continue
        if key == "properties" and isinstance(value, dict):
            out[key] = {name: response_schema(sub) for name, sub in value.items()}
        elif key == "items":
            out[key] = response_schema(value)
        elif key == "anyOf" and isinstance(value, list):
            out[key] = [response_schema(sub) for sub in value]
        else:
            out[key] = value
    if isinstance(kind, str):
        out["type"] = kind.upper()  # Gemini's Type enum: STRING, OBJECT, ...
    return out
