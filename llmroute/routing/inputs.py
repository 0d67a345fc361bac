"""What a plan is made from: the per-prompt `PlanInputs`, and the `PlanningTable` of every
target's static facts (config, price, context, parameter ranges, key transport), computed once
per immutable `Config` so each plan only does the per-prompt work (`planner.make_plan`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import TYPE_CHECKING, Callable, Mapping

from ..catalog.costs import TargetFacts, facts_for
from ..catalog.params import NO_RANGES, ParamRanges
from ..config.model import Config, ModelConfig, ProviderConfig
from ..providers.transport import insecure_key_reason
from ..types import Request, Target
from .plan import BudgetFilter

if TYPE_CHECKING:
    from .learner import LearnerView


@dataclass(frozen=True)
class TargetEntry:
    """What the filters and strategies need about one target that depends only on the Config.

    `reason` is set when the target cannot be planned at all (unknown provider or model);
    `insecure` when its key would go over plain HTTP to a public host (SPEC §3); `ranges` are
    the request parameters its provider accepts (SPEC §4)."""

    target: Target
    id: str
    provider: ProviderConfig | None
    model: ModelConfig | None
    reason: str | None
    facts: TargetFacts
    insecure: str | None = None
    ranges: ParamRanges = NO_RANGES


@dataclass
class PlanInputs:
    """Everything the planner needs for one prompt. Callables keep it free of I/O."""

    config: Config
    request: Request
    now: datetime  # aware, in the budget timezone
    model_option: str | None = None  # -m: a target or route name
    route_option: str | None = None  # -r
    strategy_option: str | None = None  # --strategy
    tags: frozenset[str] = frozenset()
    no_fallback: bool = False
    max_cost_usd: float | None = None
    has_key: Callable[[ProviderConfig], bool] = lambda provider: True
    budget_filter: BudgetFilter | None = None
    budget_used: float | None = None  # 0-1 of the tightest window, for rules and `auto`
    explain: bool = False  # --explain/route: always score difficulty, to show it
    extra: dict = field(default_factory=dict)
    # The Config's per-target facts, computed once (`PlanningTable.for_config`); an engine that
    # plans many prompts passes its own. None (or a table of another Config): built per plan.
    table: "PlanningTable | None" = None
    # The per-prompt learner's weights (`learner.load_view`); None = no verdicts: the prior alone.
    learner: "LearnerView | None" = None


@dataclass(frozen=True)
class PlanningTable:
    """Every target's static facts (config, price, context, free-ness) and each route's
    deduplicated targets, computed once per immutable `Config`. Only the per-prompt work
    (memory, rate limits, context against the estimate, costs, ordering) is left to each plan."""

    config: Config
    entries: Mapping[Target, TargetEntry]
    routes: Mapping[str, tuple[TargetEntry, ...]]
    every: tuple[TargetEntry, ...]  # all targets in file order
    dollar_limit: bool  # a dollar budget is set: unpriced targets are excluded

    @classmethod
    def for_config(cls, config: Config) -> PlanningTable:
        entries: dict[Target, TargetEntry] = {}

        def entry(target: Target) -> TargetEntry:
            if target not in entries:
                entries[target] = entry_for(config, target)
            return entries[target]

        every = tuple(entry(t) for t in config.all_targets())
        routes = {name: tuple(entry(t) for t in dict.fromkeys(targets))
                  for name, targets in config.routes.items()}
        return cls(config, MappingProxyType(entries), MappingProxyType(routes), every,
                   config.budget.has_dollar_limit)

    def entry(self, target: Target) -> TargetEntry:
        found = self.entries.get(target)
        return found if found is not None else entry_for(self.config, target)


def entry_for(config: Config, target: Target) -> TargetEntry:
    provider = config.providers.get(target.provider)
    model = provider.models.get(target.model) if provider is not None else None
    reason = None
    if provider is None:
        reason = f"unknown provider '{target.provider}'"
    elif model is None:
        reason = f"unknown model '{target.model}' of provider '{target.provider}'"
    facts = facts_for(config, target) if reason is None else TargetFacts(None, None, False)
    insecure = insecure_key_reason(provider) if provider is not None else None
    ranges = ParamRanges.for_provider(provider) if provider is not None else NO_RANGES
    return TargetEntry(target, target.id, provider, model, reason, facts, insecure, ranges)


def table_for(inputs: PlanInputs) -> PlanningTable:
    table = inputs.table
    if table is None or table.config is not inputs.config:
        table = PlanningTable.for_config(inputs.config)
    return table
