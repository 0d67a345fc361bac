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
from typing import Awaitable, Callable, Sequence, TypeVar

import httpx

from .attempts import PromptRun
from .engine import AskOptions, Engine
from .errors import ProviderError
from .providers.base import Provider
from .resilience import STOP, FallbackLoop, Failure, Outcome, RetryPolicy
from .routing.plan import Candidate, Plan
from .types import Answer, Attempt, Request, Result

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
