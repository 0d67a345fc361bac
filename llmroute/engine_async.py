"""The async path of one prompt, for `batch`: many prompts in flight over ONE `httpx.AsyncClient`.

It is the engine's flow with awaits where the network is: the same `Engine.plan`, the same
`PromptRun` whose attempts are `calls.Call`s (reserve, send, charge, record, learn, settle), sent
here with `Call.asend`, the same retry rules (`RetryPolicy.retry_delay`,
`ErrorClass.stops_fallback`, the context-length rule of `resilience`) and the same conclusion
(`Engine.conclude`). Only the driver of the fallback loop is a twin of
`resilience.run_with_fallback`, because a synchronous loop cannot await a provider call; the
tests run both drivers over the same scenarios so they cannot drift apart.

Providers are built with the shared async client; formats without an async transport (mock,
local) use the base `acomplete`, which runs the sync call in a worker thread.
"""

from __future__ import annotations

import asyncio
import random
from typing import AsyncIterator, Awaitable, Callable, Sequence, TypeVar

import httpx

from .attempts import PromptRun
from .engine import AskOptions, Engine
from .errors import ProviderError
from .providers.base import Provider
from .resilience import STOP, FallbackLoop, Failure, Outcome, RetryPolicy
from .routing.plan import Candidate, Plan
from .calls import Call
from .types import Answer, Attempt, Chunk, Request, Result, Target

T = TypeVar("T")


async def arun_with_fallback(
    candidates: Sequence[Candidate],
    attempt: Callable[[Candidate, int], Awaitable[T]],
    policy: RetryPolicy,
    *,
    sleep: Callable[[float], Awaitable[None]],
    rng: random.Random,
    on_failure: Callable[[Failure, str], None] = lambda failure, next_step: None,
    may_try: Callable[[Candidate], bool] = lambda candidate: True,
    on_hop: Callable[[Failure, Candidate], None] = lambda failure, candidate: None,
) -> Outcome[T]:
    """Async twin of `resilience.run_with_fallback`: the same `FallbackLoop` decides."""
    loop = FallbackLoop(policy, rng, on_failure, on_hop)
    for candidate in candidates:
        if not loop.usable(candidate):
            continue
        if loop.exhausted:
            return Outcome(None, None, loop.failures, exhausted=True)
        retry_number = 0
        while may_try(candidate):
            loop.calling(candidate)
            try:
                return Outcome(await attempt(candidate, loop.calls), candidate, loop.failures)
            except ProviderError as error:
                retry_number += 1
                delay = loop.failed(candidate, error, retry_number)
                if delay is STOP:
                    return Outcome(None, None, loop.failures, stopped=True)
                if delay is None:
                    break
                await sleep(delay)
    return Outcome(None, None, loop.failures)


class AsyncEngine:
    """Answers prompts concurrently for one engine. Owns nothing it did not create: the
    caller opens and closes the shared `httpx.AsyncClient`."""

    def __init__(self, engine: Engine, aclient: httpx.AsyncClient, *,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep):
        self.engine = engine
        self.aclient = aclient
        self.sleep = sleep

    def provider(self, name: str) -> Provider:
        """The engine's provider for this batch's async client (one provider cache)."""
        return self.engine.async_provider(name, self.aclient)

    async def ask(self, request: Request, options: AskOptions, *, plan: Plan | None = None,
                  on_event: Callable[[str], None] = lambda message: None,
                  on_hop: Callable[[str], None] = lambda message: None) -> Answer:
        """One prompt, end to end, like `Engine.ask` without streaming. Raises the same errors
        (NoProviderError, BudgetError, AllAttemptsFailed). `batch` leaves `on_hop` quiet: it
        has its own progress."""
        engine = self.engine
        cache, hit, plan = engine.begin(request, options, plan)
        if hit is not None:
            return hit
        run = PromptRun(engine, request, options, plan, None, on_event, lambda message: None, on_hop)

        async def attempt(candidate: Candidate, number: int) -> tuple[Result, Attempt]:
            return await run.aattempt(candidate, number, self.provider(candidate.target.provider))

        try:
            outcome = await arun_with_fallback(
                plan.candidates, attempt, engine.retry_policy(), sleep=self.sleep, rng=engine.rng,
                on_failure=run.on_failure, may_try=run.may_try, on_hop=run.on_hop,
            )
        except BaseException:
            # Cancelled (Ctrl-C) mid-call: nothing was answered, so nothing stays reserved.
            run.release_all()
            raise
        return engine.conclude(run, outcome, cache)

    async def astream(self, request: Request, options: AskOptions, *, plan: Plan | None = None,
                      on_event: Callable[[str], None] = lambda message: None) -> "AnswerStream":
        """One prompt, streamed (the gateway): the fallback loop runs until a target gives its
        first piece of answer, so a target that fails before it is passed over unseen. The
        returned stream yields that piece and the rest; a failure after it raises the
        `ProviderError` from the iteration (already recorded). A cache hit is a stream of one
        chunk. Raises NoProviderError, BudgetError or AllAttemptsFailed like `ask`."""
        engine = self.engine
        cache, hit, plan = engine.begin(request, options, plan)
        if hit is not None:
            return AnswerStream(hit.target, hit.request_id, answer=hit)
        run = PromptRun(engine, request, options, plan, None, on_event, lambda message: None)

        async def attempt(candidate: Candidate, number: int):
            return await run.aopen_stream(candidate, number, self.provider(candidate.target.provider))

        try:
            outcome = await arun_with_fallback(
                plan.candidates, attempt, engine.retry_policy(), sleep=self.sleep, rng=engine.rng,
                on_failure=run.on_failure, may_try=run.may_try, on_hop=run.on_hop,
            )
        except BaseException:
            run.release_all()
            raise
        if outcome.value is None:
            engine.conclude(run, outcome, cache)  # raises the error that says why
        run.release_all()  # reservations of targets never reached
        call, first, chunks = outcome.value
        return AnswerStream(call.target, run.request_id, run=run, call=call, first=first,
                            chunks=chunks, outcome=outcome, cache=cache)


class AnswerStream:
    """A streamed answer under way: iterate it for its chunks, then read `answer`. Closing it
    early (`aclose`) cuts the call off: recorded as interrupted, its reservation released."""

    def __init__(self, target: Target, request_id: str, *, answer: Answer | None = None,
                 run: PromptRun | None = None, call: Call | None = None, first: Chunk | None = None,
                 chunks: AsyncIterator[Chunk] | None = None, outcome=None, cache=None):
        self.target = target
        self.request_id = request_id
        self.answer = answer
        self._run, self._call, self._first, self._chunks = run, call, first, chunks
        self._outcome, self._cache = outcome, cache
        self._done = answer is not None

    def __aiter__(self) -> AsyncIterator[Chunk]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Chunk]:
        if self.answer is not None and self._chunks is None:
            yield Chunk(text=self.answer.text, usage=self.answer.usage)
            return
        try:
            yield self._first
            async for chunk in self._chunks:
                yield chunk
        finally:
            await self.aclose()
        self.answer = self.engine_conclude(self._run, self._call)

    def engine_conclude(self, run: PromptRun, call: Call) -> Answer:
        from .resilience import Outcome

        outcome = Outcome((call.result, call.attempt), self._outcome.candidate, self._outcome.failures)
        return run.engine.conclude(run, outcome, self._cache)

    async def aclose(self) -> None:
        """End the call's stream (a no-op once it finished) and count its attempt."""
        if self._done or self._chunks is None:
            return
        self._done = True
        try:
            await self._chunks.aclose()
        finally:
            self._run.finish_stream(self._call)
