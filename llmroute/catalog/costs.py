"""What one call to a target costs, and how large its context window is.

Prices come from two places with a fixed precedence: the model's own `input`/`output` (and
the part rates `cached_input`, `cache_write`, `tier_tokens`/`input_above`/`output_above`) in the
config, then the built-in dated table (`catalog/builtin.py`). A provider that runs on the
user's own hardware (Ollama, a local model, the mock, an OpenAI-compatible local server preset)
or is marked `free: true` and has no price costs nothing. A local base URL alone is not such
a provider: a LiteLLM proxy on localhost serving `gpt-4o-mini` costs what `gpt-4o-mini` costs.
Everything else without a price is "unknown" (None) — the planner skips such targets while a
dollar budget is set, because a cost it cannot compute is a limit it cannot enforce.

Prices are USD per 1M tokens throughout, as in the config file.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..config.model import Config, ModelConfig, ProviderConfig
from ..types import Result, Target, Usage

from . import LOCAL_TYPES
from .presets import preset_for
from .builtin import FREE, PriceEntry, lookup_context, lookup_price, price_source_label



@dataclass(frozen=True)
class Price:
    """USD per 1M tokens. `source`: "config" | "builtin:<date>" | "free".

    The usage parts (SPEC §2.2): `cached_input` prices input read from the provider's prompt
    cache and `cache_write` input written to it — None means no separate rate is known, so
    that part costs the input rate, as it would have without a cache. Once a prompt holds more
    than `tier_tokens` input tokens, the whole call is priced at `input_above`/`output_above`
    (long-context tier) and the cache rates scale with the input rate."""

    input: float
    output: float
    source: str
    cached_input: float | None = None
    cache_write: float | None = None
    tier_tokens: int | None = None
    input_above: float | None = None
    output_above: float | None = None

    @property
    def is_free(self) -> bool:
        return self.input == 0 and self.output == 0

    def rates(self, input_tokens: int) -> tuple[float, float, float, float]:
        """(input, output, cached input, cache write) per 1M tokens for a prompt this long."""
        input_rate, output_rate = self.input, self.output
        cached = self.cached_input if self.cached_input is not None else input_rate
        write = self.cache_write if self.cache_write is not None else input_rate
        if self.tier_tokens is not None and input_tokens > self.tier_tokens:
            above = self.input_above if self.input_above is not None else input_rate
            scale = above / input_rate if input_rate else 1.0
            input_rate, cached, write = above, cached * scale, write * scale
            output_rate = self.output_above if self.output_above is not None else output_rate
        return input_rate, output_rate, cached, write


@dataclass(frozen=True)
class TargetFacts:
    """A target's price, context window, free-ness and largest answer (`max_output`, tokens),
    from one look at config and table."""

    price: Price | None
    context: int | None
    free: bool
    max_output: int | None = None


def facts_for(config: Config, target: Target) -> TargetFacts:
    """Everything the planner needs about a target's cost, with one built-in table lookup."""
    provider = config.providers.get(target.provider)
    if provider is None:
        return TargetFacts(None, None, False)
    model = provider.models.get(target.model)
    cfg_in = model.input if model else None
    cfg_out = model.output if model else None
    cfg_context = model.context if model else None
    cfg_max_output = model.max_output if model else None
    needs_table = cfg_in is None or cfg_out is None or not cfg_context or not cfg_max_output
    entry = _builtin(provider, target.model) if needs_table else None
    price = _with_parts(_price(provider, cfg_in, cfg_out, entry), model, entry)
    context = int(cfg_context) if cfg_context else (int(entry.context) if entry and entry.context else None)
    if context is None and not cfg_context:
        # A known model behind a custom base URL keeps its window even where its price does
        # not apply (a free local server): see `builtin.lookup_context`.
        context = lookup_context(provider.type, target.model, provider.base_url, _preset_name(provider))
    free = is_free_provider(provider) or (price is not None and price.is_free)
    max_output = int(cfg_max_output) if cfg_max_output else (
        int(entry.max_output) if entry is not None and entry.max_output else None)
    return TargetFacts(price, context, free, max_output)


def price_for(config: Config, target: Target) -> Price | None:
    """The price of `target`, or None when nothing is known (a paid model with no price)."""
    return facts_for(config, target).price


def _price(provider: ProviderConfig, cfg_in: float | None, cfg_out: float | None,
           entry: PriceEntry | None) -> Price | None:
    if cfg_in is not None and cfg_out is not None:
        return Price(float(cfg_in), float(cfg_out), "config")
    if entry is FREE and cfg_in is None and cfg_out is None:
        return Price(0.0, 0.0, "free")  # the table's verdict for local servers
    if entry is not None:
        # A config value set on one side overrides that side of the table.
        return Price(
            float(cfg_in if cfg_in is not None else entry.input),
            float(cfg_out if cfg_out is not None else entry.output),
            price_source_label(),
        )
    if is_free_provider(provider):
        return Price(0.0, 0.0, "free")
    return None


_PARTS = ("cached_input", "cache_write", "tier_tokens", "input_above", "output_above")


def _with_parts(price: Price | None, model: ModelConfig | None, entry: PriceEntry | None) -> Price | None:
    """The part rates, each from the config when set, else from the table — but the table's
    only when its input/output are the ones in use: a config that sets its own `input` and
    `output` has priced a different deal (a gateway, a contract), so parts it leaves unset
    fall back to its own input rate rather than to the table's cache discount."""
    if price is None or price.source == "free":
        return price
    table_applies = entry is not None and price.source != "config"
    parts = {}
    for name in _PARTS:
        value = getattr(model, name, None) if model is not None else None
        if value is None and table_applies:
            value = getattr(entry, name, None)
        if value is not None:
            parts[name] = int(value) if name == "tier_tokens" else float(value)
    return replace(price, **parts) if parts else price


def is_free_provider(provider: ProviderConfig) -> bool:
    """Marked `free`, runs locally, or is an OpenAI-compatible local server preset (no key)."""
    if provider.free or provider.type in LOCAL_TYPES:
        return True
    preset = preset_for(provider)
    return preset is not None and preset.key_env is None


def cost_usd(price: Price, input_tokens: int, output_tokens: int, *, cached_input_tokens: int = 0,
             cache_write_tokens: int = 0) -> float:
    """The cost of a call that used these tokens, each part at its own rate: `input_tokens`
    counts every input token, of which `cached_input_tokens` were read from the prompt cache and
    `cache_write_tokens` written to it; reasoning tokens are output tokens (no rate of their
    own). A prompt above the model's `tier_tokens` is priced wholly at the tier's rates."""
    input_rate, output_rate, cached_rate, write_rate = price.rates(input_tokens)
    cached = max(0, min(cached_input_tokens, input_tokens))
    written = max(0, min(cache_write_tokens, input_tokens - cached))
    plain = input_tokens - cached - written
    return (plain * input_rate + cached * cached_rate + written * write_rate
            + output_tokens * output_rate) / 1_000_000


def usage_cost(price: Price, usage: Usage) -> float:
    """`cost_usd` of a call's reported usage, every part at its rate."""
    return cost_usd(price, usage.input_tokens, usage.output_tokens,
                    cached_input_tokens=usage.cached_input_tokens, cache_write_tokens=usage.cache_write_tokens)


def cache_saving_rate(config: Config, target_id: str) -> float | None:
    """USD per 1M tokens one cached input token saved on `target_id` (`provider/model`): the
    input rate minus the cached-input rate (below any long-context tier), or None when the
    target has no known cached rate (its cached tokens were charged in full)."""
    provider, _, model = target_id.partition("/")
    if not model:
        return None
    price = price_for(config, Target(provider, model))
    if price is None or price.cached_input is None:
        return None
    return max(0.0, price.input - price.cached_input)


def worst_case_cost(price: Price, input_tokens: int, max_tokens: int) -> float:
    """The most a call can cost: the estimated input plus a full `max_tokens` answer, with no
    prompt-cache discount assumed (a cache hit is known only after the call) and at the
    long-context tier's rates when the estimate is above its threshold."""
    return cost_usd(price, input_tokens, max_tokens)


def model_context(config: Config, target: Target) -> int | None:
    """The model's context window in tokens: the config's `context`, else the built-in table."""
    return facts_for(config, target).context


def _builtin(provider: ProviderConfig, model: str) -> PriceEntry | None:
    """The built-in table's entry for this provider's model, or None."""
    return lookup_price(provider.type, model, provider.base_url, _preset_name(provider))


def _preset_name(provider: ProviderConfig) -> str | None:
    """The preset the provider uses — its `preset:` key, else its own name when that is a
    preset (`providers: {vllm: {type: openai}}`) — so the table prices it as that service."""
    preset = preset_for(provider)
    return preset.name if preset is not None else provider.preset


def price_known(provider: ProviderConfig, model: ModelConfig) -> bool:
    """Whether a model's cost can be computed (SPEC §2.2; a paid model without one is a config
    warning): a free provider, a price in the config (`per_minute` for a transcription model),
    or a built-in table entry for it."""
    if is_free_provider(provider):
        return True
    if model.mode == "transcription":
        return model.per_minute is not None or _builtin(provider, model.name) is not None
    return (model.input is not None and model.output is not None) or _builtin(provider, model.name) is not None


def charge(config: Config, target: Target, prompt_text: str, result: Result) -> tuple[Usage, float | None, str]:
    """What one answered call used and cost: the provider's reported usage (else an estimate),
    its own reported cost (OpenRouter) or tokens x price, and where the price came from."""
    from ..tokens import estimate_tokens

    usage = result.usage or Usage(estimate_tokens(prompt_text), estimate_tokens(result.text), "estimate")
    if result.provider_cost_usd is not None:
        return usage, result.provider_cost_usd, "provider"
    price = price_for(config, target)
    if price is None:
        return usage, None, "unknown"
    return usage, usage_cost(price, usage), price.source
