"""One prompt end to end: plan -> reserve -> attempt loop -> record -> settle.

The engine is the only place that knows the whole flow, and it knows it as function calls on
typed values: the planner decides the order, `resilience.run_with_fallback` decides retries and
fallbacks, providers translate, the ledger records, the routing memory learns, the budget guard
reserves and settles. It never touches a terminal: text and events go to callbacks the CLI
supplies, so the same engine serves `ask`, `batch`, `compare` and the tests. The one exception
is `warn` (default: a line on stderr), for what a user must hear whatever the command: a ledger
or state file that could not be written.

Faults of the machine rather than the provider (SPEC §5):
- Before the first call, `check_writable` refuses (exit 1, naming the path) when the data
  directory or the ledger cannot be written: nothing is spent that could not be recorded.
- A ledger write that still fails later (disk full) does not lose a paid answer: the answer is
  returned, one warning says calls are not being recorded, and with `ledger.required: true`
  `check_ledger` (called once the answer is out) turns it into exit 1. Reservations are settled
  or released either way, and a state file that cannot be updated is a warning (`bookkeep`).
- Every key resolved in this process is redacted from answers (`secrets`, used by
  `calls.Call`) before they are shown, recorded or cached.
"""

from __future__ import annotations

import os
import random
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable, Protocol

import httpx

from . import __version__
from .config.model import Config, ProviderConfig
from .errors import BudgetError, NoProviderError
from .keys import KeyStore
from .attempts import PromptRun, all_failed
from .ledger import Ledger, LedgerWriteError, ledger_path
from .paths import Paths, ensure_private_dir
from .providers import create_provider, needs_key
from .providers.base import HttpProvider, Provider
from .resilience import RetryPolicy, run_with_fallback
from .routing.memory import MemorySnapshot, RoutingMemory
from .routing.plan import BudgetFilter, Plan
from .routing.inputs import PlanInputs, PlanningTable
from .routing.planner import make_plan
from .routing.strategies import round_robin_key
from .state import stderr_warning
from .writability import reason, require_access, unwritable
from .types import Answer, Request, Target


@dataclass
class AskOptions:
    """Per-invocation choices from the command line."""

    model: str | None = None
    route: str | None = None
    strategy: str | None = None
    no_fallback: bool = False
    tags: tuple[str, ...] = ()
    timeout: float | None = None
    max_cost_usd: float | None = None
    stream: bool = False
    kind: str = "ask"
    extra_record: dict = field(default_factory=dict)  # e.g. compare_id, ab_id
    cache: bool | None = None  # --cache/--no-cache; None = config `cache.enabled`
    explain: bool = False  # planning for --explain / `route`: nothing is sent


class BudgetGuard(Protocol):
    """The budget's side of a call (issue: budget). `reserve` returns a handle, or None when
    the reservation would cross a limit; `settle` replaces it with the real spend."""

    def plan_filter(self) -> BudgetFilter | None: ...

    def used_fraction(self) -> float | None: ...

    def reserve(self, target: Target, provider: ProviderConfig, worst_case_usd: float,
                worst_case_tokens: int) -> object | None: ...

    def settle(self, handle: object, cost_usd: float, tokens: int) -> None: ...

    def release(self, handle: object) -> None: ...

    def exhausted_error(self, plan: Plan) -> BudgetError | None: ...


class Engine:
    def __init__(
        self,
        config: Config,
        *,
        paths: Paths,
        keys: KeyStore,
        client: httpx.Client | None = None,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        budget: BudgetGuard | None = None,
        memory: RoutingMemory | None = None,
        cache=None,
        warn: Callable[[str], None] = stderr_warning,
    ):
        self.config = config
        self.paths = paths
        self.keys = keys
        self._client = client
        self._plain_client: httpx.Client | None = None
        self._client_injected = client is not None  # tests' MockTransport serves every URL
        self.clock = clock
        self.monotonic = monotonic
        self.sleep = sleep
        self.rng = rng or random.Random()
        self.budget = budget
        windowed = frozenset(p.name for p in config.providers.values() if p.rpm or p.tpm)
        self.memory = memory if memory is not None else RoutingMemory(paths.state_dir, clock=clock,
                                                                      windowed=windowed)
        self.ledger = Ledger(ledger_path(config, paths), on_error=self._ledger_failed)
        self.warn = warn
        self.ledger_error: OSError | None = None  # the first failed ledger write, if any
        self._ledger_unreported = False  # `ledger.required`, failed, and no error said so yet
        self._state_warned = False
        self._checked: set[bool] = set()  # check_writable passed (True: the ledger too)
        self._providers: dict[str, Provider] = {}
        self._async_client: httpx.AsyncClient | None = None
        self._async_providers: dict[str, Provider] = {}
        self._snapshot: MemorySnapshot | None = None  # the routing memory the last plan used
        self._cache = cache  # a ResponseCache; opened on first use when the cache is wanted
        # The config's static per-target facts, so each plan (batch, --each-line) only does
        # the per-prompt work.
        self._table = PlanningTable.for_config(config)

    # --- planning -------------------------------------------------------------------------

    def has_key(self, provider: ProviderConfig) -> bool:
        return not needs_key(provider) or self.keys.resolve(provider).value is not None

    def _local_now(self):
        """Now in the budget's timezone, which is what rules' `hours`/`weekdays` mean."""
        name = self.config.budget.timezone
        if name in ("local", "", None):
            return datetime.fromtimestamp(self.clock()).astimezone()
        from .budget.windows import zone_for

        return zone_for(name).to_local(self.clock())

    def key_for(self, provider: ProviderConfig) -> str | None:
        """The key to send, if any: a key that is found is always sent, keyless provider or not
        (SPEC §4; a LiteLLM proxy on localhost checks the OPENAI_API_KEY it is given).
        `KeyStore.for_call` keeps this cheap for local servers at their default address: their
        key variable and `key_cmd` are read, the OS keyring (the slowest step of a local
        prompt) is not."""
        return self.keys.for_call(provider).value

    def plan(self, request: Request, options: AskOptions) -> Plan:
        from .routing.learner import load_view

        inputs = PlanInputs(
            config=self.config,
            request=request,
            now=self._local_now(),
            model_option=options.model,
            route_option=options.route,
            strategy_option=options.strategy,
            tags=frozenset(options.tags),
            no_fallback=options.no_fallback,
            max_cost_usd=options.max_cost_usd,
            has_key=self.has_key,
            budget_filter=self.budget.plan_filter() if self.budget else None,
            budget_used=self.budget.used_fraction() if self.budget else None,
            extra={"rng": self.rng},
            explain=options.explain,
            table=self._table,
            learner=load_view(self.paths.state_dir, self.memory),
        )
        self._snapshot = self.memory.snapshot()
        return make_plan(inputs, self._snapshot)

    # --- asking ---------------------------------------------------------------------------

    def ask(
        self,
        request: Request,
        options: AskOptions,
        *,
        on_text: Callable[[str], None] | None = None,
        on_event: Callable[[str], None] = lambda message: None,
        on_notice: Callable[[str], None] = lambda message: None,
        plan: Plan | None = None,
        on_hop: Callable[[str], None] = lambda message: None,
    ) -> Answer:
        """Answer one prompt. Streams text to `on_text` when `options.stream`; raises
        NoProviderError / BudgetError / AllAttemptsFailed when nothing answers.

        `on_event` gets the details `-v` shows (each failure and what happens next);
        `on_notice` what a user must always see (an answer broken off mid-stream); `on_hop`
        one line per failed target when the answer comes from another one, before its text."""
        cache, hit, plan = self.begin(request, options, plan)
        if hit is not None:
            return hit
        run = PromptRun(self, request, options, plan, on_text, on_event, on_notice, on_hop)
        try:
            outcome = run_with_fallback(
                plan.candidates, run.attempt, self.retry_policy(), sleep=self.sleep, rng=self.rng,
                on_failure=run.on_failure, may_try=run.may_try, on_hop=run.on_hop,
            )
        except BaseException:
            run.release_all()  # Ctrl-C between reserving and sending: nothing stays reserved
            raise
        return self.conclude(run, outcome, cache)

    def begin(self, request: Request, options: AskOptions, plan: Plan | None):
        """What every way of asking does first (shared with the async engine): a cache hit
        answers at once; else plan, fail when nothing is left to try, and advance the
        round-robin cursor. Returns (cache hook or None, cached answer or None, plan)."""
        self.check_writable()
        cache = self.cache_hook(options)
        hit = cache.lookup(request) if cache is not None else None
        if hit is not None:
            return cache, hit, plan
        plan = plan or self.plan(request, options)
        if not plan.candidates:
            raise self.nothing_to_try(plan)
        if plan.strategy == "round-robin":
            # The plan already put this turn's target first; move the cursor for the next call.
            self.memory.advance_round_robin(round_robin_key(plan.route), len(plan.candidates))
        return cache, None, plan

    # --- the machine's faults (SPEC §5) --------------------------------------------------

    def check_writable(self, *, ledger: bool = True) -> None:
        """Refuse, before any provider call, when what the call would write cannot be written:
        the state directory (budget reservations, routing memory) and, with `ledger`, the
        ledger. Raises an exit-1 error naming the path and what to do. Checked once per engine.

        Opening the ledger for append (or checking its directory when it does not exist yet)
        changes nothing; a full disk is not seen here, and is handled where it happens."""
        if ledger in self._checked or True in self._checked:
            return
        state_dir = self.paths.state_dir
        try:
            ensure_private_dir(state_dir)
            require_access(state_dir)
        except OSError as error:
            raise unwritable("llmroute's data directory", self.paths.data_dir, error,
                              "set LLMROUTE_HOME") from None
        if ledger:
            path = self.ledger.path
            try:
                ensure_private_dir(path.parent)
                if path.exists() or path.is_symlink():
                    os.close(os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC))
                else:
                    require_access(path.parent)
            except OSError as error:
                raise unwritable("the ledger", path, error, "set ledger.path in the config") from None
        self._checked.add(ledger)

    def _ledger_failed(self, error: OSError) -> None:
        """A ledger append failed after the call it records was made. Remember the first
        failure and say so once, now, unless `ledger.required` makes it an error at the end."""
        if self.ledger_error is not None:
            return
        self.ledger_error = error
        if self.config.ledger.required:
            self._ledger_unreported = True
            return
        self.warn(f"could not write the ledger {self.ledger.path} ({reason(error)}): calls are not "
                  "being recorded or counted in the budget; free some space or fix ledger.path")

    def check_ledger(self) -> None:
        """Call once the answer is out: with `ledger.required: true`, a failed ledger write
        fails the invocation (exit 1) though the answer was delivered."""
        if self.ledger_error is None or not self.config.ledger.required:
            return
        self._ledger_unreported = False
        raise LedgerWriteError(
            f"could not write the ledger {self.ledger.path} ({reason(self.ledger_error)}): "
            "the answer was delivered but the call is not recorded",
            "ledger.required is true, so this is an error: free some space or fix ledger.path")

    def bookkeep(self, action: Callable[[], object]) -> None:
        """Run a state update (routing memory, budget settle or release) after a call was made:
        an OSError (disk full, read-only) is one warning, never a lost answer. A reservation
        that could not be dropped expires once this process has exited."""
        try:
            action()
        except OSError as error:
            if not self._state_warned:
                self._state_warned = True
                self.warn(f"could not update llmroute's state in {self.paths.state_dir} ({reason(error)}); "
                          "routing memory and budget reservations may lag behind")

    def secrets(self) -> tuple[str, ...]:
        """Every key resolved so far in this process: redacted from what providers send back."""
        return self.keys.known_values()

    def retry_policy(self) -> RetryPolicy:
        defaults = self.config.defaults
        return RetryPolicy(retries=defaults.retries, max_attempts=defaults.max_attempts)

    def conclude(self, run: "PromptRun", outcome, cache=None) -> Answer:
        """The answer of a finished fallback loop (stored in the cache hook when there is one),
        or the error that says why there is none (shared by the sync and async paths)."""
        if outcome.value is None:
            if not outcome.failures and run.budget_refusals:
                raise self.budget.exhausted_error(run.plan) or BudgetError("blocked by budget")
            raise all_failed(outcome.failures, run.attempts, outcome.stopped, len(run.plan.excluded))
        result, attempt = outcome.value
        answer = Answer(
            request_id=run.request_id, text=result.text, target=attempt.target, route=run.plan.route,
            usage=attempt.usage, cost_usd=attempt.cost_usd,
            latency_ms=int((self.monotonic() - run.started) * 1000), attempts=run.attempts,
            tool_calls=result.tool_calls, finish_reason=result.finish_reason,
        )
        if cache is not None:
            cache.store(run.request, answer)
        return answer

    # --- response cache -------------------------------------------------------------------

    def response_cache(self):
        if self._cache is None:
            from .cache import ResponseCache

            self._cache = ResponseCache.for_data_dir(self.paths.data_dir, ttl=self.config.cache.ttl,
                                                     clock=self.clock, warn=self.warn)
        return self._cache

    def cache_hook(self, options: AskOptions):
        """The cache's lookup/store for this request when it is wanted, else None."""
        if options.cache is False or (options.cache is None and not self.config.cache.enabled):
            return None  # the common case decides without importing the cache (sqlite3)
        from .cache import CacheHook, cache_wanted

        return CacheHook(self, options) if cache_wanted(self.config, options) else None

    def provider(self, name: str) -> Provider:
        if name not in self._providers:
            config = self.config.providers[name]
            provider = create_provider(config, key=self.key_for(config), sleep=self.sleep)
            if isinstance(provider, HttpProvider):
                provider.use_client(self.client_for(provider.base_url))
            self._providers[name] = provider
        return self._providers[name]

    def async_provider(self, name: str, aclient: httpx.AsyncClient) -> Provider:
        """The provider for calls over `aclient` (batch, compare, abtest, sampled A/B). One
        cache per engine, like `provider`: built once per async client and reused by every
        caller of it. HTTP formats get no sync client (their `acomplete` never uses one, and
        building one costs a TLS context load); formats without an async transport (mock,
        local) get the sync client for their worker-thread fallback."""
        if self._async_client is not aclient:
            self._async_client = aclient
            self._async_providers = {}
        if name not in self._async_providers:
            from .providers import provider_class

            config = self.config.providers[name]
            http = issubclass(provider_class(config.type), HttpProvider)
            self._async_providers[name] = create_provider(
                config, key=self.key_for(config), client=None if http else self.client,
                aclient=aclient if http else None, sleep=self.sleep)
        return self._async_providers[name]

    def client_for(self, url: str) -> httpx.Client:
        """The shared client for a URL. Plain-HTTP URLs (local servers) get a client that never
        builds a TLS context: loading the CA bundle is a large part of start-up, and a client
        used only for http:// never negotiates TLS. Everything else gets the verifying client."""
        if url.startswith("http://") and not self._client_injected:
            if self._plain_client is None:
                self._plain_client = httpx.Client(headers=self._headers(), verify=False)
            return self._plain_client
        return self.client

    @property
    def client(self) -> httpx.Client:
        if self._client is None:
            self._client = httpx.Client(headers=self._headers())
        return self._client

    @staticmethod
    def _headers() -> dict[str, str]:
        return {"User-Agent": f"llmroute/{__version__}"}

    def close(self) -> None:
        if self._ledger_unreported:  # `required`, but the command ended before check_ledger
            self._ledger_unreported = False
            self.warn(f"could not write the ledger {self.ledger.path} ({reason(self.ledger_error)}): "
                      "calls were not recorded")
        for provider in self._providers.values():
            provider.close()
        for client in (self._client, self._plain_client):
            if client is not None:
                client.close()

    def record(self, record: dict) -> None:
        """Append one ledger record (every call's record comes through here)."""
        self.ledger.append(record)

    def nothing_to_try(self, plan: Plan) -> Exception:
        if self.budget is not None:
            error = self.budget.exhausted_error(plan)
            if error is not None:
                return error
        if not self.config.providers:
            return NoProviderError(
                "no providers are configured and none were found (no API key variables, no Ollama, no local model)",
                "set a key (e.g. export OPENAI_API_KEY=...), install the local model with "
                "pip install 'llmroute[local]', or write a config with `llmroute config init`",
            )
        reasons = "; ".join(f"{e.target.id}: {e.reason}" for e in plan.excluded) or "no targets"
        if plan.excluded and all("--max-cost" in e.reason for e in plan.excluded):
            # The per-invocation cost cap is a budget: refusing every target is exit 4, not 5.
            return BudgetError(f"blocked by --max-cost: {reasons}", "raise --max-cost or lower --max-tokens")
        return NoProviderError(f"nothing to try: {reasons}", "see `llmroute keys list` or run with --explain")
