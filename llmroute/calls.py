"""The life of one provider call: reserve → send → charge → record → learn → settle or release.

Every way llmroute calls a provider is this one life: `ask` and its fallbacks (sync, streamed or
buffered), `batch` (async), `compare`, `abtest` and sampled A/B (async, no fallback),
`transcribe` (per-minute prices) and `health --deep` (which keeps its own memory). They differ
only in how many calls they make and whether they fall back, which the engine's fallback loop
decides. Keeping the life in one place is what makes every call budgeted before it is sent,
priced by one rule (`catalog.costs.charge`: the provider's own reported cost, then config prices,
then the built-in table), recorded with the same fields (`records.build_record`) and settled
exactly once. simonw/llm's `Response` object (timing, usage and logging in one place for every
plugin) is the model.

A `Call` is made per attempt; a `CallSite` holds what the attempts of one request share.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, AsyncIterator, Callable, Mapping

from .errors import ErrorClass, ProviderError
from .ledger import make_ts, prompt_sha256
from .ledger.records import build_record
from .resilience import RetryPolicy
from .types import Attempt, Chunk, Request, Result, Target, ToolCall, Usage

if TYPE_CHECKING:
    from .engine import Engine
    from .providers.base import Provider

# (result) -> (usage, cost in USD or None when unknown, price source)
Pricer = Callable[[Result], "tuple[Usage | None, float | None, str]"]


@dataclass
class CallSite:
    """What every attempt of one request shares: its id, kind, route and labels. `extra` adds
    record fields such as `compare_id`, `ab_id` or `audio_seconds`."""

    request: Request
    kind: str = "ask"
    route: str | None = None
    strategy: str | None = None
    tags: tuple[str, ...] = ()
    extra: Mapping[str, object] = field(default_factory=dict)
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    prompt_hash: str | None = None

    def __post_init__(self) -> None:
        if self.prompt_hash is None:
            self.prompt_hash = prompt_sha256(self.request.prompt_text)


class Call:
    """One provider call. `reserve` first (a refusal means the call is never sent), then `send`
    or `asend`, which time the call, and on the way out charge, record, learn and settle — or
    record the failure, learn from it and release. `learn=False` leaves the routing memory to
    the caller (`health` feeds breakers from its own verdicts); `pricer` replaces the token
    price rule (transcription is billed per minute of audio)."""

    def __init__(self, engine: "Engine", site: CallSite, target: Target, number: int = 1, *,
                 learn: bool = True, pricer: Pricer | None = None):
        self.engine = engine
        self.site = site
        self.target = target
        self.number = number
        self.learn = learn
        self.pricer = pricer
        self.extra: Mapping[str, object] = {}  # fields of this call's record only (audio_seconds)
        self.handle: object | None = None
        self.attempt: Attempt | None = None
        self.tokens_reserved = 0
        self.result: Result | None = None  # the whole answer of a finished `astream`

    # --- budget ---------------------------------------------------------------------------

    def reserve(self, worst_case_usd: float, tokens: int) -> bool:
        """Hold the worst case against every budget limit; False when it does not fit."""
        budget = self.engine.budget
        if budget is None:
            return True
        provider = self.engine.config.providers[self.target.provider]
        self.handle = budget.reserve(self.target, provider, worst_case_usd, tokens)
        self.tokens_reserved = tokens
        return self.handle is not None

    def release(self) -> None:
        """Give back the reservation of a call that was not billed (failed, cut off, unsent)."""
        handle, self.handle = self.handle, None
        if handle is not None and self.engine.budget is not None:
            self.engine.budget.release(handle)

    def _settle(self, cost: float | None, tokens: int) -> None:
        handle, self.handle = self.handle, None
        if handle is not None and self.engine.budget is not None:
            self.engine.budget.settle(handle, cost or 0.0, tokens)

    # --- sending --------------------------------------------------------------------------

    def send(self, provider: "Provider", timeout: float, *,
             on_text: Callable[[str], None] | None = None,
             on_broken: Callable[[Target, ProviderError], None] | None = None) -> Result:
        """The call, synchronously. With `on_text` and a streaming provider the answer streams
        to it; `on_broken` hears of a stream that fails after some text was written. A request
        with a `schema` is never streamed: its answer is shown once it has been checked."""
        monotonic = self.engine.monotonic
        started = monotonic()
        ttft: list[float] = []
        schema = self.site.request.schema
        try:
            if on_text is not None and provider.supports_stream and schema is None:
                result = self._stream(provider, timeout, on_text, on_broken, started, ttft)
            else:
                result = provider.complete(self.site.request, self.target.model, timeout=timeout)
            if schema is not None:  # an answer that does not match is `invalid_output` (SPEC §14)
                result = _structured(result, schema)
        except ProviderError as error:
            self.failed(error, _ms(monotonic() - started), _first(ttft))
            raise
        except KeyboardInterrupt:
            self.interrupted(_ms(monotonic() - started), _first(ttft))
            raise
        result = _redacted(result, self.engine.secrets())  # a provider may echo a key (SPEC §3)
        self.answered(result, _ms(monotonic() - started), _first(ttft))
        return result

    async def asend(self, provider: "Provider", timeout: float) -> Result:
        """The call over the provider's async transport (buffered)."""
        import asyncio

        monotonic = self.engine.monotonic
        started = monotonic()
        try:
            result = await provider.acomplete(self.site.request, self.target.model, timeout=timeout)
            if self.site.request.schema is not None:
                result = _structured(result, self.site.request.schema)
        except ProviderError as error:
            self.failed(error, _ms(monotonic() - started), None)
            raise
        except (KeyboardInterrupt, asyncio.CancelledError):
            self.interrupted(_ms(monotonic() - started), None)
            raise
        result = _redacted(result, self.engine.secrets())
        self.answered(result, _ms(monotonic() - started), None)
        return result

    async def astream(self, provider: "Provider", timeout: float) -> AsyncIterator[Chunk]:
        """The call over the provider's async stream (the gateway): yields the chunks that carry
        something to show — text with keys redacted, or a piece of a tool call — and, once the
        stream ends, charges, records and settles (`self.result` is the whole answer). A failed
        stream is recorded and released; a consumer that stops early (`aclose`, cancellation:
        the client went away) records `interrupted` and releases."""
        import asyncio
        from contextlib import aclosing

        from .redact import StreamRedactor

        monotonic = self.engine.monotonic
        started = monotonic()
        ttft: list[float] = []
        parts: list[str] = []
        calls: dict[int, list[str]] = {}  # index -> [id, name, arguments]
        usage = finish = cost = None
        redactor = StreamRedactor(self.engine.secrets())
        async with aclosing(provider.astream(self.site.request, self.target.model, timeout=timeout)) as chunks:
            try:
                async for chunk in chunks:
                    if chunk.text or chunk.tool_call is not None:
                        if not ttft:
                            ttft.append(monotonic() - started)
                    if chunk.text:
                        text = redactor.feed(chunk.text)
                        if text:
                            parts.append(text)
                            yield Chunk(text=text)
                    if chunk.tool_call is not None:
                        delta = chunk.tool_call
                        entry = calls.setdefault(delta.index, ["", "", ""])
                        entry[0] = delta.id or entry[0]
                        entry[1] = delta.name or entry[1]
                        entry[2] += delta.arguments
                        yield Chunk(tool_call=delta)
                    usage = chunk.usage or usage
                    finish = chunk.finish_reason or finish
                    cost = chunk.provider_cost_usd if chunk.provider_cost_usd is not None else cost
                rest = redactor.flush()
                if rest:
                    parts.append(rest)
                    yield Chunk(text=rest)
            except ProviderError as error:
                if parts:
                    error.partial_text = "".join(parts)
                self.failed(error, _ms(monotonic() - started), _first(ttft))
                raise
            except (GeneratorExit, asyncio.CancelledError, KeyboardInterrupt):
                self.interrupted(_ms(monotonic() - started), _first(ttft))
                raise
        tool_calls = tuple(ToolCall(id=i, name=n, arguments=a or "{}")
                           for _, (i, n, a) in sorted(calls.items()))
        self.result = Result(text="".join(parts), usage=usage, finish_reason=finish,
                             provider_cost_usd=cost, tool_calls=tool_calls)
        self.answered(self.result, _ms(monotonic() - started), _first(ttft))

    def _stream(self, provider: "Provider", timeout: float, on_text: Callable[[str], None],
                on_broken: Callable[[Target, ProviderError], None] | None, started: float,
                ttft: list[float]) -> Result:
        from .redact import StreamRedactor

        parts: list[str] = []  # the text shown: keys redacted, a possible key's start held back
        usage = finish = cost = None
        redactor = StreamRedactor(self.engine.secrets())

        def show(text: str) -> None:
            if text:
                parts.append(text)
                on_text(text)

        try:
            for chunk in provider.stream(self.site.request, self.target.model, timeout=timeout):
                if chunk.text:
                    if not ttft:
                        ttft.append(self.engine.monotonic() - started)
                    show(redactor.feed(chunk.text))
                usage = chunk.usage or usage
                finish = chunk.finish_reason or finish
                cost = chunk.provider_cost_usd if chunk.provider_cost_usd is not None else cost
            show(redactor.flush())
        except ProviderError as error:
            if parts:
                error.partial_text = "".join(parts)
                if on_broken is not None:
                    on_broken(self.target, error)
            raise
        return Result(text="".join(parts), usage=usage, finish_reason=finish, provider_cost_usd=cost)

    # --- endings --------------------------------------------------------------------------

    def _charge(self, result: Result) -> tuple[Usage | None, float | None, str]:
        """What an answer cost, by the one price rule (or this call's own pricer)."""
        if self.pricer is not None:
            return self.pricer(result)
        from .catalog.costs import charge

        return charge(self.engine.config, self.target, self.site.request.prompt_text, result)

    def answered(self, result: Result, latency_ms: int, ttft_ms: int | None = None) -> Attempt:
        """Charge, record, learn and settle an answered call."""
        engine = self.engine
        usage, cost, source = self._charge(result)
        self.attempt = Attempt(target=self.target, attempt=self.number, status="ok", latency_ms=latency_ms,
                               ttft_ms=ttft_ms, usage=usage, cost_usd=cost, price_source=source)
        tokens = (usage.input_tokens + usage.output_tokens) if usage else 0
        try:
            self._record(self.attempt, answer=result.text)
        finally:
            # A paid call is settled even when the ledger fails; a state file that cannot be
            # written is a warning (`Engine.bookkeep`), never a lost answer.
            engine.bookkeep(lambda: self._settle(cost, tokens))
        if self.learn:
            engine.bookkeep(lambda: engine.memory.record_success(self.target, latency_ms,
                                                                 result.rate_limits, tokens))
        return self.attempt

    def failed(self, error: ProviderError, latency_ms: int, ttft_ms: int | None = None) -> Attempt:
        """Record a failed call, learn from it and release its reservation — unless the provider
        answered and billed it (an `empty` or `invalid_output` answer): then it is charged and
        settled like any answer, so a budget never undercounts what was spent."""
        engine = self.engine
        usage = cost = None
        source = "unknown"
        if error.billed is not None:
            usage, cost, source = self._charge(error.billed)
        self.attempt = Attempt(target=self.target, attempt=self.number, status="error",
                               latency_ms=latency_ms, error=error.error_class.value,
                               http_status=error.http_status, message=error.message, ttft_ms=ttft_ms,
                               usage=usage, cost_usd=cost, price_source=source)
        if error.billed is not None:
            tokens = (usage.input_tokens + usage.output_tokens) if usage else 0
            engine.bookkeep(lambda: self._settle(cost, tokens))
        else:
            engine.bookkeep(self.release)
        self._record(self.attempt)
        if self.learn and error.error_class is not ErrorClass.INTERRUPTED:
            engine.bookkeep(lambda: engine.memory.record_failure(
                self.target, error.error_class, error.retry_after_s, error.rate_limits,
                RetryPolicy().max_retry_after_s))
        return self.attempt

    def interrupted(self, latency_ms: int, ttft_ms: int | None = None) -> Attempt:
        """A call cut off by Ctrl-C: recorded as `interrupted` (SPEC §5), reservation released,
        nothing learnt about the target."""
        return self.failed(ProviderError(ErrorClass.INTERRUPTED, "interrupted by the user"),
                           latency_ms, ttft_ms)

    def _record(self, attempt: Attempt, answer: str | None = None) -> None:
        engine = self.engine
        site = self.site
        log_prompts = engine.config.ledger.log_prompts
        engine.record(build_record(
            ts=make_ts(engine.clock()), request_id=site.request_id, kind=site.kind, attempt=attempt,
            route=site.route, strategy=site.strategy, tags=site.tags, prompt_hash=site.prompt_hash,
            extra={**site.extra, **self.extra}, prompt=site.request.prompt_text if log_prompts else None,
            answer=answer if log_prompts else None,
        ))


def _structured(result: Result, schema: dict) -> Result:
    from .structured import checked  # jsonschema is imported only when --schema is used

    return checked(result, schema)


def _redacted(result: Result, secrets: tuple[str, ...]) -> Result:
    """The result with every key in its text replaced (`redact.redact`); itself when clean."""
    from dataclasses import replace

    from .redact import redact

    text = redact(result.text, secrets) if secrets and result.text else result.text
    return result if text == result.text else replace(result, text=text)


def _ms(seconds: float) -> int:
    return int(seconds * 1000)


def _first(ttft: list[float]) -> int | None:
    return _ms(ttft[0]) if ttft else None
