"""A provider that answers without a network, for demos, docs and end-to-end tests.

Its behaviour is a pure function of (seed, model, prompt): the same prompt always gets the same
reply and the same success or failure, so a test or a demo run is reproducible without
patching randomness. Latency is simulated through the injected `sleep`, so tests pass a no-op
and never wait. Options (`config.options`): `latency_ms` (0), `fail_rate` (0..1, 0), `reply`
(may use `{prompt}` and `{model}`), `seed` (0).

Tool calls, for gateway tests and demos: when the request has tools and its last turn is a user
turn saying `call NAME` (NAME one of the request's tools), optionally followed by a JSON object
(`call get_weather {"city": "Paris"}`), the answer is that one tool call (id `call_mock_0`,
the object as its arguments, `{}` without one), no text, finish reason `tool_calls`; streamed, it
is one `Chunk.tool_call` delta. Any other prompt — including the turn after the tool result —
gets the usual text answer.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any, ClassVar, Iterator

from ..errors import ConfigError, ErrorClass, ProviderError
from ..types import Chunk, Request, Result, ToolCall, ToolCallDelta, Usage
from .base import Provider

_WORD_PIECE = re.compile(r"\S+\s*|\s+")
_CALL = re.compile(r"\bcall\s+([A-Za-z0-9_.-]+)")


@dataclass(frozen=True)
class MockOptions:
    latency_ms: float = 0.0
    fail_rate: float = 0.0
    reply: str | None = None
    seed: int = 0


def _number(config_name: str, key: str, value: Any, kind: type) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError([f"providers.{config_name}.options.{key}: expected a number, got {value!r}"])
    if kind is int and not float(value).is_integer():
        raise ConfigError([f"providers.{config_name}.options.{key}: expected an integer, got {value!r}"])
    return kind(value)


def parse_options(name: str, options: Any) -> MockOptions:
    """Read and check the mock's options; a bad value is a config error, not a crash."""
    options = dict(options or {})
    unknown = sorted(set(options) - {"latency_ms", "fail_rate", "reply", "seed"})
    if unknown:
        raise ConfigError([f"providers.{name}.options: unknown option(s) {', '.join(unknown)}"])
    latency = _number(name, "latency_ms", options.get("latency_ms", 0), float)
    fail_rate = _number(name, "fail_rate", options.get("fail_rate", 0), float)
    seed = _number(name, "seed", options.get("seed", 0), int)
    reply = options.get("reply")
    if latency < 0:
        raise ConfigError([f"providers.{name}.options.latency_ms: must be >= 0"])
    if not 0.0 <= fail_rate <= 1.0:
        raise ConfigError([f"providers.{name}.options.fail_rate: must be between 0 and 1"])
    if reply is not None and not isinstance(reply, str):
        raise ConfigError([f"providers.{name}.options.reply: expected a string"])
    return MockOptions(latency_ms=latency, fail_rate=fail_rate, reply=reply, seed=seed)


def count_words(text: str) -> int:
    """The mock's token count: whitespace-separated words."""
    return len(text.split())


class MockProvider(Provider):
    """Deterministic offline answers; see the module docstring."""

    requires_key: ClassVar[bool] = False

    def __init__(self, config, **kwargs):
        super().__init__(config, **kwargs)
        self.options = parse_options(config.name, config.options)

    def _fraction(self, request: Request, model: str) -> float:
        """A stable number in [0, 1) drawn from (seed, model, prompt)."""
        key = f"{self.options.seed}\0{model}\0{request.prompt_text}".encode("utf-8")
        digest = hashlib.sha256(key).digest()
        return int.from_bytes(digest[:8], "big") / 2**64

    def reply_for(self, request: Request, model: str) -> str:
        prompt = "\n".join(m.content for m in request.messages)
        if self.options.reply is None:
            return f"mock answer from {model}: {prompt[:60]}"
        # str.replace, not str.format: user text may contain braces.
        return self.options.reply.replace("{model}", model).replace("{prompt}", prompt)

    def _answer(self, request: Request, model: str) -> tuple[str, Usage]:
        if self.options.latency_ms:
            self._sleep(self.options.latency_ms / 1000.0)
        if self._fraction(request, model) < self.options.fail_rate:
            raise ProviderError(ErrorClass.SERVER_ERROR, "mock failure", http_status=500)
        text = self.reply_for(request, model)
        return text, Usage(count_words(request.prompt_text), count_words(text), "provider")

    def tool_call_for(self, request: Request) -> ToolCall | None:
        """The tool call a prompt asks for (see the module docstring), if any."""
        if not request.tools or not request.messages or request.messages[-1].role != "user":
            return None
        text = request.messages[-1].content
        names = {t.name for t in request.tools}
        for match in _CALL.finditer(text):
            if match.group(1) not in names:
                continue
            rest = text[match.end():].lstrip()
            arguments = "{}"
            if rest.startswith("{"):
                try:
                    value, _ = json.JSONDecoder().raw_decode(rest)
                except ValueError:
                    value = None
                if isinstance(value, dict):
                    arguments = json.dumps(value, separators=(",", ":"))
            return ToolCall("call_mock_0", match.group(1), arguments)
        return None

    def _call_usage(self, request: Request, model: str, call: ToolCall) -> Usage:
        self._answer(request, model)  # the same latency and failures as a text answer
        return Usage(count_words(request.prompt_text), count_words(call.arguments), "provider")

    def complete(self, request: Request, model: str, *, timeout: float) -> Result:
        call = self.tool_call_for(request)
        if call is not None:
            usage = self._call_usage(request, model, call)
            return Result(text="", usage=usage, finish_reason="tool_calls", tool_calls=(call,))
        text, usage = self._answer(request, model)
        return Result(text=text, usage=usage, finish_reason="stop")

    def stream(self, request: Request, model: str, *, timeout: float) -> Iterator[Chunk]:
        call = self.tool_call_for(request)
        if call is not None:
            usage = self._call_usage(request, model, call)
            yield Chunk(tool_call=ToolCallDelta(0, call.id, call.name, call.arguments))
            yield Chunk(usage=usage, finish_reason="tool_calls")
            return
        text, usage = self._answer(request, model)
        for piece in _WORD_PIECE.findall(text):
            yield Chunk(text=piece)
        yield Chunk(usage=usage, finish_reason="stop")

    def probe(self, *, timeout: float) -> list[str]:
        if self.options.latency_ms:
            self._sleep(self.options.latency_ms / 1000.0)
        return list(self.config.models)


PROVIDER = MockProvider
