"""A provider that answers without a network, for demos, docs and end-to-end tests.

Its behaviour is a pure function of (seed, model, prompt): the same prompt always gets the same
reply and the same success or failure, so a test or a demo run is reproducible without
patching randomness. Latency is simulated through the injected `sleep`, so tests pass a no-op
and never wait. Options (`config.options`): `latency_ms` (0), `fail_rate` (0..1, 0), `reply`
(may use `{prompt}` and `{model}`), `seed` (0).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any, ClassVar, Iterator

from ..errors import ConfigError, ErrorClass, ProviderError
from ..types import Chunk, Request, Result, Usage
from .base import Provider

_WORD_PIECE = re.compile(r"\S+\s*|\s+")


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

    def complete(self, request: Request, model: str, *, timeout: float) -> Result:
        text, usage = self._answer(request, model)
        return Result(text=text, usage=usage, finish_reason="stop")

    def stream(self, request: Request, model: str, *, timeout: float) -> Iterator[Chunk]:
        text, usage = self._answer(request, model)
        for piece in _WORD_PIECE.findall(text):
            yield Chunk(text=piece)
        yield Chunk(usage=usage, finish_reason="stop")

    def probe(self, *, timeout: float) -> list[str]:
        if self.options.latency_ms:
            self._sleep(self.options.latency_ms / 1000.0)
        return list(self.config.models)


PROVIDER = MockProvider
