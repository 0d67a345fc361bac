"""The budget guard: reserve before spending, so concurrent invocations never overshoot (SPEC §6).

One state document, `<state>/budget.json` (a `StateStore`), holds everything a check needs:

* `reservations`: id -> {pid, usd, tok, provider, target, created} — each in-flight call's worst
  case (estimated input + `max_tokens` output at the target's prices);
* `spend`: the incremental ledger index (`spend.py`) — per-day totals and the byte offset read;
* `alerts`: which alert fractions already fired in which window.

Every operation is one read-modify-write under the store's exclusive `flock`:

* `reserve`: drop expired reservations (owner pid gone, or older than `MAX_AGE_S`), catch the
  index up on new ledger bytes, then admit the call only if spend + open reservations + this
  worst case stays within every limit that applies (global and the target's provider; dollars
  and tokens; daily, weekly, monthly). Admitted -> the reservation is stored before the lock is
  released, so the next process sees it.
* `settle` (after the engine appended the call's ledger line): catch up — the call's own line
  is held as *pending* because its reservation is still open — then, in the same section, count
  that pending line and delete the reservation. The call is thus counted exactly once at every
  instant: as its reservation until settle, as its ledger line after; a reader between the
  ledger append and settle sees the line pending, not counted (see spend.py).
* `release` (the call failed, nothing billed): delete the reservation.

Free targets (provider `free: true`, local types, price 0) are exempt from limits and reserve
nothing; with `on_exhaust: block` they are refused too once any limit is used up.

A document of the wrong shape (valid JSON, but say `"reservations": [1, 2]` or a spend index
with a list for `days`) is treated like a corrupt file (`valid_document`): moved aside with one
warning and started afresh, and the spend index is then rebuilt from the ledger, which stays the
source of truth. Only the open reservations of calls in flight at that moment are forgotten.
"""

from __future__ import annotations

import os
import secrets
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator, Mapping

from ..config.model import Config, ProviderConfig
from ..errors import BudgetError
from ..paths import Paths
from ..catalog.costs import facts_for
from ..ledger import ledger_path
from ..state import StateStore, is_json_type, mapping_of
from ..types import Target
from . import spend
from .alerts import DueAlert, deliver, due_alerts
from .limits import LimitState, Reserved, Snapshot, limit_specs
from .windows import earliest_day, windows_at, zone_for

MAX_AGE_S = 600.0  # no call outlives this; a reservation older than it is abandoned

Warn = Callable[[str], None]


@dataclass(frozen=True)
class Handle:
    """What `reserve` hands the engine. `id` None: a free target, nothing was reserved."""

    id: str | None
    target: str
    provider: str


def guard_for(config: Config, paths: Paths, *, env: Mapping[str, str] | None = None,
              clock: Callable[[], float] = time.time, warn: Warn | None = None) -> "BudgetGuard | None":
    """The guard for `config`, or None when it sets no limits (alerts fire on limits only, so
    without one there is nothing to reserve, check or alert on)."""
    if not limit_specs(config.budget):
        return None
    return BudgetGuard(config, paths, env=env, clock=clock, warn=warn)




def pid_alive(pid: int) -> bool:
    """True if a process with this id exists (ours or another user's)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _stderr_warn(message: str) -> None:
    sys.stderr.write(f"llmroute: warning: {message}\n")
    sys.stderr.flush()


class BudgetGuard:
    """Implements the engine's `BudgetGuard` protocol against `<state>/budget.json`."""

    def __init__(self, config: Config, paths: Paths, *, env: Mapping[str, str] | None = None,
                 clock: Callable[[], float] = time.time, warn: Warn | None = None,
                 pid: int | None = None, alive: Callable[[int], bool] = pid_alive,
                 run=None, post=None):
        self.config = config
        self.budget = config.budget
        self.zone = zone_for(config.budget.timezone)
        self.specs = limit_specs(config.budget)
        self.ledger = ledger_path(config, paths)
        self.env = env
        self.clock = clock
        self.warn = warn or _stderr_warn
        self.store = StateStore(paths.state_dir / "budget.json", clock=clock, warn=self.warn,
                                valid=valid_document)
        self.pid = os.getpid() if pid is None else pid
        self.alive = alive
        self._hooks = {k: v for k, v in (("run", run), ("post", post)) if v is not None}
        self._snapshot: Snapshot | None = None
        self._last_block: tuple[LimitState, Snapshot] | None = None
        self._cheapest: float | None = None

    # --- the protocol -----------------------------------------------------------------------

    def plan_filter(self):
        """A filter for the planner over one fresh snapshot: the reason a target is excluded."""
        snapshot = self._fresh_snapshot()
        self._last_block = None

        def budget_filter(target: Target, provider: ProviderConfig, worst_case_usd: float | None,
                          worst_case_tokens: int) -> str | None:
            state = self._refusal(snapshot, target, provider, worst_case_usd or 0.0, worst_case_tokens)
            if state is None:
                return None
            self._last_block = (state, snapshot)
            return self._reason(state, snapshot)

        return budget_filter

    def used_fraction(self) -> float | None:
        """The largest fraction of any limit already spent (for rules and `auto`)."""
        snapshot = self._snapshot or self._fresh_snapshot()
        return snapshot.used_fraction()

    def reserve(self, target: Target, provider: ProviderConfig, worst_case_usd: float,
                worst_case_tokens: int) -> Handle | None:
        free = self._is_free(target, provider)
        if free and self.budget.on_exhaust != "block":
            return Handle(None, target.id, provider.name)
        self._snapshot = None
        with self._locked() as (doc, snapshot):
            state = self._refusal(snapshot, target, provider, worst_case_usd, worst_case_tokens)
            if state is not None:
                self._last_block = (state, snapshot)
                return None
            if free:
                return Handle(None, target.id, provider.name)
            rid = secrets.token_hex(8)
            doc["reservations"][rid] = {
                "pid": self.pid, "usd": float(worst_case_usd), "tok": int(worst_case_tokens),
                "provider": provider.name, "target": target.id, "created": snapshot.now}
        return Handle(rid, target.id, provider.name)

    def settle(self, handle: Handle, cost_usd: float, tokens: int) -> None:
        """Replace the reservation by the call's real cost (its ledger line), then alert."""
        if handle.id is None:
            return
        self._snapshot = None
        with self._locked() as (doc, _):
            spend.settle_line(doc["spend"], handle.target, float(cost_usd), int(tokens))
            doc["reservations"].pop(handle.id, None)
            self._reconcile(doc)
            snapshot = self._compute(doc)
            due = due_alerts(doc, snapshot, self.budget.alert_at)
        self._snapshot = snapshot
        self._deliver(due)

    def release(self, handle: Handle) -> None:
        """The call failed and costs nothing: drop its reservation."""
        if handle.id is None:
            return
        self._snapshot = None
        with self._locked() as (doc, _):
            doc["reservations"].pop(handle.id, None)
            self._reconcile(doc)

    def hand_over(self, handle: Handle, pid: int) -> None:
        """Make process `pid` the owner of an open reservation (sampled A/B's background call
        settles or releases it): it now expires when that process is gone, not this one."""
        if handle.id is None:
            return
        with self.store.update() as doc:
            reservation = doc.get("reservations", {}).get(handle.id)
            if reservation is not None:
                reservation["pid"] = int(pid)

    def exhausted_error(self, plan) -> BudgetError | None:
        """Why nothing may be tried, naming the limit and its reset; None if the budget is not
        what excluded the targets."""
        budget_excluded = any(e.reason.startswith("budget:") for e in plan.excluded)
        if not plan.candidates and not budget_excluded:
            return None
        return self.blocked_error()

    def blocked_error(self) -> BudgetError | None:
        """The last refusal as an error naming the limit and its reset; None if none refused."""
        if self._last_block is None:
            return None
        state, snapshot = self._last_block
        used = state.spent + state.reserved
        if self.budget.on_exhaust == "block":
            hint = "budget.on_exhaust is block; raise the limit in the config or wait for the reset"
        else:
            hint = "no free target is available (mark one `free: true` or add a local/Ollama model), " \
                   "raise the limit, or wait for the reset"
        return BudgetError(
            f"blocked by budget: the {state.spec.describe()} limit would be exceeded "
            f"({state.amount(used)} spent or reserved); it resets {snapshot.reset_text(state)}",
            hint + "; `llmroute budget` shows spend")

    # --- status for `llmroute budget` -----------------------------------------------------

    def snapshot(self) -> Snapshot:
        """Spend and limits now, with the index caught up (and saved)."""
        return self._fresh_snapshot()

    # --- internals ----------------------------------------------------------------------------

    def _refusal(self, snapshot: Snapshot, target: Target, provider: ProviderConfig, usd: float,
                 tokens: int) -> LimitState | None:
        if not self._is_free(target, provider):
            return snapshot.blocking(provider.name, usd, tokens)
        if self.budget.on_exhaust != "block":
            return None
        # `block` means "refuse rather than fall back to free targets" once the budget is
        # exhausted: a limit is used up, or even the cheapest paid target could not make a
        # call of this size.
        return snapshot.reached(provider.name) or snapshot.blocking("", tokens * self._cheapest_rate(), tokens)

    def _cheapest_rate(self) -> float:
        """USD per token of the cheapest side of the cheapest priced paid target."""
        if self._cheapest is None:
            rates = []
            for target in self.config.all_targets():
                price = facts_for(self.config, target).price
                if price is not None and not self._is_free(target, self.config.providers[target.provider]):
                    rates.append(min(price.input, price.output) / 1_000_000)
            self._cheapest = min(rates, default=0.0)
        return self._cheapest

    def _reason(self, state: LimitState, snapshot: Snapshot) -> str:
        verb = "reached" if state.reached else "would be exceeded"
        return f"budget: {state.spec.describe()} {verb} (resets {snapshot.reset_text(state)})"

    def _is_free(self, target: Target, provider: ProviderConfig) -> bool:
        """Free: `free: true`, a local type (Ollama, local model), a local-server preset, or a
        zero price. The mock counts as paid when the config prices it, so budgets can be
        exercised without a network."""
        facts = facts_for(self.config, target)
        if provider.type == "mock":
            return facts.price is None or facts.price.is_free
        return facts.free

    def _fresh_snapshot(self) -> Snapshot:
        with self._locked() as (_, snapshot):
            pass
        self._snapshot = snapshot
        return snapshot

    @contextmanager
    def _locked(self) -> Iterator[tuple[dict, Snapshot]]:
        """The budget document under the exclusive lock, expired reservations dropped and the
        ledger index caught up; written back atomically if it changed."""
        with self.store.update() as doc:
            now = self.clock()
            reservations = doc.setdefault("reservations", {})
            for rid in [r for r, v in reservations.items() if self._expired(v, now)]:
                del reservations[rid]
            index, _ = spend.catch_up(doc.get("spend"), self.ledger, self.zone,
                                      earliest_day(now, self.zone), self._open_for(reservations))
            doc["spend"] = index
            self._reconcile(doc)
            yield doc, self._compute(doc, now)

    def _expired(self, reservation: dict, now: float) -> bool:
        try:
            created, pid = float(reservation["created"]), int(reservation["pid"])
        except (KeyError, TypeError, ValueError):
            return True
        return abs(now - created) > MAX_AGE_S or not self.alive(pid)

    @staticmethod
    def _open_for(reservations: dict) -> Callable[[str, float], int]:
        def open_for(target: str, line_ts: float) -> int:
            return sum(1 for r in reservations.values()
                       if r.get("target") == target and r.get("created", 0) <= line_ts + 1.0)
        return open_for

    @staticmethod
    def _reconcile(doc: dict) -> None:
        counts: dict[str, int] = {}
        for reservation in doc["reservations"].values():
            counts[reservation.get("target")] = counts.get(reservation.get("target"), 0) + 1
        spend.reconcile(doc["spend"], counts)

    def _compute(self, doc: dict, now: float | None = None) -> Snapshot:
        now = self.clock() if now is None else now
        windows = windows_at(now, self.zone)
        totals = spend.totals_by_window(doc["spend"], windows)
        reserved = Reserved()
        for reservation in doc["reservations"].values():
            reserved.add(reservation.get("provider", ""), float(reservation.get("usd", 0.0)),
                         int(reservation.get("tok", 0)))
        snapshot = Snapshot(now, self.zone, windows, totals, reserved)
        snapshot.build_states(self.specs)
        return snapshot

    def _deliver(self, due: list[DueAlert]) -> None:
        if due:
            deliver(due, self.config.alerts, self.warn, self.env, **self._hooks)


# --- the document's shape -----------------------------------------------------------------------

_NUMBER = (int, float)


def valid_document(doc: dict) -> bool:
    """Whether a decoded `budget.json` has the shape this module and `spend.py` rely on."""
    return (mapping_of(doc.get("reservations", {}), _valid_reservation)
            and _valid_index(doc.get("spend"))
            and _valid_alerts(doc.get("alerts", {})))


def _valid_reservation(value: object) -> bool:
    return (isinstance(value, dict)
            and is_json_type(value.get("pid"), int) and is_json_type(value.get("usd"), _NUMBER)
            and is_json_type(value.get("tok"), int) and is_json_type(value.get("created"), _NUMBER)
            and is_json_type(value.get("provider"), str) and is_json_type(value.get("target"), str))


def _valid_index(index: object) -> bool:
    """A missing index is rebuilt, and so is one of another version; one of this version must
    have every field `spend.py` reads, with the right types."""
    if index is None:
        return True
    if not isinstance(index, dict):
        return False
    if index.get("v") != spend.INDEX_VERSION:
        return True
    return (is_json_type(index.get("tz"), str) and is_json_type(index.get("from"), str)
            and is_json_type(index.get("offset"), int) and index["offset"] >= 0
            and all(index.get(k) is None or is_json_type(index.get(k), int) for k in ("dev", "ino"))
            and mapping_of(index.get("days"), _valid_bucket)
            and isinstance(index.get("pending"), list) and all(_valid_line(x) for x in index["pending"])
            and isinstance(index.get("ab_recent"), list) and all(_valid_sample(x) for x in index["ab_recent"]))


def _valid_bucket(bucket: object) -> bool:
    return (isinstance(bucket, dict) and is_json_type(bucket.get("u"), _NUMBER)
            and is_json_type(bucket.get("t"), _NUMBER) and is_json_type(bucket.get("ab", 0), _NUMBER)
            and mapping_of(bucket.get("p"), _valid_pair))


def _valid_pair(value: object) -> bool:
    return isinstance(value, list) and len(value) == 2 and all(is_json_type(v, _NUMBER) for v in value)


def _valid_line(line: object) -> bool:
    return (isinstance(line, dict)
            and all(is_json_type(line.get(k), str) for k in ("target", "p", "d"))
            and all(is_json_type(line.get(k), _NUMBER) for k in ("u", "t", "k", "ts"))
            and (line.get("ab") is None or is_json_type(line.get("ab"), str)))


def _valid_sample(sample: object) -> bool:
    """An A/B sample already counted: its id, or [id, local day]."""
    return isinstance(sample, str) or (isinstance(sample, list) and len(sample) == 2
                                       and all(isinstance(x, str) for x in sample))


def _valid_alerts(fired: object) -> bool:
    return (isinstance(fired, dict)
            and all(len(key.split("|")) >= 3 and is_json_type(value, _NUMBER) for key, value in fired.items()))
