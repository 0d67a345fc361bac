"""Side-by-side calls: one request to many targets at once (SPEC §7), and the `Caller` that
`abtest` and sampled A/B reuse.

Fairness is the point of `compare`: every target gets the identical `Request` (same system
prompt, same `--context` material, same limits), and all calls start together over ONE
`httpx.AsyncClient`, so the wall time is close to the slowest target rather than the sum.

`Caller` is the async sibling of the engine's attempt loop for calls that must not fall back
(a comparison of X must be X's answer): reserve the worst case with the budget guard before
sending (a refusal makes the target "skipped", with no call and no record), call the provider's
`acomplete`, write one ledger record (`records.build_record`, as the engine does), teach the
routing memory, and settle or release the reservation.
"""

from __future__ import annotations

import asyncio
import uuid
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, AsyncIterator, Sequence

from .errors import ProviderError
from .ledger import make_ts, prompt_sha256
from .pricing import charge, price_for, worst_case_cost
from .providers import create_provider
from .records import build_record
from .resilience import RetryPolicy
from .tokens import estimate_tokens
from .types import Attempt, Request, Result, Target

if TYPE_CHECKING:
    import httpx

    from .engine import Engine
    from .providers.base import Provider


@dataclass
class CallResult:
    """One target's part of a comparison: `status` is ok, error or skipped (never sent)."""

    target: Target
    status: str
    request_id: str
    text: str = ""
    latency_ms: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float | None = None
    error: str | None = None
    message: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_json(self) -> dict:
        return {"target": self.target.id, "status": self.status, "request_id": self.request_id,
                "latency_ms": self.latency_ms, "input_tokens": self.input_tokens,
                "output_tokens": self.output_tokens, "cost_usd": self.cost_usd,
                "error": self.error, "message": self.message, "text": self.text}


@dataclass
class Prepared:
    """A call that passed its checks and holds its budget reservation (or needs none)."""

    target: Target
    request: Request
    kind: str
    extra: dict
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    handle: object | None = None


class Caller:
    """Sends single, non-falling-back calls over one async client; see the module docstring."""

    def __init__(self, engine: "Engine", aclient: "httpx.AsyncClient", *, tags: Sequence[str] = (),
                 route: str | None = None, timeout: float | None = None):
        self.engine = engine
        self.aclient = aclient
        self.tags = tuple(tags)
        self.route = route
        self.timeout = timeout
        self._providers: dict[str, "Provider"] = {}

    def prepare(self, target: Target, request: Request, *, kind: str, extra: dict) -> Prepared | CallResult:
        """Check the key and reserve the budget; a CallResult (status skipped) when it cannot go."""
        engine = self.engine
        skipped = lambda why: CallResult(target, "skipped", "", message=why)  # noqa: E731
        provider_cfg = engine.config.providers.get(target.provider)
        if provider_cfg is None or engine.config.model(target) is None:
            return skipped("unknown target")
        if not engine.has_key(provider_cfg):
            return skipped("no key")
        prepared = Prepared(target, request, kind, dict(extra))
        if engine.budget is None:
            return prepared
        price = price_for(engine.config, target)
        input_tokens = estimate_tokens(request.prompt_text)
        if price is None and engine.config.budget.has_dollar_limit:
            return skipped("no price known")
        worst = worst_case_cost(price, input_tokens, request.max_tokens) if price else 0.0
        handle = engine.budget.reserve(target, provider_cfg, worst, input_tokens + request.max_tokens)
        if handle is None:
            return skipped(f"budget: its worst case ${worst:.6f} does not fit")
        prepared.handle = handle
        return prepared

    async def send(self, prepared: Prepared) -> CallResult:
        engine = self.engine
        target = prepared.target
        provider_cfg = engine.config.providers[target.provider]
        timeout = self.timeout or provider_cfg.timeout or engine.config.defaults.timeout
        started = engine.monotonic()
        try:
            provider = self._provider(target.provider)
            result = await provider.acomplete(prepared.request, target.model, timeout=timeout)
        except ProviderError as error:
            latency = int((engine.monotonic() - started) * 1000)
            return self._failed(prepared, error, latency)
        latency = int((engine.monotonic() - started) * 1000)
        return self._answered(prepared, result, latency)

    async def call(self, target: Target, request: Request, *, kind: str, extra: dict) -> CallResult:
        prepared = self.prepare(target, request, kind=kind, extra=extra)
        return prepared if isinstance(prepared, CallResult) else await self.send(prepared)

    def release(self, prepared: Prepared) -> None:
        """Give back a reservation for a call that will not be sent after all."""
        if prepared.handle is not None and self.engine.budget is not None:
            self.engine.budget.release(prepared.handle)

    def _provider(self, name: str) -> "Provider":
        if name not in self._providers:
            config = self.engine.config.providers[name]
            key = self.engine.key_for(config)
            self._providers[name] = create_provider(config, key=key, aclient=self.aclient,
                                                    sleep=self.engine.sleep)
        return self._providers[name]

    def _answered(self, prepared: Prepared, result: Result, latency: int) -> CallResult:
        engine = self.engine
        target = prepared.target
        usage, cost, source = charge(engine.config, target, prepared.request.prompt_text, result)
        attempt = Attempt(target=target, attempt=1, status="ok", latency_ms=latency, usage=usage,
                          cost_usd=cost, price_source=source)
        self._write(prepared, attempt, result.text)
        tokens = usage.input_tokens + usage.output_tokens
        engine.memory.record_success(target, latency, result.rate_limits, tokens)
        if prepared.handle is not None and engine.budget is not None:
            engine.budget.settle(prepared.handle, cost or 0.0, tokens)
        return CallResult(target, "ok", prepared.request_id, result.text, latency,
                          usage.input_tokens, usage.output_tokens, cost)

    def _failed(self, prepared: Prepared, error: ProviderError, latency: int) -> CallResult:
        engine = self.engine
        target = prepared.target
        attempt = Attempt(target=target, attempt=1, status="error", latency_ms=latency,
                          error=error.error_class.value, http_status=error.http_status,
                          message=error.message)
        self._write(prepared, attempt, None)
        engine.memory.record_failure(target, error.error_class, error.retry_after_s,
                                     error.rate_limits, RetryPolicy().max_retry_after_s)
        self.release(prepared)
        return CallResult(target, "error", prepared.request_id, latency_ms=latency,
                          error=error.error_class.value, message=error.message)

    def _write(self, prepared: Prepared, attempt: Attempt, answer: str | None) -> None:
        engine = self.engine
        log_prompts = engine.config.ledger.log_prompts
        request = prepared.request
        engine.ledger.append(build_record(
            ts=make_ts(engine.clock()), request_id=prepared.request_id, kind=prepared.kind,
            attempt=attempt, route=self.route, strategy=None, tags=self.tags,
            prompt_hash=prompt_sha256(request.prompt_text), extra=prepared.extra,
            prompt=request.prompt_text if log_prompts else None,
            answer=answer if log_prompts else None,
        ))


@asynccontextmanager
async def shared_client(aclient: "httpx.AsyncClient | None" = None) -> AsyncIterator["httpx.AsyncClient"]:
    """The caller's client when given (tests pass a MockTransport one), else a fresh one that
    is closed afterwards."""
    if aclient is not None:
        yield aclient
        return
    import httpx

    from . import __version__

    async with httpx.AsyncClient(headers={"User-Agent": f"llmroute/{__version__}"},
                                 limits=httpx.Limits(max_connections=64)) as client:
        yield client


@dataclass
class Ranking:
    """`compare --judge`: each answer's pairwise record, best first."""

    target: Target
    points: float
    wins: int
    losses: int
    ties: int


@dataclass
class CompareOutcome:
    compare_id: str
    results: list[CallResult]
    wall_ms: int
    ranking: list[Ranking] | None = None

    @property
    def any_ok(self) -> bool:
        return any(r.ok for r in self.results)


def run_compare(engine: "Engine", request: Request, targets: Sequence[Target], *,
                timeout: float | None = None, tags: Sequence[str] = (), route: str | None = None,
                judge: Target | None = None, aclient: "httpx.AsyncClient | None" = None) -> CompareOutcome:
    """Ask every target the identical request concurrently; optionally rank the answers."""
    return asyncio.run(acompare(engine, request, targets, timeout=timeout, tags=tags, route=route,
                                judge=judge, aclient=aclient))


async def acompare(engine: "Engine", request: Request, targets: Sequence[Target], *,
                   timeout: float | None = None, tags: Sequence[str] = (), route: str | None = None,
                   judge: Target | None = None, aclient: "httpx.AsyncClient | None" = None) -> CompareOutcome:
    compare_id = uuid.uuid4().hex
    extra = {"compare_id": compare_id}
    async with shared_client(aclient) as client:
        caller = Caller(engine, client, tags=tags, route=route, timeout=timeout)
        started = engine.monotonic()
        # Every reservation is made before anything is sent, so the skipped ones are known up
        # front and the calls that do go start together.
        prepared = [caller.prepare(t, request, kind="compare", extra=extra) for t in targets]
        results = list(await asyncio.gather(*(
            caller.send(p) if isinstance(p, Prepared) else _ready(p) for p in prepared)))
        wall_ms = int((engine.monotonic() - started) * 1000)
        ranking = None
        if judge is not None:
            ranking = await rank_pairwise(caller, judge, request, results, extra)
    return CompareOutcome(compare_id, results, wall_ms, ranking)


async def _ready(result: CallResult) -> CallResult:
    return result


async def rank_pairwise(caller: Caller, judge: Target, request: Request,
                        results: Sequence[CallResult], extra: dict) -> list[Ranking]:
    """Judge every pair of answers (both orders, as `abtest` does) and rank by points: a win
    is 1, a tie ½. Pairs the judge could not decide (it failed) count as ties."""
    from .abtest import judge_pair

    answered = [r for r in results if r.ok]
    table = {r.target: Ranking(r.target, 0.0, 0, 0, 0) for r in answered}
    pairs = [(x, y) for i, x in enumerate(answered) for y in answered[i + 1:]]
    verdicts = await asyncio.gather(*(
        judge_pair(caller, judge, request, x.text, y.text, extra) for x, y in pairs))
    for (x, y), verdict in zip(pairs, verdicts):
        outcome = verdict.outcome or "tie"
        for me, other, mine in ((x, y, "a"), (y, x, "b")):
            row = table[me.target]
            if outcome == "tie":
                row.ties += 1
                row.points += 0.5
            elif outcome == mine:
                row.wins += 1
                row.points += 1
            else:
                row.losses += 1
    return sorted(table.values(), key=lambda r: (-r.points, -r.wins))
