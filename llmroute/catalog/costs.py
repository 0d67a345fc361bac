"""What one call to a target costs, and how large its context window is.

Prices come from two places with a fixed precedence: the model's own `input`/`output` in the
config, then the built-in dated table (`catalog/builtin.py`). A provider that runs on the
user's own hardware (Ollama, a local model, the mock, an OpenAI-compatible local server preset)
or is marked `free: true` and has no price costs nothing. A local base URL alone is not such
a provider: a LiteLLM proxy on localhost serving `gpt-4o-mini` costs what `gpt-4o-mini` costs.
Everything else without a price is "unknown" (None) — the planner skips such targets while a
dollar budget is set, because a cost it cannot compute is a limit it cannot enforce.

Prices are USD per 1M tokens throughout, as in the config file.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..config.model import Config, ModelConfig, ProviderConfig
from ..types import Result, Target, Usage

from . import LOCAL_TYPES
from .presets import preset_for
from .builtin import FREE, PriceEntry, lookup_context, lookup_price, price_source_label



@dataclass(frozen=True)
class Price:
    """USD per 1M tokens. `source`: "config" | "builtin:<date>" | "free"."""

    input: float
    output: float
    source: str

    @property
    def is_free(self) -> bool:
        return self.input == 0 and self.output == 0


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
    price = _price(provider, cfg_in, cfg_out, entry)
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


def is_free_provider(provider: ProviderConfig) -> bool:
    """Marked `free`, runs locally, or is an OpenAI-compatible local server preset (no key)."""
    if provider.free or provider.type in LOCAL_TYPES:
        return True
    preset = preset_for(provider)
    return preset is not None and preset.key_env is None


def cost_usd(price: Price, input_tokens: int, output_tokens: int) -> float:
    """The cost of a call that used these tokens."""
    return (input_tokens * price.input + output_tokens * price.output) / 1_000_000


def worst_case_cost(price: Price, input_tokens: int, max_tokens: int) -> float:
    """The most a call can cost: the estimated input plus a full `max_tokens` answer."""
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
    return usage, cost_usd(price, usage.input_tokens, usage.output_tokens), price.source
