"""Routing memory: what past calls taught us about each target, kept between invocations.

Circuit breakers, rate-limit state (429 waits, `x-ratelimit-*` headers, the config's rpm/tpm
windows), a latency average per target, A/B quality scores and the round-robin cursors live in
one `StateStore` document (`<state_dir>/routing.json`) so concurrent `llmroute` processes share
them: every record call is one locked read-modify-write, and the planner reads one frozen
`MemorySnapshot` per prompt so planning itself never touches the disk.

Circuit breaker (SPEC §4.1), per target:
- closed: calls flow; consecutive failures are counted (bad_request, context_length and budget
  failures say nothing about the target's health and are not counted).
- open: after 3 consecutive failures, a 429 whose wait exceeds the caller's retry budget, or a
  `health` "down" result (`trip`). Skipped until `open_until`. The cooldown grows on each
  re-open without an intervening success: 30 s, 60 s, 120 s ... capped at 15 min.
- half-open: after the cooldown exactly one trial call is allowed. The engine calls
  `claim_trial` before calling a target; the first process to claim marks `trial_started_at`
  and every other process keeps skipping the target until the trial ends or 60 s pass (a
  process killed mid-trial must not block the target forever). Success closes and resets;
  failure re-opens with the next, longer cooldown.

The state file is only a cache of recent history: corrupt or missing means empty memory. A
document whose sections have the wrong JSON type (say `"breakers": [1, 2]`) counts as corrupt
(`StateStore` moves it aside with one warning); damage inside a section (one odd breaker entry)
is skipped entry by entry, both when planning (`snapshot_from`) and when updating.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Callable, ClassVar, Mapping

from ..errors import ErrorClass
from ..state import StateStore, sections
from ..types import RateLimitInfo, Target

FAILURES_TO_OPEN = 3
BASE_COOLDOWN_S = 30.0
MAX_COOLDOWN_S = 15 * 60.0
TRIAL_TIMEOUT_S = 60.0
WINDOW_S = 60.0  # rpm/tpm window
DEFAULT_RESET_S = 60.0  # "0 requests left" with no reset hint: assume a minute
LATENCY_ALPHA = 0.3  # EWMA weight of the newest observation
MAX_RECENT = 5000  # per provider; far above any real rpm, bounds the file
# Failures that describe the request, not the target's health.
# An interrupted call (Ctrl-C) says nothing about the target either.
NEUTRAL_FAILURES = frozenset({ErrorClass.BAD_REQUEST, ErrorClass.CONTEXT_LENGTH, ErrorClass.BUDGET,
                              ErrorClass.INTERRUPTED})
SHAPE = sections(breakers=dict, limits=dict, latency=dict, recent=dict, quality=dict, round_robin=dict)



def _empty() -> Mapping:
    return MappingProxyType({})


def cooldown_for(opens: int) -> float:
    """Cooldown after the `opens`-th consecutive opening (1-based): 30 s doubling, capped. The
    exponent is capped too, so a huge count (a hand-edited file) cannot make it slow."""
    return min(BASE_COOLDOWN_S * 2 ** min(max(opens - 1, 0), 32), MAX_COOLDOWN_S)


@dataclass(frozen=True)
class BreakerView:
    state: str  # closed | open | half_open
    open_until: float | None = None
    failures: int = 0
    opens: int = 0
    trial_started_at: float | None = None
    reason: str | None = None

    @property
    def trial_in_progress(self) -> bool:
        return self.state == "half_open" and self.trial_started_at is not None


@dataclass(frozen=True)
class RateView:
    """A target's rate-limit facts. Instants are epoch seconds."""

    blocked_until: float | None = None  # a 429's retry-after
    requests_remaining: int | None = None
    requests_reset_at: float | None = None
    tokens_remaining: int | None = None
    tokens_reset_at: float | None = None


@dataclass(frozen=True)
class MemorySnapshot:
    """A frozen view of the routing memory at `now`, for one planning pass."""

    now: float = 0.0
    breakers: Mapping[str, BreakerView] = field(default_factory=_empty)
    rate_limits: Mapping[str, RateView] = field(default_factory=_empty)
    recent: Mapping[str, tuple[tuple[float, int], ...]] = field(default_factory=_empty)  # provider → (ts, tokens) in window
    latency_ms: Mapping[str, float] = field(default_factory=_empty)
    quality: Mapping[str, tuple[float, int]] = field(default_factory=_empty)  # target → (score 0–10, judged pairs)
    round_robin: Mapping[str, int] = field(default_factory=_empty)

    def breaker(self, target_id: str) -> BreakerView:
        return self.breakers.get(target_id, _CLOSED)

    def requests_in_window(self, provider: str, now: float) -> tuple[int, int, float | None]:
        """(requests, tokens, oldest timestamp) sent to `provider` in the 60 s before `now`."""
        entries = [e for e in self.recent.get(provider, ()) if now - e[0] < WINDOW_S]
        if not entries:
            return 0, 0, None
        return len(entries), sum(e[1] for e in entries), min(e[0] for e in entries)


_CLOSED = BreakerView("closed")


@dataclass
class RoutingMemory:
    """The persistent routing memory of one data directory. Every method is process-safe."""

    state_dir: Path
    clock: Callable[[], float] = field(default=time.time, kw_only=True)
    # Providers whose requests are counted for the rpm/tpm window (those with `rpm`/`tpm` in the
    # config); None counts every provider. Counting only where a limit exists keeps the state
    # file small, so reading and rewriting it stays cheap on every call.
    windowed: frozenset[str] | None = field(default=None, kw_only=True)
    shares_state: ClassVar[bool] = False  # True on Redis: the team's state, not this machine's

    def __post_init__(self) -> None:
        self.store = StateStore(Path(self.state_dir) / "routing.json", clock=self.clock, valid=SHAPE)

    def document_store(self, name: str, valid=None) -> StateStore:
        """Where another piece of the routing state lives beside this memory (quality evidence,
        the per-prompt learner): `<state_dir>/<name>.json` here, the team's Redis for
        `RedisRoutingMemory`."""
        return StateStore(Path(self.state_dir) / f"{name}.json", clock=self.clock, valid=valid)

    def snapshot(self) -> MemorySnapshot:
        """Read the document once and freeze what the planner needs."""
        return snapshot_from(_safe_read(self.store), self.clock())

    def on_document(self, document: dict, *, clock: Callable[[], float]) -> "RoutingMemory":
        """This memory (same settings) working on `document`, a state document the caller
        already holds locked (inside `store.update()`), at the instants `clock` gives: each call
        changes `document` in place instead of locking and rewriting the file. Lets `batch` fold
        many outcomes into one write with exactly the effect of recording them one by one."""
        from contextlib import nullcontext
        from dataclasses import replace
        from types import SimpleNamespace

        memory = replace(self, clock=clock)
        memory.store = SimpleNamespace(read=lambda: document, update=lambda: nullcontext(document))
        return memory

    def record_success(self, target: Target, latency_ms: float, rate_limits: RateLimitInfo | None,
                       tokens: int) -> None:
        """A call answered: close the breaker, fold in the latency, note the request and tokens."""
        now = self.clock()
        with self.store.update() as doc:
            _section(doc, "breakers").pop(target.id, None)
            limits = _section(doc, "limits")
            entry = limits.get(target.id) if isinstance(limits.get(target.id), dict) else {}
            entry.pop("blocked_until", None)
            _apply_headers(entry, rate_limits, now)
            _store_limits(limits, target.id, entry, now)
            latency = _section(doc, "latency")
            old = _num(latency.get(target.id))
            latency[target.id] = round(
                float(latency_ms) if old is None else
                (1 - LATENCY_ALPHA) * old + LATENCY_ALPHA * float(latency_ms), 1)
            if self._counts(target):
                _note_request(doc, target.provider, int(tokens), now)

    def record_failure(self, target: Target, error_class: ErrorClass, retry_after_s: float | None,
                       rate_limits: RateLimitInfo | None, retry_budget_s: float) -> None:
        """A call failed: count it against the breaker and remember any rate-limit wait."""
        now = self.clock()
        error_class = ErrorClass(error_class)
        with self.store.update() as doc:
            limits = _section(doc, "limits")
            entry = limits.get(target.id) if isinstance(limits.get(target.id), dict) else {}
            _apply_headers(entry, rate_limits, now)
            if error_class is ErrorClass.RATE_LIMITED and retry_after_s is not None and retry_after_s > 0:
                entry["blocked_until"] = max(_num(entry.get("blocked_until")) or 0.0, now + retry_after_s)
            _store_limits(limits, target.id, entry, now)
            if self._counts(target):
                _note_request(doc, target.provider, 0, now)
            if error_class in NEUTRAL_FAILURES:
                return
            long_wait = (error_class is ErrorClass.RATE_LIMITED and retry_after_s is not None
                         and retry_after_s > retry_budget_s)
            breakers = _section(doc, "breakers")
            b = _breaker_entry(breakers, target.id)
            state = breaker_state(b, now)
            b["failures"] = _count(b.get("failures")) + 1
            if state == "open":  # a call planned before it opened: do not lengthen the cooldown
                breakers[target.id] = b
                return
            if state == "half_open" or b["failures"] >= FAILURES_TO_OPEN or long_wait:
                why = f"429, retry after {retry_after_s:.0f}s" if long_wait else f"{b['failures']} consecutive failures ({error_class.value})"
                if state == "half_open":
                    why = f"trial call failed ({error_class.value})"
                _open(b, now, why)
            breakers[target.id] = b

    def _counts(self, target: Target) -> bool:
        return self.windowed is None or target.provider in self.windowed

    def trip(self, target: Target, reason: str) -> None:
        """Open the breaker now (a `health` probe found the target down)."""
        now = self.clock()
        with self.store.update() as doc:
            breakers = _section(doc, "breakers")
            b = _breaker_entry(breakers, target.id)
            if breaker_state(b, now) == "open":
                return  # already open: do not lengthen the cooldown on every probe
            _open(b, now, reason)
            breakers[target.id] = b

    def claim_trial(self, target: Target) -> bool:
        """May this process call `target` now? True when closed, or half-open and this process
        just took the single trial; False when open or another process holds the trial."""
        now = self.clock()
        with self.store.update() as doc:
            breakers = _section(doc, "breakers")
            b = breakers.get(target.id)
            if not isinstance(b, dict):
                return True
            state = breaker_state(b, now)
            if state == "closed":
                return True
            if state == "open" or _trial_running(b, now):
                return False
            b["trial_started_at"] = now
            return True

    def advance_round_robin(self, key: str, n: int) -> int:
        """Atomically take the next turn of cursor `key`: returns its index in [0, n) and
        advances the cursor by one for the next invocation."""
        with self.store.update() as doc:
            cursors = _section(doc, "round_robin")
            current = cursors.get(key)
            current = current if isinstance(current, int) and current >= 0 else 0
            cursors[key] = current + 1
        return current % n if n > 0 else 0

    def replace_quality(self, scores: Mapping[str, tuple[float, int]]) -> None:
        """Publish every target's A/B quality score at once (the quality store recomputes them
        all from the evidence after each verdict or vote)."""
        with self.store.update() as doc:
            doc["quality"] = {target: [float(score), int(n)] for target, (score, n) in scores.items()}

    def set_quality(self, target: Target, score: float, pairs: int) -> None:
        """Store a target's A/B quality score (0–10) and the number of judged pairs behind it."""
        with self.store.update() as doc:
            _section(doc, "quality")[target.id] = [float(score), int(pairs)]


def breaker_state(b: Mapping, now: float) -> str:
    """closed | open | half_open for one stored breaker entry."""
    until = _num(b.get("open_until"))
    if until is None:
        return "closed"
    return "open" if now < until else "half_open"


def _trial_running(b: Mapping, now: float) -> bool:
    started = _num(b.get("trial_started_at"))
    return started is not None and now - started < TRIAL_TIMEOUT_S


def _open(b: dict, now: float, reason: str) -> None:
    b["opens"] = _count(b.get("opens")) + 1
    b["open_until"] = now + cooldown_for(b["opens"])
    b["trial_started_at"] = None
    b["reason"] = reason[:200]


def _breaker_entry(breakers: dict, target_id: str) -> dict:
    b = breakers.get(target_id)
    return dict(b) if isinstance(b, dict) else {}


def _apply_headers(entry: dict, info: RateLimitInfo | None, now: float) -> None:
    """Fold a response's `x-ratelimit-*` facts into a target's entry."""
    if info is None:
        return
    if info.remaining_requests is not None:
        entry["requests_remaining"] = int(info.remaining_requests)
        reset = info.reset_requests_s
        entry["requests_reset_at"] = now + (reset if reset is not None else DEFAULT_RESET_S)
    if info.remaining_tokens is not None:
        entry["tokens_remaining"] = int(info.remaining_tokens)
        reset = info.reset_tokens_s
        entry["tokens_reset_at"] = now + (reset if reset is not None else DEFAULT_RESET_S)


def _store_limits(limits: dict, target_id: str, entry: dict, now: float) -> None:
    """Store a target's entry, then keep only facts that still matter in every entry."""
    limits[target_id] = entry
    for tid in list(limits):
        value = limits[tid]
        if isinstance(value, dict):
            _prune_entry(value, now)
        if not value or not isinstance(value, dict):
            del limits[tid]


def _prune_entry(entry: dict, now: float) -> None:
    for key in ("requests", "tokens"):
        reset = _num(entry.get(f"{key}_reset_at"))
        if reset is not None and reset <= now:
            entry.pop(f"{key}_remaining", None)
            entry.pop(f"{key}_reset_at", None)
    blocked = _num(entry.get("blocked_until"))
    if blocked is not None and blocked <= now:
        entry.pop("blocked_until", None)


def _note_request(doc: dict, provider: str, tokens: int, now: float) -> None:
    """Remember one request for the rpm/tpm window. Entries are appended in time order, so the
    list is pruned only when its oldest entry has left the window (a cheap check per call, not a
    pass over every entry); other providers' lists are pruned when they are next written, and
    the snapshot ignores anything older than the window anyway."""
    recent = _section(doc, "recent")
    entries = recent.get(provider)
    if not isinstance(entries, list):
        entries = recent[provider] = []
    if entries and not (_valid_entry(entries[0]) and now - entries[0][0] < WINDOW_S):
        entries[:] = [e for e in entries if _valid_entry(e) and now - e[0] < WINDOW_S]
    entries.append([round(now, 3), max(int(tokens), 0)])
    del entries[:-MAX_RECENT]


def _valid_entry(e: object) -> bool:
    return isinstance(e, list) and len(e) == 2 and all(_num(x) is not None for x in e)


def _section(doc: dict, name: str) -> dict:
    value = doc.get(name)
    if not isinstance(value, dict):
        value = doc[name] = {}
    return value


def _num(value: object) -> float | None:
    """A finite JSON number as a float; None for anything else (Python's json also reads
    `Infinity` and `NaN`, which a hand-edited file may hold)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _count(value: object) -> int:
    """A stored counter (failures, opens); anything damaged counts as 0."""
    number = _num(value)
    return max(int(number), 0) if number is not None else 0


def _safe_read(store: StateStore) -> dict:
    try:
        return store.read()
    except OSError:
        return {}


def snapshot_from(doc: Mapping, now: float) -> MemorySnapshot:
    """Freeze a stored document (tolerating any damage to its shape) into a snapshot."""
    def section(name: str) -> Mapping:
        value = doc.get(name)
        return value if isinstance(value, dict) else {}

    breakers = {}
    for tid, b in section("breakers").items():
        if isinstance(b, dict):
            state = breaker_state(b, now)
            breakers[tid] = BreakerView(
                state, _num(b.get("open_until")), int(_num(b.get("failures")) or 0),
                int(_num(b.get("opens")) or 0),
                _num(b.get("trial_started_at")) if _trial_running(b, now) else None,
                b.get("reason") if isinstance(b.get("reason"), str) else None)
    limits = {}
    for tid, e in section("limits").items():
        if isinstance(e, dict):
            limits[tid] = RateView(
                _num(e.get("blocked_until")), _int(e.get("requests_remaining")),
                _num(e.get("requests_reset_at")), _int(e.get("tokens_remaining")),
                _num(e.get("tokens_reset_at")))
    recent = {p: tuple((float(e[0]), int(e[1])) for e in v if _valid_entry(e))
              for p, v in section("recent").items() if isinstance(v, list)}
    latency = {t: float(v) for t, v in section("latency").items() if _num(v) is not None}
    quality = {t: (float(v[0]), int(v[1])) for t, v in section("quality").items()
               if isinstance(v, list) and len(v) == 2 and _num(v[0]) is not None and _num(v[1]) is not None}
    cursors = {k: int(v) for k, v in section("round_robin").items() if isinstance(v, int) and v >= 0}
    return MemorySnapshot(now, MappingProxyType(breakers), MappingProxyType(limits),
                          MappingProxyType(recent), MappingProxyType(latency),
                          MappingProxyType(quality), MappingProxyType(cursors))


def _int(value: object) -> int | None:
    number = _num(value)
    return int(number) if number is not None else None
