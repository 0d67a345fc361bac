"""`-o KEY=VALUE` model options (SPEC §14): which options exist, how their text is read, and
for each wire format the request field an option becomes and the values that field accepts.

An option a target's format has no field for filters that target in planning ("option top_k
not supported by openai"), as does a value outside that format's range; an option no format
knows is a usage error listing the known ones. The providers write the fields (`apply`), so the
table below is the one place that says what is sent.

Sources, per format:
- OpenAI Chat Completions (reference/providers.md §1; openai-python
  `types/chat/completion_create_params.py`): `top_p` 0–1, `seed` int, `stop` up to 4 strings,
  `presence_penalty`/`frequency_penalty` -2–2, `reasoning_effort` minimal|low|medium|high. No
  `top_k`. Compatible services differ (presets): Mistral names the seed `random_seed` and has no
  `reasoning_effort` (mistralai `models/chatcompletionrequest.py`); OpenRouter adds `top_k` and
  `min_p` and takes the effort as `reasoning.effort` (openrouter.ai/docs/api-reference/parameters);
  llama.cpp's server and vLLM add `top_k` and `min_p` (their OpenAI-compatible servers' extra
  sampling parameters); Ollama's `/v1` takes `reasoning_effort` (providers.md §5).
- Anthropic Messages (§3; anthropic `types/message_create_params.py`): `top_p` 0–1, `top_k` ≥ 0,
  `stop_sequences`. No seed, penalties or effort.
- Gemini (`generationConfig`, python-genai `types.py GenerationConfig`): `topP`, `topK`, `seed`,
  `stopSequences` (up to 5), `presencePenalty`/`frequencyPenalty` (-2–2 per the Vertex AI
  reference for the same fields).
- Ollama native (`options`, ollama `api/types.go Options`): `top_p`, `top_k`, `min_p`, `seed`,
  `stop`, `presence_penalty`, `frequency_penalty`, `num_ctx`.
- Cohere v2 (cohere `v2/raw_client.py`, docs.cohere.com/v2/reference/chat): `p` 0.01–0.99,
  `k` 0–500, `seed`, `stop_sequences` (up to 5), `presence_penalty`/`frequency_penalty` 0–1.
- `local` (llama-cpp-python `create_chat_completion` keyword arguments): `top_p`, `top_k`,
  `min_p`, `seed`, `stop`, `presence_penalty`, `frequency_penalty`.
- `mock` takes every option and ignores it (it is the offline test double).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from ..config.model import ProviderConfig
from .presets import preset_for


@dataclass(frozen=True)
class OptionSpec:
    """An option as the user writes it: its value kind (`float`, `int`, `list` of strings,
    `choice`), the bounds every format shares, and a one-line description."""

    name: str
    kind: str
    help: str
    lo: float | None = None
    hi: float | None = None
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class WireField:
    """Where one format puts an option (`path`, dotted into the request body) and the values it
    takes there (inclusive bounds; `max_items` for lists)."""

    path: str
    lo: float | None = None
    hi: float | None = None
    max_items: int | None = None


EFFORTS = ("minimal", "low", "medium", "high")

OPTIONS: dict[str, OptionSpec] = {spec.name: spec for spec in (
    OptionSpec("top_p", "float", "nucleus sampling mass, 0-1", 0, 1),
    OptionSpec("top_k", "int", "sample from the k most likely tokens", 0, None),
    OptionSpec("min_p", "float", "minimum token probability relative to the best, 0-1", 0, 1),
    OptionSpec("seed", "int", "sampling seed, for repeatable answers"),
    OptionSpec("stop", "list", "stop sequences: comma-separated, or repeat -o stop=..."),
    OptionSpec("presence_penalty", "float", "penalty for tokens already present", -2, 2),
    OptionSpec("frequency_penalty", "float", "penalty by how often a token appeared", -2, 2),
    OptionSpec("reasoning_effort", "choice", "reasoning effort of reasoning models", choices=EFFORTS),
    OptionSpec("num_ctx", "int", "context window to load the model with (Ollama)", 1, None),
)}

_OPENAI: dict[str, WireField] = {
    "top_p": WireField("top_p", 0, 1),
    "seed": WireField("seed"),
    "stop": WireField("stop"),
    "presence_penalty": WireField("presence_penalty", -2, 2),
    "frequency_penalty": WireField("frequency_penalty", -2, 2),
    "reasoning_effort": WireField("reasoning_effort"),
}

_BY_FORMAT: dict[str, dict[str, WireField]] = {
    "openai": _OPENAI,
    "anthropic": {
        "top_p": WireField("top_p", 0, 1),
        "top_k": WireField("top_k", 0),
        "stop": WireField("stop_sequences"),
    },
    "gemini": {
        "top_p": WireField("generationConfig.topP", 0, 1),
        "top_k": WireField("generationConfig.topK", 0),
        "seed": WireField("generationConfig.seed"),
        "stop": WireField("generationConfig.stopSequences", max_items=5),
        "presence_penalty": WireField("generationConfig.presencePenalty", -2, 2),
        "frequency_penalty": WireField("generationConfig.frequencyPenalty", -2, 2),
    },
    "ollama": {
        "top_p": WireField("options.top_p", 0, 1),
        "top_k": WireField("options.top_k", 0),
        "min_p": WireField("options.min_p", 0, 1),
        "seed": WireField("options.seed"),
        "stop": WireField("options.stop"),
        "presence_penalty": WireField("options.presence_penalty"),
        "frequency_penalty": WireField("options.frequency_penalty"),
        "num_ctx": WireField("options.num_ctx", 1),
    },
    "cohere": {
        "top_p": WireField("p", 0.01, 0.99),
        "top_k": WireField("k", 0, 500),
        "seed": WireField("seed"),
        "stop": WireField("stop_sequences", max_items=5),
        "presence_penalty": WireField("presence_penalty", 0, 1),
        "frequency_penalty": WireField("frequency_penalty", 0, 1),
    },
    "local": {
        "top_p": WireField("top_p", 0, 1),
        "top_k": WireField("top_k", 0),
        "min_p": WireField("min_p", 0, 1),
        "seed": WireField("seed"),
        "stop": WireField("stop"),
        "presence_penalty": WireField("presence_penalty", -2, 2),
        "frequency_penalty": WireField("frequency_penalty", -2, 2),
    },
    "mock": {name: WireField("") for name in OPTIONS},  # accepted, ignored
}

# OpenAI-compatible services whose fields differ from OpenAI's: option → field, None: absent.
_PRESET_CHANGES: dict[str, dict[str, WireField | None]] = {
    "mistral": {"seed": WireField("random_seed"), "reasoning_effort": None},
    "openrouter": {"top_k": WireField("top_k", 0), "min_p": WireField("min_p", 0, 1),
                   "reasoning_effort": WireField("reasoning.effort")},
    "llamacpp": {"top_k": WireField("top_k", 0), "min_p": WireField("min_p", 0, 1)},
    "vllm": {"top_k": WireField("top_k", 0), "min_p": WireField("min_p", 0, 1)},
    "openai": {"stop": WireField("stop", max_items=4)},
}


def owner(provider: ProviderConfig) -> str:
    """The name in a reason: the preset of an OpenAI-compatible service, else the format."""
    if provider.type == "openai":
        preset = preset_for(provider)
        return preset.name if preset is not None else "openai"
    return provider.type


def fields_for(provider: ProviderConfig) -> Mapping[str, WireField]:
    """The options this provider takes and the field each becomes."""
    fields = dict(_BY_FORMAT.get(provider.type, {}))
    if provider.type == "openai":
        preset = preset_for(provider)
        for name, change in _PRESET_CHANGES.get(preset.name if preset else "", {}).items():
            if change is None:
                fields.pop(name, None)
            else:
                fields[name] = change
    return fields


def problem(provider: ProviderConfig, options: Iterable[tuple[str, Any]],
            fields: Mapping[str, WireField] | None = None) -> str | None:
    """Why this provider cannot take these options (the planner's exclusion reason), or None."""
    fields = fields_for(provider) if fields is None else fields
    for name, value in options:
        field = fields.get(name)
        if field is None:
            return f"option {name} not supported by {owner(provider)}"
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if (field.lo is not None and value < field.lo) or (field.hi is not None and value > field.hi):
                return f"option {name} {value:g} is outside {owner(provider)}'s range {_span(field)}"
        if isinstance(value, (list, tuple)) and field.max_items is not None and len(value) > field.max_items:
            return f"option {name}: {owner(provider)} takes at most {field.max_items}"
    return None


def apply(body: dict, options: Iterable[tuple[str, Any]], provider: ProviderConfig) -> dict:
    """Write the options into a request body at their format's fields (nested by dots);
    an option the format does not take is left out (the planner filtered such targets)."""
    fields = fields_for(provider)
    for name, value in options:
        field = fields.get(name)
        if field is None or not field.path:
            continue
        *parents, leaf = field.path.split(".")
        node = body
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = list(value) if isinstance(value, (list, tuple)) else value
    return body


def _span(field: WireField) -> str:
    if field.hi is None:
        return f"≥ {field.lo:g}"
    return f"{field.lo:g}–{field.hi:g}"


def known() -> str:
    """The known options, for a usage message."""
    return ", ".join(sorted(OPTIONS))


def parse_cli(pairs: Iterable[str]) -> tuple[tuple[str, Any], ...]:
    """`-o KEY=VALUE` texts → (name, typed value) pairs, in first-given order. `stop` may be
    comma-separated or repeated (the values join); any other repeated key keeps the last value.
    Raises `UsageError` (exit 2) for an unknown option or a value of the wrong kind."""
    from ..errors import UsageError

    values: dict[str, Any] = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or not name:
            raise UsageError(f"-o takes KEY=VALUE, not {pair!r}", f"e.g. -o top_p=0.9; known options: {known()}")
        spec = OPTIONS.get(name)
        if spec is None:
            raise UsageError(f"unknown option {name!r}", f"known options: {known()}")
        value = _value(spec, text.strip(), UsageError)
        if spec.kind == "list":
            values[name] = [*values.get(name, []), *value]
        else:
            values[name] = value
    return tuple(values.items())


def _value(spec: OptionSpec, text: str, error: type) -> Any:
    if spec.kind == "list":
        items = [item for item in (part.strip() for part in text.split(",")) if item]
        if not items:
            raise error(f"option {spec.name} needs at least one value", "e.g. -o stop=END or -o stop=a,b")
        return items
    if spec.kind == "choice":
        if text.lower() not in spec.choices:
            raise error(f"option {spec.name} takes one of {', '.join(spec.choices)}, not {text!r}")
        return text.lower()
    try:
        value: Any = int(text) if spec.kind == "int" else float(text)
    except ValueError:
        raise error(f"option {spec.name} takes {'an integer' if spec.kind == 'int' else 'a number'}, "
                    f"not {text!r}") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise error(f"option {spec.name} takes a finite number, not {text!r}")
    if (spec.lo is not None and value < spec.lo) or (spec.hi is not None and value > spec.hi):
        bounds = f"{spec.lo:g}–{spec.hi:g}" if spec.hi is not None else f"≥ {spec.lo:g}"
        raise error(f"option {spec.name} must be {bounds}, not {text}")
    return value
