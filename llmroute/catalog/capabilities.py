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


# --- structured output (`--schema`, SPEC §14) ----------------------------------------------
#
# Formats with a native mechanism: OpenAI `response_format` json_schema (every preset: the
# field is the format's own, and compatible servers such as vLLM, llama.cpp, Ollama's /v1 and
# OpenRouter accept it), Anthropic a forced tool whose input is the answer (a tool's input
# must be an object, so only object schemas), Gemini `responseSchema`, Ollama `format`, Cohere
# `response_format` json_object. The mock has no mechanism but its answer is validated like
# any other (it is the offline test double); the in-process `local` model has none.

STRUCTURED_TYPES = frozenset({"openai", "anthropic", "gemini", "ollama", "cohere", "mock"})


def structured_output_problem(provider: ProviderConfig, schema: dict) -> str | None:
    """Why this provider cannot be asked for an answer matching `schema`, or None."""
    if provider.type not in STRUCTURED_TYPES:
        return "no structured output"
    if provider.type == "anthropic" and schema.get("type", "object") != "object":
        return "no structured output for a non-object schema (anthropic answers through a tool's input)"
    return None


# --- image input (`-a FILE`, SPEC §14) ------------------------------------------------------
#
# Which models take images, by format and model-name prefix (the name's last `/` segment, so
# OpenRouter's `openai/gpt-4o` counts as `gpt-4o`). From the vendors' model pages: OpenAI's
# vision guide (gpt-4o, gpt-4.1, gpt-5, o1, o3, o4-mini, gpt-4-turbo), Anthropic's vision
# docs (every Claude 3 and later model), Gemini's image-understanding docs (every gemini-
# model), Ollama's vision models (llava, bakllava, llama3.2-vision, llama4, gemma3, qwen2.5vl,
# minicpm-v, moondream), Cohere's (command-a-vision, aya-vision), Mistral's (pixtral,
# mistral-small and -medium from 2503 on), Groq's (llama-4). A model's `images: true|false` in
# the config overrides the table; the mock takes images (and ignores them).

_IMAGE_PREFIXES = ("gpt-4o", "gpt-4.1", "gpt-4-turbo", "gpt-5", "o1", "o3", "o4-mini", "chatgpt-4o",
                   "claude-3", "claude-sonnet-4", "claude-opus-4", "claude-haiku-4", "claude-4",
                   "gemini-", "llava", "bakllava", "llama3.2-vision", "llama4", "llama-4", "gemma3",
                   "qwen2.5vl", "qwen2.5-vl", "minicpm-v", "moondream", "command-a-vision",
                   "c4ai-aya-vision", "aya-vision", "pixtral", "mistral-small-2503", "mistral-small-2506",
                   "mistral-medium")
_NOT_IMAGE = ("o1-mini", "o1-preview", "o3-mini", "gpt-4o-audio", "gpt-4o-mini-audio", "gpt-4o-transcribe",
              "gpt-4o-mini-transcribe", "gpt-4o-mini-tts", "gpt-4o-realtime", "gpt-4o-search")


def takes_images(provider: ProviderConfig, model: str, model_config: object | None = None) -> bool:
    """Whether `provider/model` takes image input."""
    override = getattr(model_config, "images", None)
    if override is not None:
        return bool(override)
    if provider.type == "mock":
        return True
    if provider.type == "local":
        return False
    bare = model.removeprefix("models/").rsplit("/", 1)[-1].lower()
    if bare.startswith(_NOT_IMAGE):
        return False
    return bare.startswith(_IMAGE_PREFIXES) or (provider.type == "anthropic" and bare.startswith("claude-")
                                                 and not bare.startswith(("claude-2", "claude-instant")))
