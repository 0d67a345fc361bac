"""The planner: one prompt in, an ordered and explained list of targets out (SPEC §2.3, §2.4).

Steps, each visible in `--explain`:
1. score the prompt's difficulty and estimate its input tokens;
2. match the rules (first match wins); a rule's `route`/`model` apply unless `-m`/`-r` were
   given and its `strategy` unless `--strategy` was — explicit options always win;
3. build the candidate list: `-m TARGET` pins that target first with the rest of its route as
   fallbacks; `-m ROUTE`/`-r ROUTE` use that route; else `defaults.route`; with no routes at
   all, every target in file order;
4. filter: disabled, a parameter outside the provider's range (`--temperature 1.5` for
   Anthropic, `catalog/params.py`; `--max-tokens` above the model's `max_output`), tools the
   target cannot take (`catalog/capabilities.py`), `-o` options, `--schema` or images the
   target cannot take (`catalog/options.py`, `catalog/capabilities.py`), no key, a
   key that would go over plain HTTP to a public host, circuit open, rate limited, context
   too small, `--max-cost`, no price under a dollar budget, budget — each exclusion says why;
5. order the survivors with the strategy (`strategies.py`), apply a rule's `tier`, and keep
   only the first with `--no-fallback`.

Planning is pure: all I/O (keys, budget, routing memory) arrives as callables and a frozen
`MemorySnapshot`, so "what would happen" (`--explain`) and "what happens" share one code path.
`inputs.extra` may carry `rng` (a `random.Random` for `weighted`) and `mode` ("chat", the
default, or "transcription": only models of that mode are eligible).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime

from typing import Iterable

from ..config.model import STRATEGIES, Config, ProviderConfig
from ..errors import UsageError
from ..catalog.costs import worst_case_cost
from ..catalog.capabilities import structured_output_problem, supports_tools, takes_images
from ..catalog.options import problem as option_problem
from ..catalog.presets import preset_for
from ..render import money
from ..tokens import PromptTokens
from ..types import Request, Target
from .memory import MemorySnapshot, RoutingMemory
from .inputs import PlanInputs, PlanningTable, TargetEntry, table_for
from .plan import Candidate, Exclusion, Plan
from .rules import RuleContext, describe_rule, match_rule
from .strategies import (
    Option, StrategyContext, auto_priors, effective_tier, expected_cost, order, prior_qualities,
    round_robin_key,
)


@dataclass
class _Selection:
    """Which targets to consider and how, after options and rules are resolved."""

    route: str | None
    strategy: str
    targets: list[Target]
    pinned: Target | None = None
    tier: str | None = None
    notes: list[str] = field(default_factory=list)


def make_plan(inputs: PlanInputs, memory: MemorySnapshot | RoutingMemory | None = None) -> Plan:
    """Plan one prompt. Raises `UsageError` for an unknown `-m`/`-r`/`--strategy`.

    `memory` is a snapshot, or a `RoutingMemory` whose snapshot is read once here."""
    if isinstance(memory, RoutingMemory):
        memory = memory.snapshot()
    config, request = inputs.config, inputs.request
    prompt = "\n".join(m.content for m in request.messages)
    tokens = PromptTokens(request.prompt_text)  # exact counts only where one decides (tokens.py)
    est = tokens.estimate
    rule = None
    if config.rules:
        ctx = RuleContext(prompt, est, frozenset(inputs.tags), inputs.now, inputs.budget_used)
        rule = match_rule(config.rules, ctx)
    selection = _select(inputs, rule)
    options, excluded = _filter(inputs, selection, tokens, memory)
    options, tier_excluded = _apply_tier(selection, options)
    # Difficulty only orders `auto` between two or more targets; scoring it otherwise would
    # spend the regex set's compile time (once per process) for nothing. --explain always shows it.
    difficulty = _difficulty(prompt, request.system) \
        if inputs.explain or (selection.strategy == "auto" and len(options) > 1) else None
    expected = _expected(inputs, options, memory, difficulty, selection.strategy == "auto") \
        if options and (inputs.explain or selection.strategy in ("quality", "auto")) else None
    ctx = StrategyContext(
        difficulty=difficulty.score if difficulty else 0.0, threshold=config.defaults.auto_threshold,
        budget_used=inputs.budget_used, memory=memory,
        rng=inputs.extra.get("rng") or random.Random(), round_robin_key=round_robin_key(selection.route),
        expected=expected, quality_margin=config.auto.quality_margin)
    candidates = _order(selection, options, ctx, memory, inputs.now)
    notes = selection.notes
    if inputs.no_fallback and selection.pinned is not None \
            and (not candidates or candidates[0].target != selection.pinned):
        # `-m TARGET --no-fallback` calls exactly that target (SPEC §4): when a filter removed
        # it, nothing else is tried and its exclusion says why.
        if candidates:
            notes.append(f"--no-fallback: {selection.pinned.id} was excluded; no other target is used")
        candidates = []
    if inputs.no_fallback and len(candidates) > 1:
        notes.append(f"--no-fallback: {len(candidates) - 1} other candidate(s) not used")
        candidates = candidates[:1]
    return Plan(
        route=selection.route, strategy=selection.strategy, candidates=tuple(candidates),
        excluded=tuple(excluded + tier_excluded), difficulty=difficulty.score if difficulty else None,
        difficulty_features=tuple(difficulty.features) if difficulty else (),
        rule=describe_rule(rule) if rule is not None else None,
        estimated_input_tokens=tokens.planned, notes=tuple(notes))


def _expected(inputs: PlanInputs, options: list[Option], memory: MemorySnapshot | None,
              difficulty, auto: bool) -> dict[str, tuple[float, int]]:
    """Each option's expected quality for this prompt and its evidence (`learner.py`); the
    prompt's features are computed only when the learner holds any verdict. `auto`'s prior
    moves small targets with the prompt's difficulty (`auto_priors`)."""
    from .learner import expected_quality, features

    ids = [o.target.id for o in options]
    priors = prior_qualities(options, ids, memory)
    if auto and difficulty is not None:
        priors = auto_priors(priors, [effective_tier(o) for o in options], difficulty.score,
                             inputs.config.defaults.auto_threshold)
    view = inputs.learner
    x = None
    if view is not None and view.pairs:
        prompt = inputs.request.prompt_text
        x = features(prompt, difficulty if difficulty and not inputs.request.system else None)
    return dict(zip(ids, expected_quality(ids, priors, x, view)))


def _difficulty(prompt: str, system: str | None):
    from .difficulty import score_difficulty  # its regex set is compiled only when needed

    return score_difficulty(prompt, system)


# --- step 3: what to consider -------------------------------------------------------------


def _select(inputs: PlanInputs, rule) -> _Selection:
    config = inputs.config
    then = rule.then if rule is not None else None
    notes: list[str] = []
    strategy = inputs.strategy_option or (then.strategy if then and then.strategy else None) \
        or config.defaults.strategy
    if inputs.strategy_option and inputs.strategy_option not in STRATEGIES:
        raise UsageError(f"unknown strategy '{inputs.strategy_option}'; strategies: {', '.join(STRATEGIES)}")
    if then and then.strategy and inputs.strategy_option:
        notes.append(f"rule strategy '{then.strategy}' overridden by --strategy")
    model_spec, route_spec = inputs.model_option, inputs.route_option
    if inputs.route_option and inputs.route_option not in config.routes:
        raise UsageError(f"unknown route '{inputs.route_option}'; routes: {_names(config.routes)}")
    if then and (then.model or then.route):
        if model_spec or route_spec:
            notes.append("rule route/model overridden by " + ("-m" if model_spec else "-r"))
        elif then.model:
            model_spec = then.model
        else:
            route_spec = then.route
            if route_spec not in config.routes:
                raise UsageError(f"rule {rule.index + 1}: unknown route '{route_spec}'; routes: {_names(config.routes)}")
    selection = _targets_for(config, model_spec, route_spec, notes)
    selection.strategy = strategy
    selection.tier = then.tier if then else None
    selection.notes = notes
    return selection


def _targets_for(config: Config, model_spec: str | None, route_spec: str | None,
                 notes: list[str]) -> _Selection:
    if model_spec:
        if "/" not in model_spec and model_spec in config.routes:
            return _Selection(model_spec, "", list(config.routes[model_spec]))
        target = config.resolve_target(model_spec)
        if target is None:
            raise UsageError(
                f"unknown target or route '{model_spec}'; targets: "
                f"{', '.join(t.id for t in config.all_targets()) or '(none)'}; routes: {_names(config.routes)}")
        route = route_spec or _route_containing(config, target)
        pool = config.routes.get(route, ()) if route else () if config.routes else config.all_targets()
        return _Selection(route, "", [target, *(t for t in pool if t != target)], pinned=target)
    if route_spec:
        return _Selection(route_spec, "", list(config.routes[route_spec]))
    if config.defaults.route in config.routes:
        return _Selection(config.defaults.route, "", list(config.routes[config.defaults.route]))
    if config.routes:
        notes.append(f"route '{config.defaults.route}' is not defined; using every target")
    return _Selection(None, "", config.all_targets())


def _route_containing(config: Config, target: Target) -> str | None:
    """The route whose fallbacks a pinned target gets: the default route if it holds the
    target, else the first route that does."""
    if target in config.routes.get(config.defaults.route, ()):
        return config.defaults.route
    return next((name for name, targets in config.routes.items() if target in targets), None)


def _names(routes) -> str:
    return ", ".join(routes) or "(none)"


# --- step 4: filters ----------------------------------------------------------------------


def _entries(table: PlanningTable, selection: _Selection) -> tuple[bool, Iterable[TargetEntry]]:
    """(planning over every target?, the targets to consider, each once, in order).

    Unpinned, a selection's targets are exactly its route's, or every target without one
    (`_targets_for`), so the table's precomputed lists stand in for them."""
    if selection.pinned is None:
        if selection.route is None:
            return True, table.every
        if selection.route in table.routes:
            return False, table.routes[selection.route]
    return False, (table.entry(t) for t in dict.fromkeys(selection.targets))


@dataclass
class _Check:
    """Per-prompt constants every target's filters need."""

    inputs: PlanInputs
    est: int
    now: float
    mode: str
    memory: MemorySnapshot | None
    dollar_limit: bool
    max_tokens: int
    tokens: PromptTokens
    keys: dict[str, bool] = field(default_factory=dict)  # provider name → has a key, this plan
    request: Request = field(init=False)
    # `-o` options, a schema or images to check per target; most requests have none, and
    # testing that once per plan spares every target the call.
    inputs_to_check: bool = field(init=False)
    fits_within: int | None = None  # a context window the estimate was decided to fit, this plan

    def __post_init__(self) -> None:
        request = self.request = self.inputs.request
        self.inputs_to_check = bool(request.options or request.schema is not None or request.attachments)

    def has_key(self, provider: ProviderConfig) -> bool:
        known = self.keys.get(provider.name)
        if known is None:
            known = self.keys[provider.name] = bool(self.inputs.has_key(provider))
        return known


def _filter(inputs: PlanInputs, selection: _Selection, tokens: PromptTokens,
            memory: MemorySnapshot | None) -> tuple[list[Option], list[Exclusion]]:
    table = table_for(inputs)
    mode = inputs.extra.get("mode", "chat")
    check = _Check(inputs, tokens.estimate, inputs.now.timestamp(), mode, memory, table.dollar_limit,
                   inputs.request.max_tokens, tokens)
    implicit, entries = _entries(table, selection)
    options: list[Option] = []
    excluded: list[Exclusion] = []
    for entry in entries:
        if implicit and entry.model is not None and entry.model.mode != mode:
            continue  # planning over every target: other modes are simply not candidates
        reason, option = _check(check, entry, len(options))
        if reason is not None:
            excluded.append(Exclusion(entry.target, reason))
        else:
            options.append(option)
    return options, excluded


def _check(check: _Check, entry: TargetEntry, index: int) -> tuple[str | None, Option | None]:
    """The first filter the target fails (its reason), or the option it becomes."""
    if entry.reason is not None:
        return entry.reason, None
    provider, model = entry.provider, entry.model
    if model.mode != check.mode:
        return f"{model.mode} model (not {check.mode})", None
    if not provider.enabled:
        return "disabled", None
    request = check.request
    out_of_range = entry.ranges.problem(request)
    if out_of_range is not None:
        return out_of_range, None  # the provider would refuse it with a 400 (SPEC §4)
    if request.tools and not supports_tools(provider, entry.target.model):
        return "no tool support", None  # SPEC §13: a request's tools need a target that takes them
    if check.inputs_to_check:
        unsupported = _input_problem(request, entry)
        if unsupported is not None:
            return unsupported, None  # SPEC §14: -o options, --schema, -a images
    most = entry.facts.max_output
    if most is not None and check.max_tokens > most and check.mode == "chat":
        # Filtered, not clamped: a shorter answer than asked for is the user's choice to make.
        return f"max_tokens {check.max_tokens} exceeds {entry.target.model}'s max output {most}", None
    if not check.has_key(provider):
        return f"no key (set {key_variable(provider)} or run `llmroute keys set {provider.name}`)", None
    if entry.insecure is not None:
        return entry.insecure, None  # a config problem: never a call, never the circuit breaker
    if check.memory is not None:
        reason = _memory_reason(check.memory, provider, entry.id, check.est, check.now, check.inputs.now)
        if reason:
            return reason, None
    context = entry.facts.context
    if context is not None and (check.fits_within is None or context < check.fits_within):
        tokens = check.tokens
        over, count = tokens.decide(entry.target.model, lambda n: n + _context_margin(n) > context)
        if over:
            return f"prompt {count.label} tokens exceeds context {context}", None
        if count is tokens.estimated(entry.target.model):
            # The estimate decided (it is the same for every model), so any window at least
            # this large fits too: later targets' windows need no decision of their own.
            check.fits_within = context
    return _price_check(check, entry, index)


def _input_problem(request: Request, entry: TargetEntry) -> str | None:
    """A `-o` option the target's format has no field for (or a value outside its range), a
    `--schema` it cannot answer, or images it cannot see (SPEC §14)."""
    if request.options:
        reason = option_problem(entry.provider, request.options)
        if reason is not None:
            return reason
    if request.schema is not None:
        reason = structured_output_problem(entry.provider, request.schema)
        if reason is not None:
            return reason
    if request.attachments and not takes_images(entry.provider, entry.target.model, entry.model):
        return "no image input"
    return None


def _price_check(check: _Check, entry: TargetEntry, index: int) -> tuple[str | None, Option | None]:
    inputs, provider, facts = check.inputs, entry.provider, entry.facts
    max_tokens = check.max_tokens
    price = facts.price
    if inputs.max_cost_usd is None and inputs.budget_filter is None:
        # No limit depends on the count, so `decide` would take the estimate: take it directly.
        if price is None and check.dollar_limit:
            return "no price known", None
        est = check.est
    else:
        # Near a limit the exact count decides, and the candidate's worst case (what the engine
        # reserves) is computed from the same count.
        reason, count = check.tokens.decide(entry.target.model, lambda n: _limit_reason(check, entry, n))
        if reason:
            return reason, None
        est = count.count
    worst = worst_case_cost(price, est, max_tokens) if price is not None else None
    model = entry.model
    # Positional: keyword arguments cost a lookup each, once per target per plan.
    option = Option(entry.target, index, provider.priority, provider.weight,
                    expected_cost(price.input, price.output, est, max_tokens) if price else None,
                    facts.free, model.tier, price.output if price else None, model.quality, worst,
                    facts.context)
    return None, option


def _limit_reason(check: _Check, entry: TargetEntry, est: int) -> str | None:
    """The first limit a worst case of `est` input tokens crosses (its reason), if any."""
    inputs, price, max_tokens = check.inputs, entry.facts.price, check.max_tokens
    worst = worst_case_cost(price, est, max_tokens) if price is not None else None
    if inputs.max_cost_usd is not None:
        if worst is None:
            return f"no price known (--max-cost {money(inputs.max_cost_usd)})"
        if worst > inputs.max_cost_usd:
            return f"worst case {money(worst)} exceeds --max-cost {money(inputs.max_cost_usd)}"
    if price is None and check.dollar_limit:
        return "no price known"
    if inputs.budget_filter is not None:
        return inputs.budget_filter(entry.target, entry.provider, worst, est + max_tokens) or None
    return None


def _memory_reason(memory: MemorySnapshot, provider: ProviderConfig, target_id: str, est: int,
                   now: float, now_dt: datetime) -> str | None:
    """Circuit and rate-limit exclusions from what earlier calls taught us."""
    breaker = memory.breakers.get(target_id)
    if breaker is not None:
        if breaker.state == "open":
            return f"circuit open until {_clock(breaker.open_until, now_dt)}"
        if breaker.state == "half_open" and breaker.trial_started_at is not None \
                and now - breaker.trial_started_at < 60:
            return "circuit half-open: another process is making the trial call"
    rate = memory.rate_limits.get(target_id)
    if rate is not None:
        if rate.blocked_until is not None and rate.blocked_until > now:
            return f"rate limited (429) until {_clock(rate.blocked_until, now_dt)}"
        if rate.requests_remaining == 0 and (rate.requests_reset_at or 0) > now:
            return f"rate limit: 0 requests left until {_clock(rate.requests_reset_at, now_dt)}"
        if rate.tokens_remaining is not None and rate.tokens_remaining < est \
                and (rate.tokens_reset_at or 0) > now:
            return (f"rate limit: {rate.tokens_remaining} tokens left (need ~{est}) "
                    f"until {_clock(rate.tokens_reset_at, now_dt)}")
    if provider.rpm or provider.tpm:
        count, tokens, oldest = memory.requests_in_window(provider.name, now)
        until = _clock((oldest or now) + 60, now_dt)
        if provider.rpm and count >= provider.rpm:
            return f"rate limit: rpm {provider.rpm} reached in the last 60 s (until {until})"
        if provider.tpm and (tokens >= provider.tpm or (tokens > 0 and tokens + est > provider.tpm)):
            return f"rate limit: tpm {provider.tpm} reached in the last 60 s (until {until})"
    return None


def _context_margin(est: int) -> int:
    """Token estimates are approximate: demand ~2 % (at least 8 tokens) of headroom."""
    return max(8, est // 50)


def key_variable(provider: ProviderConfig) -> str:
    """The environment variable the provider's key is read from (SPEC §3)."""
    if provider.key_env:
        return provider.key_env
    preset = preset_for(provider)
    if preset is not None and preset.key_env:
        return preset.key_env
    return "".join(c if c.isalnum() else "_" for c in provider.name.upper()) + "_API_KEY"


# --- step 5: order ------------------------------------------------------------------------


def _apply_tier(selection: _Selection, options: list[Option]) -> tuple[list[Option], list[Exclusion]]:
    """A rule's tier keeps only targets of that tier (a pinned `-m` target is always kept);
    when no available target has the tier, the tier is ignored with a note."""
    tier = selection.tier
    if not tier:
        return options, []

    def matches(o: Option) -> bool:
        return (o.tier == tier) if o.tier else effective_tier(o) == tier

    if not any(matches(o) for o in options if o.target != selection.pinned):
        if options:
            selection.notes.append(f"no available target of tier {tier}; tier ignored")
        return options, []
    kept = [o for o in options if matches(o) or o.target == selection.pinned]
    dropped = [Exclusion(o.target, f"not tier {tier} (rule)") for o in options if o not in kept]
    return kept, dropped


def _order(selection: _Selection, options: list[Option], ctx: StrategyContext,
           memory: MemorySnapshot | None, now_dt: datetime) -> list[Candidate]:
    if selection.pinned is None:
        ranked = order(selection.strategy, options, ctx)
    else:
        pinned = [o for o in options if o.target == selection.pinned]
        rest = [o for o in options if o.target != selection.pinned]
        ranked = [(o, "pinned by -m") for o in pinned] + order(selection.strategy, rest, ctx)
    half_open = {target_id for target_id, b in memory.breakers.items() if b.state == "half_open"} \
        if memory is not None else ()
    expected = ctx.expected
    out = []
    for option, reason in ranked:
        target = option.target
        if half_open or expected:
            target_id = target.id
            if half_open and target_id in half_open:
                reason += "; circuit half-open: trial call"
            eq, n = expected.get(target_id, _UNRATED) if expected else _UNRATED
        else:
            eq, n = _UNRATED
        out.append(Candidate(target, reason, option.worst_case_usd, option.context, option.free, eq, n))
    return out


_UNRATED = (None, 0)  # a candidate's expected quality and evidence when none was computed


def _clock(ts: float | None, now_dt: datetime) -> str:
    if ts is None:
        return "unknown"
    return datetime.fromtimestamp(ts, now_dt.tzinfo).strftime("%H:%M:%S")
