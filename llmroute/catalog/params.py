"""The request parameter ranges each provider accepts (SPEC §4): a value outside a target's
range filters that target with the reason, instead of sending a request the provider refuses
with a 400 (which stops the fallback: `bad_request` is never moved on from).

Ranges are per wire format, and per service for the OpenAI-compatible presets. Each entry says
where its figures come from; a provider not listed here has no documented range we trust and
is not checked (the CLI and the config already keep `temperature` within 0–2):

- Mistral: its sources disagree — the API reference once said 0–1, later schemas 0–1.5, and
  the current SDK (`mistralai/client-python`, `ChatCompletionRequest.temperature`) documents no
  bound, only "we recommend between 0.0 and 0.7". Refusing a value it accepts would be worse
  than a 400, so it is left unchecked.
- Together, Fireworks: not documented in the material llmroute's reference is built from.
- Local servers (Ollama, llama.cpp, vLLM, LM Studio, `local`, `mock`) take any non-negative
  temperature, and an unnamed OpenAI-compatible base URL (a LiteLLM proxy, a company gateway)
  may forward to anything, so neither is checked.

Only `temperature` is checked: it is the one sampling parameter a request carries.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..config.model import ProviderConfig
from ..types import Request
from .presets import preset_for


@dataclass(frozen=True)
class ParamRange:
    """Inclusive bounds; `hi` None: no upper bound. `owner` names whose range it is in the
    reason a target is filtered ("anthropic", "groq"); `source` says where the figures are
    documented."""

    lo: float
    hi: float | None
    owner: str
    source: str

    def allows(self, value: float) -> bool:
        return value >= self.lo and (self.hi is None or value <= self.hi)

    def describe(self) -> str:
        return f"{self.lo:g}–{self.hi:g}" if self.hi is not None else f"≥ {self.lo:g}"


_OPENAI = ParamRange(0, 2, "openai", "reference/providers.md §1 (Chat Completions: `temperature` 0–2)")

# By wire format: the vendor's own API at its own (or a compatible) host.
_TEMPERATURE_BY_TYPE: dict[str, ParamRange] = {
    "anthropic": ParamRange(0, 1, "anthropic", "reference/providers.md §3 (Messages: `temperature` 0–1, "
                                               "SDK types/message_create_params.py)"),
    "gemini": ParamRange(0, 2, "gemini", "reference/providers.md §4 (`generationConfig.temperature` 0–2; "
                                         "the models list reports maxTemperature 2.0)"),
    "cohere": ParamRange(0, None, "cohere", "docs.cohere.com/v2/reference/chat: \"a non-negative float\""),
}

# OpenAI-compatible services, by preset (`presets.preset_for`: the `preset:` key or the name).
_TEMPERATURE_BY_PRESET: dict[str, ParamRange] = {
    "openai": _OPENAI,
    "groq": ParamRange(0, 2, "groq", "console.groq.com/docs/api-reference (chat: \"between 0 and 2\")"),
    "openrouter": ParamRange(0, 2, "openrouter", "openrouter.ai/docs/api-reference/parameters "
                                                 "(temperature: range [0, 2])"),
    "deepseek": ParamRange(0, 2, "deepseek", "api-docs.deepseek.com (create chat completion: "
                                             "temperature <= 2)"),
}


def temperature_range(provider: ProviderConfig) -> ParamRange | None:
    """The temperatures this provider accepts, or None when no range is known (not checked)."""
    if provider.type == "openai":
        preset = preset_for(provider)
        if preset is not None:
            return _TEMPERATURE_BY_PRESET.get(preset.name)
        return None if provider.base_url else _OPENAI  # an unnamed server may forward anywhere
    return _TEMPERATURE_BY_TYPE.get(provider.type)


@dataclass(frozen=True)
class ParamRanges:
    """A provider's ranges, looked up once per configured target (the planner's table)."""

    temperature: ParamRange | None

    @classmethod
    def for_provider(cls, provider: ProviderConfig) -> ParamRanges:
        return cls(temperature_range(provider))

    def problem(self, request: Request) -> str | None:
        """Why this provider would refuse the request's parameters (the planner's exclusion
        reason), or None when it accepts them or nothing is known."""
        value = request.temperature
        span = self.temperature
        if value is None or span is None or span.allows(value):
            return None
        return f"temperature {value:g} is outside {span.owner}'s range {span.describe()}"


NO_RANGES = ParamRanges(None)
