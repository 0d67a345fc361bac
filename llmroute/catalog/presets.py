"""Named OpenAI-compatible services: base URL, key variable and wire quirks.

A provider of `type: openai` gets a preset from its `preset:` key, or from its own name when that
name is a preset (`providers: {groq: {type: openai}}`). Explicit config keys always win.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..config.model import ProviderConfig


@dataclass(frozen=True)
class Preset:
    name: str
    base_url: str
    key_env: str | None  # None: a local server that needs no key
    max_tokens_field: str = "max_tokens"  # OpenAI itself prefers max_completion_tokens
    send_stream_options: bool = True  # Mistral rejects stream_options
    label: str = ""


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset("openai", "https://api.openai.com/v1", "OPENAI_API_KEY", "max_completion_tokens", label="OpenAI"),
        Preset("mistral", "https://api.mistral.ai/v1", "MISTRAL_API_KEY", send_stream_options=False, label="Mistral"),
        Preset("groq", "https://api.groq.com/openai/v1", "GROQ_API_KEY", "max_completion_tokens", label="Groq"),
        Preset("openrouter", "https://openrouter.ai/api/v1", "OPENROUTER_API_KEY", label="OpenRouter"),
        Preset("deepseek", "https://api.deepseek.com/v1", "DEEPSEEK_API_KEY", label="DeepSeek"),
        Preset("together", "https://api.together.xyz/v1", "TOGETHER_API_KEY", label="Together AI"),
        Preset("fireworks", "https://api.fireworks.ai/inference/v1", "FIREWORKS_API_KEY", label="Fireworks AI"),
        Preset("llamacpp", "http://localhost:8080/v1", None, label="llama.cpp server"),
        Preset("vllm", "http://localhost:8000/v1", None, label="vLLM"),
        Preset("lmstudio", "http://localhost:1234/v1", None, label="LM Studio"),
        Preset("ollama-openai", "http://localhost:11434/v1", None, label="Ollama /v1"),
    )
}


def preset_for(config: ProviderConfig) -> Preset | None:
    """The preset a provider uses: its `preset:` key, else its name if that is a preset."""
    if config.type != "openai":
        return None
    if config.preset:
        return PRESETS.get(config.preset)
    return PRESETS.get(config.name)
