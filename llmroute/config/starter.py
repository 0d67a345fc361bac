'''The commented starter config that `llmroute config init` writes (SPEC §2.6, §11).

Its default route holds a small AND a large model of every provider with a key (the models the
built-in default config uses, `defaults.KNOWN_PROVIDERS`), so `auto` has both to choose from:
easy prompts go to the small ones, hard ones to the large ones. With no key found yet, OpenAI
and Anthropic are written as examples to fill in. A local Ollama is included when it answers,
else shown commented out (a listed but absent server would be tried first for every easy
prompt, being free). The rest is kept small on purpose: one rule, a daily budget, and comments
pointing at the rest; `example-config.yaml` in the repository shows every key. Tests load what
this writes to make sure it always validates.
'''

from __future__ import annotations

from typing import Callable, Mapping, Sequence

from .defaults import KNOWN_PROVIDERS, _Known

EXAMPLE_PROVIDERS = ("openai", "anthropic")  # written when no key is found

_HEAD = """\
# llmroute config — see `llmroute config check` to validate and `llmroute config show` to see
# the effective config. Every key is described in the README (and example-config.yaml).
version: 1

defaults:
  route: default          # the route used when you give neither -m nor -r
  strategy: auto          # priority | cost | latency | round-robin | weighted | quality | auto
  timeout: 60             # seconds per attempt
  max_tokens: 1024

# Keys never go in this file. Store them with `llmroute keys set openai` (OS keyring) or export
# the variable named by key_env (default: <NAME>_API_KEY, e.g. OPENAI_API_KEY).
"""

_OLLAMA = """\
  ollama:                            # a local Ollama server; no key, no cost
    type: ollama
    free: true
    models:
      llama3.2: {tier: small}
"""

_OLLAMA_OFF = """\
  # ollama:                          # a local Ollama server (it did not answer when this was written)
  #   type: ollama
  #   free: true
  #   models:
  #     llama3.2: {tier: small}
"""

_TAIL = """\
# First matching rule wins; evaluated before the strategy.
rules:
  - when: {regex: "(?i)\\\\b(prove|derive|step by step)\\\\b"}
    then: {route: strong}

budget:
  daily: 5.00             # USD; also weekly, monthly, tokens_daily, ...
  on_exhaust: free        # free: only free providers answer once spent; block: refuse (exit 4)
  alert_at: [0.5, 0.8, 1.0]

ledger:
  log_prompts: false      # true stores prompt and answer text in the ledger too
"""


def providers_with_keys(env: Mapping[str, str], keyring_has: Callable[[str], bool]) -> list[tuple[_Known, str | None]]:
    """Every known provider whose key variable is set or whose key is in the keyring, with the
    alias variable it uses, if any. The probe is passed in, as for the built-in default config."""
    return [(known, _alias_set(known, env)) for known in KNOWN_PROVIDERS
            if any(env.get(v) for v in known.key_envs) or keyring_has(known.name)]


def starter_config(env: Mapping[str, str], keyring_has: Callable[[str], bool],
                   ollama_up: Callable[[], bool]) -> str:
    """The starter for this machine: the providers with a key, Ollama when it answers."""
    return render_starter(providers_with_keys(env, keyring_has), ollama=ollama_up())


def render_starter(keyed: Sequence[tuple[_Known, str | None]], *, ollama: bool) -> str:
    """The starter text for these providers (each with the alias key variable it uses, if
    any); with none, the example providers."""
    if keyed:
        note = "# The providers whose key was found when this file was written; add others the same way.\n"
        providers = list(keyed)
    else:
        note = ("# No provider key was found when this file was written: these two are examples. Targets\n"
                "# without a key are skipped, so it is fine to list ones you have not set up yet.\n")
        by_name = {known.name: known for known in KNOWN_PROVIDERS}
        providers = [(by_name[name], None) for name in EXAMPLE_PROVIDERS]
    lines = [_HEAD + note + "providers:"]
    for index, (known, alias) in enumerate(providers):
        lines += _provider_block(known, alias, first=index == 0)
    lines.append((_OLLAMA if ollama else _OLLAMA_OFF).rstrip("\n"))
    small = [f"{known.name}/{model}" for known, _ in providers for model, tier in known.models if tier == "small"]
    large = [f"{known.name}/{model}" for known, _ in providers for model, tier in known.models if tier != "small"]
    free = ["ollama/llama3.2"] if ollama else []
    lines += [
        "",
        "# A route is an ordered list of targets (provider/model; a bare provider means its first model).",
        "# The default route holds small and large models: `auto` sends easy prompts to the small ones",
        "# and hard ones (difficulty >= defaults.auto_threshold) to the large ones.",
        "routes:",
        "  default:",
        *(f"    - {target}" for target in small + large + free),
        f"  strong: [{', '.join(large)}]",
        "",
        _TAIL,
    ]
    return "\n".join(lines)


def _provider_block(known: _Known, alias: str | None, *, first: bool) -> list[str]:
    lines = [f"  {known.name}:", f"    type: {known.type}"]
    if known.preset:
        lines.append(f"    preset: {known.preset}")
    if alias:
        lines.append(f"    key_env: {alias}")
    lines.append("    models:")
    for position, (model, tier) in enumerate(known.models):
        entry = f"      {model}: {{tier: {tier}}}"
        if first and position == 0:
            entry = f"{entry:<39}# prices and context come from the built-in table"
        lines.append(entry)
    return lines


def _alias_set(known: _Known, env: Mapping[str, str]) -> str | None:
    """The accepted alias variable holding the key (GOOGLE_API_KEY, CO_API_KEY) when the
    conventional one is not set; None when the default variable (or the keyring) serves."""
    if env.get(known.key_envs[0]):
        return None
    return next((v for v in known.key_envs[1:] if env.get(v)), None)


STARTER_CONFIG = render_starter((), ollama=False)  # what init writes with no key and no Ollama
