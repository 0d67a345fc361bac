"""The attempts of one prompt: the state a fallback loop keeps around its `calls.Call`s.

`Engine.ask` (sync, streamed or buffered) and `AsyncEngine.ask` (batch) drive the same
`PromptRun` through `resilience`'s fallback loop: `may_try` reserves a call's budget before it
is sent (or skips the target), `attempt`/`aattempt` send it, and the finished run becomes the
`Answer`, or the error that says why there is none (`all_failed`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from .calls import Call, CallSite
from .errors import AllAttemptsFailed, ErrorClass, ProviderError
from .resilience import Failure
from .routing.plan import Candidate, Plan
from .types import Attempt, Request, Result, Target

if TYPE_CHECKING:
    from .engine import AskOptions, Engine
    from .providers.base import Provider


class PromptRun:
    """The state of one `ask`: its attempts and the reserved calls waiting to be sent. Each
    attempt is one `calls.Call`; this class only adds what a fallback loop needs around it."""

    def __init__(self, engine: Engine, request: Request, options: AskOptions, plan: Plan,
                 on_text: Callable[[str], None] | None, on_event: Callable[[str], None],
                 on_notice: Callable[[str], None],
                 on_hop: Callable[[str], None] = lambda message: None):
        self.engine = engine
        self.request = request
        self.options = options
        self.plan = plan
        self.on_text = on_text if options.stream else None
        self.on_event = on_event
        self.on_notice = on_notice
        self.on_hop_line = on_hop
        # Hop lines wait until an answer comes: when every attempt fails, the error lists them.
        self.pending_hops: list[str] = []
        self.broken: list[ProviderError] = []  # failures already announced mid-answer
        self.site = CallSite(request, kind=options.kind, route=plan.route, strategy=plan.strategy,
                             tags=options.tags, extra=options.extra_record)
        self.request_id = self.site.request_id
        self.started = engine.monotonic()
        self.attempts: list[Attempt] = []
        self.reserved: dict[Target, Call] = {}
        self.budget_refusals = 0
        self.text_written = False

    def may_try(self, candidate: Candidate) -> bool:
        engine = self.engine
        snapshot = engine._snapshot
        if snapshot is not None and snapshot.breaker(candidate.target.id).state == "half_open":
            # One trial call after the cooldown, across all processes: take it or skip.
            if not engine.memory.claim_trial(candidate.target):
                self.on_event(f"{candidate.target}: skipped, another process is making its trial call")
                return False
        call = Call(engine, self.site, candidate.target)
        worst = candidate.est_cost_usd or 0.0
        if not call.reserve(worst, self.plan.estimated_input_tokens + self.request.max_tokens):
            self.budget_refusals += 1
            from .render import money

            self.on_event(f"{candidate.target}: skipped, the budget does not allow its worst case {money(worst)}")
            return False
        self.reserved[candidate.target] = call
        return True

    def call_for(self, candidate: Candidate, number: int) -> Call:
        """The call `may_try` reserved for this attempt."""
        call = self.reserved.pop(candidate.target, None) or Call(self.engine, self.site, candidate.target)
        call.number = number
        return call

    def attempt(self, candidate: Candidate, number: int) -> tuple[Result, Attempt]:
        call = self.call_for(candidate, number)
        try:
            try:
                provider = self.engine.provider(candidate.target.provider)
            except ProviderError as error:
                call.failed(error, 0)
                raise
            stream = self.on_text is not None
            result = call.send(provider, self.timeout_for(candidate.target),
                               on_text=self._write_text if stream else None, on_broken=self._broken)
        finally:
            self._keep(call)
        self._say_hops()
        return result, call.attempt

    async def aattempt(self, candidate: Candidate, number: int, provider: Provider) -> tuple[Result, Attempt]:
        """`attempt` over the provider's async transport (batch), buffered."""
        call = self.call_for(candidate, number)
        try:
            result = await call.asend(provider, self.timeout_for(candidate.target))
        finally:
            self._keep(call)
        self._say_hops()
        return result, call.attempt

    async def aopen_stream(self, candidate: Candidate, number: int, provider: Provider):
        """Start a streamed attempt and wait for its first piece (text or tool call): a target
        that fails before it raises here, so the fallback loop moves on and nobody saw it.
        Returns (call, first chunk, the rest of the call's stream); `finish_stream` ends it."""
        call = self.call_for(candidate, number)
        chunks = call.astream(provider, self.timeout_for(candidate.target))
        try:
            first = await anext(chunks)
        except StopAsyncIteration:  # pragma: no cover - an empty stream raises `empty` first
            self._keep(call)
            raise ProviderError(ErrorClass.EMPTY, f"{candidate.target} answered with no text") from None
        except BaseException:
            self._keep(call)
            raise
        self._say_hops()
        return call, first, chunks

    def finish_stream(self, call: Call) -> None:
        """A streamed attempt ended (answered, failed mid-answer or cut off): its attempt joins
        the run's."""
        self._keep(call)

    def _keep(self, call: Call) -> None:
        """After a send, answered or not: its attempt joins the run's; a call that never got
        as far as an attempt gives its reservation back."""
        if call.attempt is not None:
            self.attempts.append(call.attempt)
        else:
            call.release()

    def timeout_for(self, target: Target) -> float:
        provider_config = self.engine.config.providers[target.provider]
        return self.options.timeout or provider_config.timeout or self.engine.config.defaults.timeout

    def release_all(self) -> None:
        """Give back every open reservation (a cancelled run answers nothing)."""
        while self.reserved:
            self.engine.bookkeep(self.reserved.popitem()[1].release)

    def _write_text(self, text: str) -> None:
        self._say_hops()  # before the answering target's text, not after it
        self.on_text(text)
        self.text_written = True

    def _broken(self, target: Target, error: ProviderError) -> None:
        self.broken.append(error)
        self.on_notice(f"\n[{target} failed mid-answer: {error.error_class.value}; "
                       f"the answer below is from the next target]")

    def on_hop(self, failure: Failure, candidate: Candidate) -> None:
        """The loop left `failure`'s target for `candidate`: one line, said once an answer
        comes (a stream broken mid-answer has already said so in its own words)."""
        if not any(error is failure.error for error in self.broken):
            self.pending_hops.append(hop_line(failure, candidate))

    def _say_hops(self) -> None:
        lines, self.pending_hops = self.pending_hops, []
        for line in lines:
            self.on_hop_line(line)

    def on_failure(self, failure: Failure, next_step: str) -> None:
        error = failure.error
        status = f" ({error.http_status})" if error.http_status else ""
        self.on_event(f"attempt {failure.attempt} {failure.candidate.target}: "
                      f"{error.error_class.value}{status}: {error.message} -> {next_step}")


def hop_line(failure: Failure, candidate: Candidate) -> str:
    """`openai/gpt-4o-mini auth 401 → anthropic/claude-haiku-4-5` (SPEC §4)."""
    error = failure.error
    status = f" {error.http_status}" if error.http_status else ""
    return f"{failure.candidate.target} {error.error_class.value}{status} → {candidate.target}"


def all_failed(failures: list[Failure], attempts: list[Attempt], stopped: bool,
                excluded: int = 0) -> AllAttemptsFailed:
    parts = []
    for failure in failures:
        error = failure.error
        status = f" {error.http_status}" if error.http_status else ""
        parts.append(f"{failure.candidate.target} {error.error_class.value}{status}")
    if stopped:
        last = failures[-1].error
        return AllAttemptsFailed(
            f"the request was refused as invalid by {failures[-1].candidate.target}: {last.message}",
            attempts, "fix the request (see the message above); other targets would refuse it too",
        )
    skipped = f"; {excluded} other target{'s were' if excluded != 1 else ' was'} skipped" if excluded else ""
    return AllAttemptsFailed(
        f"every attempt failed ({len(failures)}): " + "; ".join(parts) + skipped,
        attempts, "run with -v for details, --explain to see why targets were skipped, or `llmroute health`"
        if excluded else "run with -v for details, or check `llmroute health`",
    )
