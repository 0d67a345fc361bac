"""Limits and where spend stands against them: the arithmetic of a budget check.

A `Snapshot` is spend per window (from the ledger index) plus the open reservations at one
instant. Every configured limit — global and per provider, dollars and tokens, daily, weekly
and monthly — becomes a `LimitState`; a call may go ahead only if none of the limits that apply
to it would be crossed by spend + open reservations + its own worst case.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..config.model import BudgetConfig, Limits
from ..render import money, tokens as fmt_tokens
from .spend import Totals
from .windows import Window, Zone, describe_reset

EPSILON = 1e-9  # float noise: $5.00 of spend must not count as over a $5.00 limit

# Limits field -> (window kind, unit)
FIELDS = {
    "daily": ("daily", "usd"), "weekly": ("weekly", "usd"), "monthly": ("monthly", "usd"),
    "tokens_daily": ("daily", "tokens"), "tokens_weekly": ("weekly", "tokens"),
    "tokens_monthly": ("monthly", "tokens"),
}


@dataclass(frozen=True)
class LimitSpec:
    """One configured limit: `scope` None is global, else a provider name."""

    scope: str | None
    field: str  # a Limits field name, e.g. "daily", "tokens_weekly"
    value: float

    @property
    def kind(self) -> str:
        return FIELDS[self.field][0]

    @property
    def unit(self) -> str:
        return FIELDS[self.field][1]

    def describe(self) -> str:
        """`daily $5.00`, `tokens_daily 50K`, `openai daily $3.00`."""
        amount = money(self.value) if self.unit == "usd" else fmt_tokens(self.value)
        return f"{self.scope + ' ' if self.scope else ''}{self.field} {amount}"


def limit_specs(budget: BudgetConfig) -> list[LimitSpec]:
    """Every limit the config sets, global ones first, each scope daily -> monthly."""
    specs = _scope_specs(None, budget.limits)
    for name, limits in budget.per_provider.items():
        specs += _scope_specs(name, limits)
    return specs


def _scope_specs(scope: str | None, limits: Limits) -> list[LimitSpec]:
    return [LimitSpec(scope, name, float(getattr(limits, name)))
            for name in FIELDS if getattr(limits, name) is not None]


@dataclass
class Reserved:
    """Open reservations: worst-case dollars and tokens, in total and per provider."""

    usd: float = 0.0
    tokens: int = 0
    count: int = 0
    providers: dict[str, list[float]] = field(default_factory=dict)

    def add(self, provider: str, usd: float, tokens: int) -> None:
        self.usd += usd
        self.tokens += tokens
        self.count += 1
        per = self.providers.setdefault(provider, [0.0, 0])
        per[0] += usd
        per[1] += tokens


@dataclass(frozen=True)
class LimitState:
    """One limit at one instant."""

    spec: LimitSpec
    window: Window
    spent: float
    reserved: float

    @property
    def fraction(self) -> float:
        return self.spent / self.spec.value if self.spec.value > 0 else (1.0 if self.spent > 0 else 0.0)

    def would_cross(self, amount: float) -> bool:
        return self.spent + self.reserved + amount > self.spec.value + EPSILON

    @property
    def reached(self) -> bool:
        return self.spent + self.reserved >= self.spec.value - EPSILON

    def amount(self, value: float) -> str:
        return money(value) if self.spec.unit == "usd" else fmt_tokens(value)


@dataclass
class Snapshot:
    """Spend per window kind and open reservations at `now`."""

    now: float
    zone: Zone
    windows: dict[str, Window]
    totals: dict[str, Totals]
    reserved: Reserved
    states: list[LimitState] = field(default_factory=list)

    def build_states(self, specs: list[LimitSpec]) -> None:
        self.states = [self._state(spec) for spec in specs]

    def _state(self, spec: LimitSpec) -> LimitState:
        totals = self.totals[spec.kind]
        unit = 0 if spec.unit == "usd" else 1
        if spec.scope is None:
            spent = totals.usd if unit == 0 else totals.tokens
            reserved = self.reserved.usd if unit == 0 else self.reserved.tokens
        else:
            spent = totals.provider(spec.scope)[unit]
            reserved = self.reserved.providers.get(spec.scope, (0.0, 0))[unit]
        return LimitState(spec, self.windows[spec.kind], float(spent), float(reserved))

    def applicable(self, provider: str) -> list[LimitState]:
        return [s for s in self.states if s.spec.scope in (None, provider)]

    def blocking(self, provider: str, usd: float, tokens: int) -> LimitState | None:
        """The limit this call would cross; of several, the one that resets last (the call
        can go ahead only once all of them have reset)."""
        crossed = [s for s in self.applicable(provider)
                   if s.would_cross(usd if s.spec.unit == "usd" else tokens)]
        return max(crossed, key=lambda s: s.window.reset) if crossed else None

    def reached(self, provider: str | None = None) -> LimitState | None:
        """A limit already used up (for `on_exhaust: block`, which then refuses free targets too)."""
        done = [s for s in self.states if s.spec.scope in (None, provider) and s.reached]
        return max(done, key=lambda s: s.window.reset) if done else None

    def used_fraction(self) -> float | None:
        return max((s.fraction for s in self.states), default=None)

    def reset_text(self, state: LimitState) -> str:
        return describe_reset(state.window, self.now, self.zone)
