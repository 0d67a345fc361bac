"""The config file as frozen dataclasses (SPEC §2).

These are the typed objects every other module reads; `config.load` builds them from YAML and
validates them. Field defaults here are the defaults of SPEC §2, so a config that omits a section
gets exactly what the spec promises. Nothing here does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Mapping

from ..types import Target

PROVIDER_TYPES = ("openai", "anthropic", "gemini", "ollama", "cohere", "local", "mock")
STRATEGIES = ("priority", "cost", "latency", "round-robin", "weighted", "quality", "auto")
TIERS = ("small", "large", "reasoning")
MODEL_MODES = ("chat", "transcription")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _empty() -> Mapping:
    """A fresh read-only empty mapping (a shared MappingProxyType is unhashable, so
    dataclasses refuse it as a plain default)."""
    return MappingProxyType({})


@dataclass(frozen=True)
class Defaults:
    route: str = "default"
    strategy: str = "auto"
    auto_threshold: float = 0.5
    timeout: float = 60.0
    max_attempts: int = 4
    retries: int = 1
    max_tokens: int = 1024
    temperature: float | None = None


@dataclass(frozen=True)
class ModelConfig:
    """One model of a provider. Prices are USD per 1M tokens; None = take the built-in table.

    `mode: transcription` marks a speech-to-text model (priced per minute with `per_minute`)."""

    name: str
    input: float | None = None
    output: float | None = None
    context: int | None = None
    max_output: int | None = None
    tier: str | None = None
    quality: float | None = None
    mode: str = "chat"
    per_minute: float | None = None
    # Usage parts at their own rates (SPEC §2.2): input read from the prompt cache, input
    # written to it, and the long-context tier (`input_above`/`output_above` once a prompt
    # holds more than `tier_tokens` input tokens). None = the built-in table's, else `input`.
    cached_input: float | None = None
    cache_write: float | None = None
    tier_tokens: int | None = None
    input_above: float | None = None
    output_above: float | None = None
    images: bool | None = None  # takes image input (`-a`); None = the built-in table's answer
    line: int = 0


@dataclass(frozen=True)
class ProviderConfig:
    """One entry under `providers:`. `options` holds the type-specific keys:
    mock: latency_ms, fail_rate, reply, seed; local: model_path, n_ctx, threads."""

    name: str
    type: str
    preset: str | None = None
    base_url: str | None = None  # None = the type's (or preset's) default, resolved by providers
    allow_insecure: bool = False
    key_env: str | None = None  # None = <NAME>_API_KEY, or the preset's variable
    key_cmd: str | None = None
    priority: int = 50
    weight: float = 1.0
    free: bool = False
    rpm: int | None = None
    tpm: int | None = None
    timeout: float | None = None
    enabled: bool = True
    headers: Mapping[str, str] = field(default_factory=_empty)
    models: Mapping[str, ModelConfig] = field(default_factory=_empty)  # in file order; the first is the default model
    options: Mapping[str, object] = field(default_factory=_empty)
    line: int = 0

    @property
    def first_model(self) -> str | None:
        return next(iter(self.models), None)


@dataclass(frozen=True)
class RuleWhen:
    min_tokens: int | None = None
    max_tokens: int | None = None
    regex: str | None = None
    has_code: bool | None = None
    tag: str | None = None
    hours: str | None = None  # "9-17"; wraps past midnight ("22-07")
    weekdays: tuple[str, ...] | None = None
    budget_used_over: float | None = None


@dataclass(frozen=True)
class RuleThen:
    route: str | None = None
    strategy: str | None = None
    tier: str | None = None
    model: str | None = None  # a target or route name, like -m


@dataclass(frozen=True)
class Rule:
    when: RuleWhen
    then: RuleThen
    index: int = 0
    line: int = 0


@dataclass(frozen=True)
class Limits:
    """Spend limits of one scope (global or one provider). None = no limit."""

    daily: float | None = None
    weekly: float | None = None
    monthly: float | None = None
    tokens_daily: int | None = None
    tokens_weekly: int | None = None
    tokens_monthly: int | None = None

    @property
    def is_empty(self) -> bool:
        return all(v is None for v in self.__dict__.values())


@dataclass(frozen=True)
class BudgetConfig:
    limits: Limits = Limits()
    per_provider: Mapping[str, Limits] = field(default_factory=_empty)
    on_exhaust: str = "free"  # free | block
    alert_at: tuple[float, ...] = (0.5, 0.8, 1.0)
    timezone: str = "local"

    @property
    def has_dollar_limit(self) -> bool:
        scopes = [self.limits, *self.per_provider.values()]
        return any(s.daily or s.weekly or s.monthly for s in scopes)


@dataclass(frozen=True)
class ABTestConfig:
    sample_rate: float = 0.0
    min_tokens: int = 10
    targets: tuple[Target, ...] = ()
    judge: Target | None = None


@dataclass(frozen=True)
class CacheConfig:
    enabled: bool = False
    ttl: float = 3600.0


@dataclass(frozen=True)
class AlertsConfig:
    command: str | None = None
    webhook: str | None = None


@dataclass(frozen=True)
class LedgerConfig:
    path: str | None = None
    log_prompts: bool = False
    required: bool = False  # a ledger write failure fails the call (exit 1) instead of a warning


@dataclass(frozen=True)
class ConversationsConfig:
    """`-c`/`--cid`/`chat` (SPEC §14): how many conversations are kept; 0 = none stored."""

    keep: int = 100


@dataclass(frozen=True)
class AutoConfig:
    """The `auto` strategy once verdicts exist (SPEC §2): the cheapest target whose expected
    quality for the prompt is within `quality_margin` of the best candidate's."""

    quality_margin: float = 0.05


@dataclass(frozen=True)
class ServeConfig:
    """`llmroute serve` (SPEC §13): the environment variable holding the bearer token a
    non-loopback bind requires."""

    token_env: str | None = None


@dataclass(frozen=True)
class StateConfig:
    """Where shared state lives (SPEC §15): `local` files, or a Redis every machine of a team
    uses. `url` never carries a password (`url_env` or the keyring `redis_url` does)."""

    backend: str = "local"  # local | redis
    url: str | None = None
    url_env: str | None = None
    namespace: str = "llmroute"


@dataclass(frozen=True)
class Config:
    version: int = 1
    defaults: Defaults = Defaults()
    providers: Mapping[str, ProviderConfig] = field(default_factory=_empty)
    routes: Mapping[str, tuple[Target, ...]] = field(default_factory=_empty)
    rules: tuple[Rule, ...] = ()
    budget: BudgetConfig = BudgetConfig()
    abtest: ABTestConfig = ABTestConfig()
    cache: CacheConfig = CacheConfig()
    alerts: AlertsConfig = AlertsConfig()
    ledger: LedgerConfig = LedgerConfig()
    serve: ServeConfig = ServeConfig()
    conversations: ConversationsConfig = ConversationsConfig()
    state: StateConfig = StateConfig()
    auto: AutoConfig = AutoConfig()
    source: Path | None = None  # the file it came from; None = built-in default config
    warnings: tuple[str, ...] = field(default=(), compare=False)

    def model(self, target: Target) -> ModelConfig | None:
        provider = self.providers.get(target.provider)
        return provider.models.get(target.model) if provider else None

    def all_targets(self) -> list[Target]:
        return [Target(p.name, m) for p in self.providers.values() for m in p.models]

    def resolve_target(self, text: str) -> Target | None:
        """`provider/model` or a bare provider name (its first model); None if unknown."""
        provider_name, slash, model = text.partition("/")
        provider = self.providers.get(provider_name)
        if provider is None:
            return None
        if not slash:
            first = provider.first_model
            return Target(provider_name, first) if first else None
        return Target(provider_name, model) if model in provider.models else None
