"""Side-by-side calls: one request to many targets at once (SPEC §7), and the `Caller` that
`abtest` and sampled A/B reuse.

Fairness is the point of `compare`: every target gets the identical `Request` (same system
prompt, same `--context` material, same limits), and all calls start together over ONE
`httpx.AsyncClient`, so the wall time is close to the slowest target rather than the sum.

`Caller` makes calls that must not fall back (a comparison of X must be X's answer): each is
one `calls.Call` — the same life as every engine attempt — reserved before anything is sent (a
refusal makes the target "skipped", with no call and no record) and sent with `Call.asend`.
"""

from __future__ import annotations

import asyncio
import uuid
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, AsyncIterator, Sequence

from .calls import Call, CallSite
from .errors import ProviderError
from .judging import judge_pair
from .catalog.costs import price_for, worst_case_cost
from .catalog.params import ParamRanges
from .tokens import estimate_tokens
from .types import Request, Target

if TYPE_CHECKING:
    import httpx

    from .engine import Engine


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


class Caller:
    """Sends single, non-falling-back calls over one async client; see the module docstring."""

    def __init__(self, engine: "Engine", aclient: "httpx.AsyncClient", *, tags: Sequence[str] = (),
                 route: str | None = None, timeout: float | None = None):
        self.engine = engine
        self.aclient = aclient
        self.tags = tuple(tags)
        self.route = route
        self.timeout = timeout

    def prepare(self, target: Target, request: Request, *, kind: str, extra: dict) -> Call | CallResult:
        """Check the key and reserve the budget; a CallResult (status skipped) when it cannot go."""
        engine = self.engine
        skipped = lambda why: CallResult(target, "skipped", "", message=why)  # noqa: E731
        provider_cfg = engine.config.providers.get(target.provider)
        if provider_cfg is None or engine.config.model(target) is None:
            return skipped("unknown target")
        if not engine.has_key(provider_cfg):
            return skipped("no key")
        out_of_range = ParamRanges.for_provider(provider_cfg).problem(request)
        if out_of_range is not None:
            return skipped(out_of_range)  # SPEC §4: never send what the provider refuses
        call = Call(engine, CallSite(request, kind=kind, route=self.route, tags=self.tags, extra=dict(extra)),
                    target)
        worst = worst_case_for(engine, target, request)
        if worst is None:
            return skipped("no price known")
        if not call.reserve(worst, estimate_tokens(request.prompt_text) + request.max_tokens):
            from .render import money

            return skipped(f"budget: its worst case {money(worst)} does not fit")
        return call

    async def send(self, call: Call) -> CallResult:
        engine = self.engine
        target = call.target
        provider_cfg = engine.config.providers[target.provider]
        timeout = self.timeout or provider_cfg.timeout or engine.config.defaults.timeout
        request_id = call.site.request_id
        try:
            result = await call.asend(engine.async_provider(target.provider, self.aclient), timeout)
        except ProviderError as error:
            return CallResult(target, "error", request_id, latency_ms=call.attempt.latency_ms,
                              error=error.error_class.value, message=error.message)
        attempt = call.attempt
        usage = attempt.usage
        return CallResult(target, "ok", request_id, result.text, attempt.latency_ms,
                          usage.input_tokens if usage else 0, usage.output_tokens if usage else 0,
                          attempt.cost_usd)

    async def call(self, target: Target, request: Request, *, kind: str, extra: dict) -> CallResult:
        prepared = self.prepare(target, request, kind=kind, extra=extra)
        return prepared if isinstance(prepared, CallResult) else await self.send(prepared)


def worst_case_for(engine: "Engine", target: Target, request: Request) -> float | None:
    """The most one call can cost (estimated input plus a full `max_tokens` answer) for the
    budget to hold; 0 with no budget or no price, None when a dollar budget needs a price and
    there is none."""
    if engine.budget is None:
        return 0.0
    price = price_for(engine.config, target)
    if price is None:
        return None if engine.config.budget.has_dollar_limit else 0.0
    return worst_case_cost(price, estimate_tokens(request.prompt_text), request.max_tokens)


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
            caller.send(p) if isinstance(p, Call) else _ready(p) for p in prepared)))
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
