"""Typed records that travel between llmroute's layers.

Every arrow in the data flow (cli -> engine -> routing -> budget -> resilience -> provider ->
ledger) passes one of these values, never a loose dict, so each layer can be read and tested on
its own. They are frozen where they describe a fact that must not change after it is made.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Target:
    """A `provider/model` pair. Model names may contain `/` (OpenRouter, Groq), so the
    provider is everything before the first slash."""

    provider: str
    model: str

    @property
    def id(self) -> str:
        return f"{self.provider}/{self.model}"

    def __str__(self) -> str:
        return self.id

    @classmethod
    def parse(cls, text: str) -> "Target":
        provider, _, model = text.partition("/")
        return cls(provider, model)


@dataclass(frozen=True)
class ToolSpec:
    """A function the model may call: its name, what it does, and its arguments' JSON schema."""

    name: str
    description: str | None = None
    parameters: dict = field(default_factory=dict)


@dataclass(frozen=True)
class ToolCall:
    """A call the model asked for. `arguments` is the JSON text the model wrote (kept as text:
    formats that stream it in pieces, and clients that parse it themselves, want it so)."""

    id: str
    name: str
    arguments: str = "{}"


@dataclass(frozen=True)
class Message:
    """One turn. `assistant` turns may carry the tool calls the model made; a `tool` turn is the
    result of one call (`tool_call_id`), its `content` the result text."""

    role: str  # "user" | "assistant" | "tool"
    content: str
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None


@dataclass(frozen=True)
class Attachment:
    """An image sent with the prompt (`-a FILE`): its media type and bytes."""

    media_type: str  # image/png | image/jpeg | image/webp | image/gif
    data: bytes
    name: str = ""


@dataclass(frozen=True)
class Request:
    """What the user asked, independent of any provider's wire format. `tools` and
    `tool_choice` ("auto", "none", "required", or a tool's name) come from gateway clients."""

    messages: tuple[Message, ...]
    system: str | None = None
    max_tokens: int = 1024
    temperature: float | None = None
    top_p: float | None = None
    stop: tuple[str, ...] = ()
    tools: tuple[ToolSpec, ...] = ()
    tool_choice: str | None = None
    # `-o KEY=VALUE` model options (SPEC §14), validated per target before they are sent.
    options: tuple[tuple[str, object], ...] = ()
    schema: dict | None = None  # `--schema`: the JSON schema the answer must satisfy
    attachments: tuple["Attachment", ...] = ()  # `-a FILE` images

    @property
    def prompt_text(self) -> str:
        """All text that counts as input, for token estimates and hashing."""
        parts = [self.system or ""] + [m.content for m in self.messages]
        return "\n".join(p for p in parts if p)


@dataclass(frozen=True)
class Usage:
    """Tokens one call used. `input_tokens` counts every input token, cached or not; the parts a
    provider reports separately are priced at their own rates (SPEC §2.2, §5): input read from
    its prompt cache, input written to it (Anthropic), and the reasoning part of the output."""

    input_tokens: int
    output_tokens: int
    source: str = "provider"  # "provider" (reported) | "estimate"
    cached_input_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0


@dataclass(frozen=True)
class RateLimitInfo:
    """Rate-limit state a provider reported in its response headers.

    Reset values are seconds from the moment the response was received (providers express
    them as Go durations, RFC 3339 instants or epoch seconds; adapters convert)."""

    limit_requests: int | None = None
    remaining_requests: int | None = None
    reset_requests_s: float | None = None
    limit_tokens: int | None = None
    remaining_tokens: int | None = None
    reset_tokens_s: float | None = None

    @property
    def is_empty(self) -> bool:
        return all(v is None for v in self.__dict__.values())


@dataclass(frozen=True)
class Chunk:
    """One piece of a streamed answer. Text chunks carry `text`; the provider may also attach
    the final usage and finish reason to a chunk of its own."""

    text: str = ""
    usage: Usage | None = None
    finish_reason: str | None = None
    provider_cost_usd: float | None = None  # OpenRouter's own cost, on its final usage chunk
    tool_call: "ToolCallDelta | None" = None  # a piece of a streamed tool call


@dataclass(frozen=True)
class ToolCallDelta:
    """A piece of a streamed tool call: the `index`-th call of the answer; `id` and `name` come
    with its first piece, `arguments` is the next fragment of its JSON text."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""


@dataclass(frozen=True)
class Result:
    """A provider's complete answer to one call."""

    text: str
    usage: Usage | None = None
    finish_reason: str | None = None
    rate_limits: RateLimitInfo | None = None
    provider_cost_usd: float | None = None  # OpenRouter reports the cost itself
    tool_calls: tuple[ToolCall, ...] = ()  # the calls the model asked for, instead of or with text


@dataclass
class Attempt:
    """One provider call within a request: what was called, how it went, what it cost."""

    target: Target
    attempt: int
    status: str  # "ok" | "error"
    latency_ms: int
    error: str | None = None  # SPEC §4.1 error class
    http_status: int | None = None
    message: str | None = None  # short, redacted reason for humans
    ttft_ms: int | None = None
    usage: Usage | None = None
    cost_usd: float | None = None
    price_source: str = "unknown"

    def to_public(self) -> dict:
        """The shape of one entry in `--json`'s `attempts` list (SPEC §4)."""
        out: dict = {"target": self.target.id, "status": self.status}
        if self.error:
            out["error"] = self.error
        if self.http_status is not None:
            out["http_status"] = self.http_status
        out["latency_ms"] = self.latency_ms
        return out


@dataclass
class Answer:
    """The outcome of one prompt end to end: the answer that won and every attempt made."""

    request_id: str
    text: str
    target: Target
    route: str | None
    usage: Usage | None
    cost_usd: float | None
    latency_ms: int
    attempts: list[Attempt] = field(default_factory=list)
    cached: bool = False
    tool_calls: tuple[ToolCall, ...] = ()  # the calls the model asked for (gateway clients)
    finish_reason: str | None = None

    def to_json(self) -> dict:
        """The `--json` object of SPEC §4."""
        return {
            "request_id": self.request_id,
            "text": self.text,
            "target": self.target.id,
            "route": self.route,
            "usage": {
                "input_tokens": self.usage.input_tokens if self.usage else None,
                "output_tokens": self.usage.output_tokens if self.usage else None,
            },
            "cost_usd": self.cost_usd,
            "latency_ms": self.latency_ms,
            "cached": self.cached,
            "attempts": [a.to_public() for a in self.attempts],
        }
