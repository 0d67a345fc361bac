"""`llmroute batch`: many prompts, N in flight, results as JSONL in input order.

Why it is shaped this way:
- Every prompt takes the `ask` path (`AsyncEngine.ask`: planning, budget reservation,
  retries/fallbacks, one ledger record per attempt with `kind: batch`), so a batch is never a
  second, laxer way to spend money.
- N worker coroutines pull the next prompt from one shared cursor over one `httpx.AsyncClient`.
- Results are written in input order as soon as the next one in order is ready, one flushed
  line each, so a crash or Ctrl-C loses nothing that finished; on interrupt the finished
  results still waiting for an earlier one are written too (`--resume` fills the gaps).
- A prompt refused by the budget stops the batch from starting new prompts; the prompts never
  started are reported as `not run: budget` and the command exits 4.
- A prompt whose every target is only rate-limited waits for the window to reopen and is
  planned again, instead of failing: rate limits are respected across the whole batch.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass, field, replace
from typing import Callable, Iterable, TextIO

from .engine import AskOptions
from .errors import BudgetError, LLMRouteError
from .prompt_input import PromptLine
from .types import Answer, Message, Request

NOT_RUN_BUDGET = "not run: budget"
RATE_WAIT_STEP_S = 1.0
RATE_WAIT_MAX_S = 600.0


# One prompt of the input: the shared prompt-file line (id, prompt, system, model).
BatchItem = PromptLine


@dataclass
class BatchResult:
    id: object
    text: str | None = None
    target: str | None = None
    usage: dict | None = None
    cost_usd: float | None = None
    error: str | None = None
    cached: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_json(self) -> dict:
        return {"id": self.id, "text": self.text, "target": self.target, "usage": self.usage,
                "cost_usd": self.cost_usd, "error": self.error, "cached": self.cached}

    @classmethod
    def from_answer(cls, item_id: object, answer: Answer) -> "BatchResult":
        usage = answer.usage
        return cls(id=item_id, text=answer.text, target=answer.target.id,
                   usage={"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens} if usage else None,
                   cost_usd=answer.cost_usd, cached=answer.cached)


@dataclass
class BatchSummary:
    total: int = 0
    ok: int = 0
    failed: int = 0
    not_run: int = 0
    skipped: int = 0  # --resume: already done
    spend_usd: float = 0.0
    budget_stopped: bool = False
    interrupted: bool = False

    @property
    def exit_code(self) -> int:
        if self.interrupted:
            return 130
        if self.budget_stopped:
            return 4
        return 1 if self.failed else 0


# --- input -----------------------------------------------------------------------------------


def done_ids(text: str) -> set[str]:
    """Ids (as canonical JSON) answered without error in an earlier run's output. Failed and
    not-run prompts are run again; a torn last line is ignored."""
    done: set[str] = set()
    for line in text.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and "id" in record and record.get("error") is None:
            done.add(json.dumps(record["id"]))
    return done


# --- output ----------------------------------------------------------------------------------


class OrderedWriter:
    """Writes results in input order, each as soon as every earlier one is written."""

    def __init__(self, stream: TextIO, count: int):
        self.stream = stream
        self.pending: dict[int, BatchResult] = {}
        self.next = 0
        self.count = count

    def put(self, index: int, result: BatchResult) -> None:
        self.pending[index] = result
        wrote = False
        while self.next in self.pending:
            self._write(self.pending.pop(self.next))
            self.next += 1
            wrote = True
        if wrote:
            self.stream.flush()

    def drain(self) -> None:
        """Write the finished results still waiting for an earlier one (on interrupt)."""
        for index in sorted(self.pending):
            self._write(self.pending.pop(index))
        self.stream.flush()

    def _write(self, result: BatchResult) -> None:
        self.stream.write(json.dumps(result.to_json(), ensure_ascii=False) + "\n")


class Progress:
    """A one-line bar on stderr (done/failed/spend/rate), redrawn at most every 0.1 s."""

    def __init__(self, stream: TextIO | None, total: int, monotonic: Callable[[], float]):
        self.stream = stream
        self.total = total
        self.monotonic = monotonic
        self.started = monotonic()
        self.last_draw = float("-inf")

    def update(self, summary: BatchSummary, *, final: bool = False) -> None:
        if self.stream is None:
            return
        now = self.monotonic()
        if not final and now - self.last_draw < 0.1:
            return
        self.last_draw = now
        from .render import bar, money

        finished = summary.ok + summary.failed
        elapsed = max(now - self.started, 1e-9)
        fraction = finished / self.total if self.total else 1.0
        line = (f"\r{bar(fraction, 20)} {finished}/{self.total} done, {summary.failed} failed, "
                f"{money(summary.spend_usd)}, {finished / elapsed:.1f}/s")
        self.stream.write(line + ("\n" if final else ""))
        self.stream.flush()


# --- running ---------------------------------------------------------------------------------


@dataclass
class BatchSettings:
    """What applies to every prompt unless its JSONL line says otherwise."""

    options: AskOptions
    system: str | None
    max_tokens: int
    temperature: float | None
    concurrency: int = 4
    batch_id: str = field(default_factory=lambda: uuid.uuid4().hex)


class BatchRunner:
    """Runs `items` through an `AsyncEngine` with `settings.concurrency` workers."""

    def __init__(self, aengine, items: list[BatchItem], settings: BatchSettings, writer: OrderedWriter,
                 progress: Progress, *, sleep: Callable[[float], "asyncio.Future"] = asyncio.sleep):
        self.aengine = aengine
        self.items = items
        self.settings = settings
        self.writer = writer
        self.progress = progress
        self.sleep = sleep
        self.summary = BatchSummary(total=len(items))
        self.cursor = 0
        self.stopping = False
        self._options: dict[str | None, AskOptions] = {}

    async def run(self) -> BatchSummary:
        workers = [asyncio.create_task(self._worker()) for _ in range(max(1, self.settings.concurrency))]
        try:
            await asyncio.gather(*workers)
        except asyncio.CancelledError:
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            self.writer.drain()
            self.summary.interrupted = True
            return self.summary
        for index in range(self.cursor, len(self.items)):  # never started: the budget stopped us
            self._finish(index, BatchResult(id=self.items[index].id, error=NOT_RUN_BUDGET))
        self.progress.update(self.summary, final=True)
        return self.summary

    async def _worker(self) -> None:
        while not self.stopping and self.cursor < len(self.items):
            index = self.cursor
            self.cursor += 1
            self._finish(index, await self._one(self.items[index]))

    async def _one(self, item: BatchItem) -> BatchResult:
        request, options = self._request_for(item)
        try:
            plan = await self._plan_when_allowed(request, options)
            answer = await self.aengine.ask(request, options, plan=plan)
        except BudgetError:
            self.stopping = True
            return BatchResult(id=item.id, error=NOT_RUN_BUDGET)
        except LLMRouteError as error:
            return BatchResult(id=item.id, error=error.lines()[0])
        except Exception as error:  # one broken prompt must not sink a thousand
            return BatchResult(id=item.id, error=f"internal error: {type(error).__name__}: {error}")
        return BatchResult.from_answer(item.id, answer)

    async def _plan_when_allowed(self, request: Request, options: AskOptions):
        """The plan, waiting while every target is excluded only by a rate limit."""
        engine = self.aengine.engine
        waited = 0.0
        while True:
            plan = engine.plan(request, options)
            rate_limited = plan.excluded and all(e.reason.startswith("rate limit") for e in plan.excluded)
            if plan.candidates or not rate_limited or waited >= RATE_WAIT_MAX_S:
                return plan
            await self.sleep(RATE_WAIT_STEP_S)
            waited += RATE_WAIT_STEP_S

    def _request_for(self, item: BatchItem) -> tuple[Request, AskOptions]:
        s = self.settings
        request = Request(messages=(Message("user", item.prompt),),
                          system=item.system if item.system is not None else s.system,
                          max_tokens=s.max_tokens, temperature=s.temperature)
        return request, self._options_for(item.model)

    def _options_for(self, model: str | None) -> AskOptions:
        """The options of every prompt with this `model` (None: the batch's own), built once:
        nothing on the ask path mutates AskOptions, so prompts can share one."""
        options = self._options.get(model)
        if options is None:
            s = self.settings
            extra = {**s.options.extra_record, "batch_id": s.batch_id}
            options = replace(s.options, kind="batch", stream=False, extra_record=extra,
                              model=model if model is not None else s.options.model,
                              route=None if model is not None else s.options.route)
            self._options[model] = options
        return options

    def _finish(self, index: int, result: BatchResult) -> None:
        summary = self.summary
        if result.error == NOT_RUN_BUDGET:
            summary.not_run += 1
            summary.budget_stopped = True
        elif result.ok:
            summary.ok += 1
            summary.spend_usd += result.cost_usd or 0.0
        else:
            summary.failed += 1
        self.writer.put(index, result)
        self.progress.update(summary)


def pending_items(items: Iterable[BatchItem], done: set[str]) -> list[BatchItem]:
    return [item for item in items if json.dumps(item.id) not in done]
