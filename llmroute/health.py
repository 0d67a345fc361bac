"""`llmroute health`: probe providers, judge their status, keep history, feed the breakers.

One probe round (SPEC §9):

1. Every selected provider is probed at once, in a thread pool (providers' calls are blocking
   and share one thread-safe `httpx.Client`), with its cheapest call: list models. `deep` sends
   a one-token prompt through `complete` instead and writes a `kind: health` ledger record.
2. Status: `down` when the probe failed (refused, timeout, 5xx, auth, unreadable answer);
   `degraded` when it answered but slowly (over `PROBE_SLOW_MS`, or `DEEP_SLOW_MS` for a deep
   probe) or while its recent probes fail often (error rate over `ERROR_RATE_DEGRADED` across
   at least `MIN_SAMPLES_FOR_RATE` probes in 24 h); else `up`. A provider that needs a key and
   has none is `no key`: not probed, not kept, not counted as down.
3. History (`state/health.json`, one `StateStore`): per provider `[ts, status, latency_ms, ok]`
   entries, pruned to 24 h and at most `MAX_HISTORY` entries. The new entry is appended and the
   previous status read in ONE locked update, so a status change is seen by exactly one process
   and its alert fires once, however many `health` runs overlap.
4. Results feed the circuit breakers: `down` trips every probed target's breaker; `up` records
   a success only on a breaker that is open or half-open (a healthy probe ends the cooldown).
5. Status changes fire alerts (`budget.alerts.fire_alert`: the config's command and/or webhook):
   `down`, `degraded`, and `recovered` (back to `up` from down or degraded). The first probe of
   a provider alerts only when it is not up. A failing alert is a warning, never an error.

Statistics over the 24 h history:
- uptime: time-weighted share of probes that answered (up or degraded); each probe stands for
  the time halfway to its neighbours, so a burst of `--watch` probes does not outweigh hours of
  cron probes. With no time between probes, each counts once.
- error rate: share of probes that failed (count-based).
- p95 latency: nearest-rank 95th percentile of the probes that answered.
- score 0–100 = 40 × uptime + 30 × latency score(p95) + 30 × (1 − error rate), where the latency
  score is 100 at ≤ `LATENCY_BEST_MS`, 0 at ≥ `LATENCY_WORST_MS`, and falls linearly in
  log(latency) in between (300 ms → 100, ~1.7 s → 50, 10 s → 0); no answered probe scores 0.
"""

from __future__ import annotations

import math
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Mapping

from .budget.alerts import fire_alert
from .errors import ErrorClass, ProviderError, UsageError
from .calls import Call, CallSite
from .state import StateStore, is_json_type, sections
from .stats import p95
from .types import Message, Request, Target

if TYPE_CHECKING:
    from .config.model import ProviderConfig
    from .engine import Engine

PROBE_SLOW_MS = 2000  # a model list slower than this is degraded
DEEP_SLOW_MS = 5000  # a one-token answer slower than this is degraded
ERROR_RATE_DEGRADED = 0.20  # answering, but more than this share of 24 h probes failed
MIN_SAMPLES_FOR_RATE = 5  # the error-rate rule needs this many probes (no flapping on 1 of 2)
WINDOW_S = 24 * 3600.0
MAX_HISTORY = 2000  # entries per provider: a probe every 45 s for 24 h
LATENCY_BEST_MS = 300.0
LATENCY_WORST_MS = 10_000.0
PROBE_TIMEOUT_S = 10.0  # upper bound per probe; a provider's own shorter timeout wins
MAX_WORKERS = 16
ERROR_CHARS = 120
DEEP_PROMPT = "ping"
DEEP_REQUEST = Request(messages=(Message("user", DEEP_PROMPT),), max_tokens=1)
STATUS_ORDER = ("down", "degraded", "budget", "no key", "up")

Alert = Callable[[str, str, dict], None]  # (kind, message, fields)


@dataclass(frozen=True)
class Subject:
    """One provider to probe and the targets its result applies to."""

    provider: str
    targets: tuple[Target, ...]


@dataclass(frozen=True)
class Outcome:
    """What one probe call did."""

    ok: bool
    latency_ms: int
    error: str | None = None  # SPEC §4.1 error class
    http_status: int | None = None
    message: str | None = None  # short, redacted


@dataclass(frozen=True)
class Sample:
    ts: float
    status: str
    latency_ms: int
    ok: bool


@dataclass(frozen=True)
class Stats:
    samples: int
    uptime: float | None  # 0..1
    error_rate: float | None  # 0..1
    p95_ms: int | None


@dataclass(frozen=True)
class Transition:
    provider: str
    kind: str  # down | degraded | recovered
    previous: str | None
    current: str


@dataclass(frozen=True)
class HealthRow:
    """One provider's line of the health table (and one object of `--json`)."""

    provider: str
    status: str  # up | degraded | down | no key
    latency_ms: int | None
    error: str | None
    stats: Stats
    score: int | None
    circuit: str
    key_source: str
    deep: bool = False

    def to_json(self) -> dict:
        return {
            "provider": self.provider, "status": self.status, "latency_ms": self.latency_ms,
            "error": self.error, "uptime_24h": _round(self.stats.uptime),
            "error_rate_24h": _round(self.stats.error_rate), "p95_ms_24h": self.stats.p95_ms,
            "samples_24h": self.stats.samples, "score": self.score, "circuit": self.circuit,
            "key": self.key_source, "deep": self.deep,
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


# --- pure rules ---------------------------------------------------------------------------


def latency_score(ms: float | None) -> float:
    """100 at ≤ 300 ms, 0 at ≥ 10 s, linear in log(latency) between; unknown scores 0."""
    if ms is None:
        return 0.0
    if ms <= LATENCY_BEST_MS:
        return 100.0
    if ms >= LATENCY_WORST_MS:
        return 0.0
    span = math.log(LATENCY_WORST_MS / LATENCY_BEST_MS)
    return 100.0 * (1.0 - math.log(ms / LATENCY_BEST_MS) / span)


def health_score(stats: Stats) -> int | None:
    """40% uptime, 30% latency score of the p95, 30% (1 − error rate); None without history."""
    if stats.samples == 0 or stats.uptime is None or stats.error_rate is None:
        return None
    score = 40.0 * stats.uptime + 0.3 * latency_score(stats.p95_ms) + 30.0 * (1.0 - stats.error_rate)
    return max(0, min(100, round(score)))


def classify(outcome: Outcome, stats: Stats, *, deep: bool) -> str:
    """up | degraded | down for one probe, given the 24 h statistics that include it."""
    if not outcome.ok:
        return "down"
    if outcome.latency_ms > (DEEP_SLOW_MS if deep else PROBE_SLOW_MS):
        return "degraded"
    if (stats.samples >= MIN_SAMPLES_FOR_RATE and stats.error_rate is not None
            and stats.error_rate > ERROR_RATE_DEGRADED):
        return "degraded"
    return "up"


def transition(provider: str, previous: str | None, current: str) -> Transition | None:
    """The alert a status change calls for, if any: once per change, never for no change."""
    if previous == current:
        return None
    if current in ("down", "degraded"):
        return Transition(provider, current, previous, current)
    if current == "up" and previous in ("down", "degraded"):
        return Transition(provider, "recovered", previous, current)
    return None


def prune(samples: Iterable[Sample], now: float) -> list[Sample]:
    """Keep the last 24 h (and nothing from the future beyond clock skew), newest MAX_HISTORY."""
    kept = sorted((s for s in samples if now - WINDOW_S <= s.ts <= now + 60), key=lambda s: s.ts)
    return kept[-MAX_HISTORY:]


def stats_for(samples: list[Sample]) -> Stats:
    """Uptime (time-weighted), error rate and p95 of already-pruned, time-ordered samples."""
    if not samples:
        return Stats(0, None, None, None)
    weights = _midpoint_weights([s.ts for s in samples])
    total = sum(weights)
    if total <= 0:
        weights, total = [1.0] * len(samples), float(len(samples))
    uptime = sum(w for w, s in zip(weights, samples) if s.ok) / total
    error_rate = sum(1 for s in samples if not s.ok) / len(samples)
    return Stats(len(samples), uptime, error_rate, p95([s.latency_ms for s in samples if s.ok]))


def _midpoint_weights(times: list[float]) -> list[float]:
    n = len(times)
    if n == 1:
        return [1.0]
    weights = []
    for i in range(n):
        left = (times[i] - times[i - 1]) / 2 if i > 0 else 0.0
        right = (times[i + 1] - times[i]) / 2 if i < n - 1 else 0.0
        weights.append(max(left, 0.0) + max(right, 0.0))
    return weights


# --- history ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Recorded:
    status: str
    stats: Stats
    change: Transition | None


class HealthHistory:
    """Per-provider probe history in `<state_dir>/health.json`."""

    def __init__(self, state_dir: Path, *, clock: Callable[[], float] = time.time):
        self.clock = clock
        # A `providers` section of the wrong type means a damaged file: moved aside, started afresh.
        self.store = StateStore(Path(state_dir) / "health.json", clock=clock,
                                valid=sections(providers=dict))

    def record(self, outcomes: Mapping[str, tuple[Outcome, bool]]) -> dict[str, Recorded]:
        """Classify and append one probe per provider (`outcomes`: name → (outcome, deep)),
        returning each provider's status, statistics and status change."""
        now = self.clock()
        recorded: dict[str, Recorded] = {}
        with self.store.update() as doc:
            providers = doc.get("providers")
            if not isinstance(providers, dict):
                providers = doc["providers"] = {}
            for name, (outcome, deep) in outcomes.items():
                old = prune(_load_samples(providers.get(name)), now)
                previous = old[-1].status if old else None
                tentative = old + [Sample(now, "up", outcome.latency_ms, outcome.ok)]
                status = classify(outcome, stats_for(tentative), deep=deep)
                samples = prune(old + [Sample(now, status, outcome.latency_ms, outcome.ok)], now)
                providers[name] = [[round(s.ts, 3), s.status, s.latency_ms, s.ok] for s in samples]
                recorded[name] = Recorded(status, stats_for(samples), transition(name, previous, status))
        return recorded

    def stats(self, name: str) -> Stats:
        """The 24 h statistics of one provider, without probing."""
        try:
            doc = self.store.read()
        except OSError:
            return Stats(0, None, None, None)
        providers = doc.get("providers") if isinstance(doc.get("providers"), dict) else {}
        return stats_for(prune(_load_samples(providers.get(name)), self.clock()))


def _load_samples(raw: object) -> list[Sample]:
    """Entries as stored, skipping any damaged one (state is only a cache)."""
    samples = []
    for entry in raw if isinstance(raw, list) else ():
        if (isinstance(entry, list) and len(entry) == 4 and is_json_type(entry[0], (int, float))
                and isinstance(entry[1], str) and is_json_type(entry[2], (int, float))
                and isinstance(entry[3], bool)):
            samples.append(Sample(float(entry[0]), entry[1], int(entry[2]), entry[3]))
    return samples


# --- probing ------------------------------------------------------------------------------


def select(engine: "Engine", names: Iterable[str]) -> list[Subject]:
    """Providers to probe: every enabled one, or the named targets/providers (explicitly named
    disabled providers are probed too). An unknown name is a usage error listing what exists."""
    providers = engine.config.providers
    names = list(names)
    if not names:
        return [Subject(p.name, tuple(Target(p.name, m) for m in p.models))
                for p in providers.values() if p.enabled]
    chosen: dict[str, list[Target]] = {}
    for name in names:
        provider, _, model = name.partition("/")
        config = providers.get(provider)
        if config is None or (model and model not in config.models):
            known = ", ".join(sorted(providers)) or "none configured"
            raise UsageError(f"unknown provider or target {name!r}", f"providers: {known}")
        wanted = [Target(provider, model)] if model else [Target(provider, m) for m in config.models]
        targets = chosen.setdefault(provider, [])
        targets.extend(t for t in wanted if t not in targets)
    return [Subject(p, tuple(t)) for p, t in chosen.items()]


@dataclass
class HealthChecker:
    """Runs probe rounds for one engine. `alert(kind, message, fields)` fires an alert;
    `provider_for(name)` builds a provider (default: the engine's, which shares one client);
    `monotonic` times the probes; `warn` hears about alert delivery failures."""

    engine: "Engine"
    alert: Alert | None = None
    provider_for: Callable[[str], object] | None = None
    monotonic: Callable[[], float] = time.monotonic
    warn: Callable[[str], None] = lambda message: None
    history: HealthHistory = field(init=False)

    def __post_init__(self) -> None:
        self.history = HealthHistory(self.engine.paths.state_dir, clock=self.engine.clock)
        if self.alert is None:
            alerts = self.engine.config.alerts
            self.alert = lambda kind, message, fields: fire_alert(alerts, kind, message, fields, self.warn)

    def run(self, subjects: list[Subject], *, deep: bool = False) -> list[HealthRow]:
        """Probe every subject concurrently and return one row each, worst status first.
        Refuses before probing anything when the results could not be kept (an unwritable
        data directory, or ledger for `deep`)."""
        engine = self.engine
        engine.check_writable(ledger=deep)
        key_sources = {s.provider: self._key_source(engine.config.providers[s.provider]) for s in subjects}
        ready = [s for s in subjects if key_sources[s.provider] != "missing"]
        calls = self._reserve_deep_calls(ready) if deep else {}
        refused = [s for s in ready if deep and s.targets and s.provider not in calls]
        if refused and len(refused) == len(ready):
            raise self._budget_error()
        ready = [s for s in ready if s not in refused]
        build = self.provider_for or engine.provider
        providers = {s.provider: build(s.provider) for s in ready}  # built serially
        with ThreadPoolExecutor(max_workers=max(1, min(MAX_WORKERS, len(ready)))) as pool:
            futures = {s.provider: pool.submit(self._probe, providers[s.provider], s, calls.get(s.provider))
                       for s in ready}
            outcomes = {name: (future.result(), deep) for name, future in futures.items()}
        recorded = self.history.record(outcomes)
        self._feed_breakers(ready, recorded, outcomes)
        self._fire(recorded, outcomes)
        snapshot = engine.memory.snapshot()
        rows = []
        for subject in subjects:
            circuit = _circuit(snapshot, subject.targets)
            if subject.provider not in recorded:
                stats = self.history.stats(subject.provider)
                budget = subject in refused
                rows.append(HealthRow(subject.provider, "budget" if budget else "no key", None,
                                      "the budget does not allow a deep probe" if budget else None,
                                      stats, health_score(stats), circuit,
                                      key_sources[subject.provider] if budget else "none"))
                continue
            outcome, _ = outcomes[subject.provider]
            result = recorded[subject.provider]
            rows.append(HealthRow(subject.provider, result.status, outcome.latency_ms,
                                  _error_text(outcome), result.stats, health_score(result.stats),
                                  circuit, key_sources[subject.provider], deep))
        return sorted(rows, key=lambda r: (STATUS_ORDER.index(r.status), r.provider))

    def _key_source(self, config: "ProviderConfig") -> str:
        """Where the key the probe carries comes from: env | keyring | cmd, for keyless providers
        too when one is found (it is sent, SPEC §4); "not needed" for a keyless provider without
        one; "missing" when one is needed and none is found (such a provider is reported as
        `no key`, never probed)."""
        from .providers import needs_key

        key = self.engine.keys.for_call(config)
        if key.value:
            return key.source
        return "missing" if needs_key(config) else "not needed"

    def _reserve_deep_calls(self, subjects: list[Subject]) -> dict[str, Call]:
        """A deep probe is a paid prompt: each is one `calls.Call`, reserved against the budget
        before anything is sent. Providers whose probe the budget refuses are left out."""
        from .compare import worst_case_for

        calls = {}
        for subject in subjects:
            if not subject.targets:
                continue
            target = subject.targets[0]
            call = Call(self.engine, CallSite(DEEP_REQUEST, kind="health"), target, learn=False)
            worst = worst_case_for(self.engine, target, DEEP_REQUEST)
            if worst is not None and call.reserve(worst, DEEP_REQUEST.max_tokens + 8):
                calls[subject.provider] = call
        return calls

    def _budget_error(self) -> Exception:
        from .errors import BudgetError

        budget = self.engine.budget
        error = budget.blocked_error() if budget is not None else None
        return error or BudgetError("blocked by budget: no deep probe fits the budget",
                                    "run `llmroute health` without --deep, or see `llmroute budget`")

    def _probe(self, provider, subject: Subject, call: Call | None) -> Outcome:
        """One call, timed; any failure is an Outcome, never an exception. With `call` (deep)
        it is a one-token prompt through the call life (reserved, recorded, settled); else the
        provider's free probe (list models)."""
        engine = self.engine
        config = engine.config.providers[subject.provider]
        timeout = min(config.timeout or engine.config.defaults.timeout, PROBE_TIMEOUT_S)
        started = self.monotonic()
        error = None
        try:
            if call is not None:
                call.send(provider, timeout)
            else:
                provider.probe(timeout=timeout)
        except ProviderError as exc:
            # A one-token prompt may be answered with no text at all (a reasoning model spends
            # the token thinking): the provider answered, so it is up, whatever the record says.
            error = None if exc.error_class is ErrorClass.EMPTY else exc
        except Exception as exc:  # a health check reports every failure as down, never crashes
            error = ProviderError(ErrorClass.CONNECTION, f"{type(exc).__name__}: {exc}")
            if call is not None and call.attempt is None:
                call.failed(error, int((self.monotonic() - started) * 1000))
        latency = int((self.monotonic() - started) * 1000)
        return Outcome(True, latency) if error is None else Outcome(
            False, latency, ErrorClass(error.error_class).value, error.http_status,
            provider.redact(" ".join(error.message.split()))[:ERROR_CHARS])

    def _feed_breakers(self, subjects: list[Subject], recorded: Mapping[str, Recorded],
                       outcomes: Mapping[str, tuple[Outcome, bool]]) -> None:
        """down trips every probed target; up ends an open or half-open breaker's cooldown."""
        memory = self.engine.memory
        snapshot = memory.snapshot()
        for subject in subjects:
            outcome, _ = outcomes[subject.provider]
            status = recorded[subject.provider].status
            for target in subject.targets:
                if status == "down":
                    memory.trip(target, f"health: {_error_text(outcome)}"[:200])
                elif status == "up" and snapshot.breaker(target.id).state in ("open", "half_open"):
                    memory.record_success(target, outcome.latency_ms, None, 0)

    def _fire(self, recorded: Mapping[str, Recorded], outcomes: Mapping[str, tuple[Outcome, bool]]) -> None:
        for name, result in recorded.items():
            change = result.change
            if change is None:
                continue
            outcome, _ = outcomes[name]
            was = f" (was {change.previous})" if change.previous else ""
            detail = f": {_error_text(outcome)}" if change.kind == "down" else f", {outcome.latency_ms} ms"
            fields = {"provider": name, "status": change.current, "previous": change.previous or "",
                      "latency_ms": outcome.latency_ms, "error": _error_text(outcome) or ""}
            try:
                self.alert(change.kind, f"{name} is {change.current}{was}{detail}", fields)
            except Exception as exc:  # an alert never fails the health check
                self.warn(f"alert for {name} failed: {type(exc).__name__}: {exc}")


def _error_text(outcome: Outcome) -> str | None:
    if outcome.ok:
        return None
    status = f" {outcome.http_status}" if outcome.http_status else ""
    message = f": {outcome.message}" if outcome.message else ""
    return f"{outcome.error}{status}{message}"[:ERROR_CHARS]


def _circuit(snapshot, targets: tuple[Target, ...]) -> str:
    """The worst breaker state among the targets; "open 1/3" when only some are."""
    states = [snapshot.breaker(t.id).state for t in targets]
    for state in ("open", "half_open"):
        count = states.count(state)
        if count:
            return state if count == len(states) else f"{state} {count}/{len(states)}"
    return "closed"


def exit_code(rows: Iterable[HealthRow]) -> int:
    """SPEC §12: 1 when any probed provider is down, else 0 (`no key` does not count)."""
    return 1 if any(r.status == "down" for r in rows) else 0
