"""Which targets can take a request's tools (function calling), decided before any call.

A request with tools sent to a target that cannot take them is refused or, worse, answered as if
the tools were not there; so the planner filters such targets with the reason "no tool support".

- By wire format: the adapters that translate tools are OpenAI (every preset: the format is
  theirs, tools pass through), Anthropic and Gemini, and the offline mock (which can answer with
  a tool call, for tests and demos). Cohere and Ollama's native API are not translated, and the
  in-process `local` model has no tool use.
- By model, within a format that takes tools: models documented without function calling —
  OpenAI's `o1-mini` and `o1-preview` (OpenAI's reasoning-models guide: no function calling in
  the preview models), and the Gemma models served through the Gemini API (it answers
  "Function calling is not enabled for models/gemma-…").
"""

from __future__ import annotations

from ..config.model import ProviderConfig

TOOL_TYPES = frozenset({"openai", "anthropic", "gemini", "mock"})

# (provider type, model-name prefix) of models known not to take tools.
_NO_TOOL_MODELS: tuple[tuple[str, str], ...] = (
    ("openai", "o1-mini"),
    ("openai", "o1-preview"),
    ("gemini", "gemma-"),
)


def supports_tools(provider: ProviderConfig, model: str) -> bool:
    """Whether `provider/model` can take a request's tools."""
    if provider.type not in TOOL_TYPES:
        return False
    bare = model.removeprefix("models/").rsplit("/", 1)[-1]
    return not any(provider.type == kind and bare.startswith(prefix) for kind, prefix in _NO_TOOL_MODELS)
