"""Retries on one target and fallback across targets (SPEC §4.1).

The loop knows nothing about HTTP, terminals or the ledger: it is handed the ordered candidates,
a function that makes one attempt, and callbacks, so every path (retry with backoff, a server's
Retry-After, moving on, stopping on a bad request, the context-length rule, the attempt cap) is
tested with an injected sleep and random source.

Rules, from the spec's table:
- `rate_limited`, `overloaded`, `server_error`, `timeout`, `connection`, `malformed`, `empty`:
  retried on the same target up to `retries` times (exponential backoff with jitter, or the
  server's wait when it is short), then the next target.
- `auth`, `not_found`, `invalid_output`: next target at once. `context_length`: next target
  with a larger context.
- `bad_request`: stop; the request itself is wrong. `interrupted`: stop; the user said so.
- never more than `max_attempts` calls in all.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Callable, Generic, Sequence, TypeVar

from .errors import ErrorClass, ProviderError
from .routing.plan import Candidate

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    retries: int = 1
    max_attempts: int = 4
    base_delay_s: float = 0.5
    max_delay_s: float = 8.0
    # A server hint longer than this is not waited for: the target is left for the next one
    # (and remembered as rate-limited by the routing memory).
    max_retry_after_s: float = 20.0

    def backoff(self, retry_number: int, rng: random.Random) -> float:
        """Delay before the `retry_number`-th retry (1-based): 0.5 s, 1 s, 2 s ... capped,
        shortened by up to 25 % at random so parallel clients do not retry in lockstep."""
        delay = min(self.base_delay_s * 2 ** (retry_number - 1), self.max_delay_s)
        return delay * (1 - 0.25 * rng.random())

    def retry_delay(self, error: ProviderError, retry_number: int, rng: random.Random) -> float | None:
        """How long to wait before retrying the same target, or None to move on now."""
        if not error.error_class.retryable or retry_number > self.retries:
            return None
        if error.retry_after_s is not None:
            if error.retry_after_s > self.max_retry_after_s:
                return None
            return max(error.retry_after_s, 0.0)
        return self.backoff(retry_number, rng)


@dataclass
class Failure:
    """One failed attempt as the loop saw it."""

    candidate: Candidate
    attempt: int
    error: ProviderError


@dataclass
class Outcome(Generic[T]):
    value: T | None
    candidate: Candidate | None
    failures: list[Failure]
    stopped: bool = False  # a bad_request (or an interruption) ended the loop early
    exhausted: bool = False  # max_attempts reached with candidates left

    @property
    def interrupted(self) -> bool:
        """The loop stopped because the user interrupted the last call, not because the
        request was refused: callers report it as an interruption."""
        return self.stopped and bool(self.failures) \
            and self.failures[-1].error.error_class is ErrorClass.INTERRUPTED


def run_with_fallback(
    candidates: Sequence[Candidate],
    attempt: Callable[[Candidate, int], T],
    policy: RetryPolicy,
    *,
    sleep: Callable[[float], None],
    rng: random.Random,
    on_failure: Callable[[Failure, str], None] = lambda failure, next_step: None,
    may_try: Callable[[Candidate], bool] = lambda candidate: True,
    on_hop: Callable[[Failure, Candidate], None] = lambda failure, candidate: None,
) -> Outcome[T]:
    """Try candidates in order until one answers.

    `attempt(candidate, attempt_number)` returns the value or raises `ProviderError`.
    `on_failure(failure, next_step)` is told each failure and what happens next ("retry in
    0.5s", "next target", "stop"), for `-v` and `--json`. `may_try` is asked before every
    call (the budget reserves there; False moves on to the next candidate). `on_hop(failure,
    candidate)` is told, just before the first call to a candidate, of the failure that made
    the loop leave the previous target (SPEC §4: a fallback is never silent)."""
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
                return Outcome(attempt(candidate, loop.calls), candidate, loop.failures)
            except ProviderError as error:
                retry_number += 1
                delay = loop.failed(candidate, error, retry_number)
                if delay is STOP:
                    return Outcome(None, None, loop.failures, stopped=True)
                if delay is None:
                    break
                sleep(delay)
    return Outcome(None, None, loop.failures)


STOP = object()  # `FallbackLoop.failed`: the request itself is wrong, stop trying


class FallbackLoop:
    """The bookkeeping and decisions of one fallback loop, shared by `run_with_fallback` and its
    async twin (`engine_async.arun_with_fallback`) so the two differ only in `await`."""

    def __init__(self, policy: RetryPolicy, rng: random.Random,
                 on_failure: Callable[[Failure, str], None],
                 on_hop: Callable[[Failure, Candidate], None] = lambda failure, candidate: None):
        self.policy = policy
        self.rng = rng
        self.on_failure = on_failure
        self.on_hop = on_hop
        self.failures: list[Failure] = []
        self.calls = 0
        self.min_context: int | None = None  # after a context_length error: only larger contexts

    def calling(self, candidate: Candidate) -> None:
        """Count the call about to be made; when it is the first to a new target after a
        failure elsewhere, that is a hop from the failed target to this one."""
        self.calls += 1
        if self.failures and self.failures[-1].candidate.target != candidate.target:
            self.on_hop(self.failures[-1], candidate)

    def usable(self, candidate: Candidate) -> bool:
        return self.min_context is None or _has_larger_context(candidate, self.min_context)

    @property
    def exhausted(self) -> bool:
        return self.calls >= self.policy.max_attempts

    def failed(self, candidate: Candidate, error: ProviderError, retry_number: int):
        """Record a failed call and decide: `STOP`, a delay before retrying the same target,
        or None to move on to the next one."""
        failure = Failure(candidate, self.calls, error)
        self.failures.append(failure)
        if error.error_class.stops_fallback:
            self.on_failure(failure, "stop")
            return STOP
        if error.error_class is ErrorClass.CONTEXT_LENGTH:
            self.min_context = max(self.min_context or 0, candidate.context or 0)
        delay = self.policy.retry_delay(error, retry_number, self.rng)
        if delay is None or self.exhausted:
            self.on_failure(failure, "next target")
            return None
        self.on_failure(failure, f"retry in {delay:.1f}s")
        return delay


def _has_larger_context(candidate: Candidate, than: int) -> bool:
    """Unknown context windows are given the benefit of the doubt only when the failed target's
    window was unknown too (`than == 0`)."""
    if candidate.context is None:
        return than == 0
    return candidate.context > than
