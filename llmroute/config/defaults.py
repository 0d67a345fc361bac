"""The built-in default config and config discovery (SPEC §1, §2.6).

With no config file llmroute still works: every provider whose conventional key variable is set
(or whose key is in the keyring) gets sensible small and large models, Ollama is added when it
answers on localhost, and the bundled local model comes last when installed. All probes are
passed in, so this module does no I/O of its own and tests need no network.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Callable, Mapping

from ..paths import Paths, find_config, user_config
from ..types import Target
from .model import Config, Defaults, ModelConfig, ProviderConfig
from .trust import TrustCheck, TrustStore

KEYRING_SERVICE = "llmroute"
OLLAMA_TAGS_URL = "http://localhost:11434/api/tags"


@dataclass(frozen=True)
class _Known:
    """A provider llmroute knows how to set up from a key alone."""

    name: str
    type: str
    key_envs: tuple[str, ...]  # the conventional variable first, then accepted aliases
    models: tuple[tuple[str, str], ...]  # (model, tier)
    preset: str | None = None


# In "cheap first" order: the default route lists small models of these providers in this
# order, then their large models. Each has a small and a large one, so `auto` can send easy
# prompts to the first and hard ones to the second (`config init` writes the same pairs).
KNOWN_PROVIDERS: tuple[_Known, ...] = (
    _Known("groq", "openai", ("GROQ_API_KEY",),
           (("llama-3.1-8b-instant", "small"), ("llama-3.3-70b-versatile", "large")), preset="groq"),
    _Known("gemini", "gemini", ("GEMINI_API_KEY", "GOOGLE_API_KEY"),
           (("gemini-2.5-flash", "small"), ("gemini-2.5-pro", "large"))),
    _Known("openai", "openai", ("OPENAI_API_KEY",), (("gpt-4o-mini", "small"), ("gpt-4o", "large"))),
    _Known("mistral", "openai", ("MISTRAL_API_KEY",),
           (("mistral-small-latest", "small"), ("mistral-large-latest", "large")), preset="mistral"),
    _Known("openrouter", "openai", ("OPENROUTER_API_KEY",),
           (("openai/gpt-4o-mini", "small"), ("openai/gpt-4o", "large")), preset="openrouter"),
    _Known("anthropic", "anthropic", ("ANTHROPIC_API_KEY",),
           (("claude-haiku-4-5", "small"), ("claude-sonnet-4-5", "large"))),
    _Known("cohere", "cohere", ("COHERE_API_KEY", "CO_API_KEY"),
           (("command-r7b-12-2024", "small"), ("command-a-03-2025", "large"))),
)


def default_config(
    env: Mapping[str, str],
    keyring_has: Callable[[str], bool],
    ollama_up: Callable[[], bool],
    local_available: Callable[[], bool],
) -> Config:
    """The config used when no file exists. May have no providers at all; the engine then
    exits 5 with guidance."""
    providers: list[ProviderConfig] = []
    for known in KNOWN_PROVIDERS:
        key_env = next((v for v in known.key_envs if env.get(v)), None)
        if key_env is None and not keyring_has(known.name):
            continue
        models = {m: ModelConfig(name=m, tier=tier) for m, tier in known.models}
        providers.append(ProviderConfig(
            name=known.name, type=known.type, preset=known.preset,
            key_env=key_env if key_env and key_env != known.key_envs[0] else None,
            models=MappingProxyType(models),
        ))
    if ollama_up():
        providers.append(ProviderConfig(
            name="ollama", type="ollama", free=True,
            models=MappingProxyType({"llama3.2": ModelConfig(name="llama3.2", tier="small")})))
    if local_available():
        providers.append(ProviderConfig(
            name="local", type="local", free=True,
            models=MappingProxyType({"smollm2-135m": ModelConfig(name="smollm2-135m", tier="small")})))
    if not providers:
        return Config(defaults=Defaults(strategy="auto"), source=None)
    return Config(
        defaults=Defaults(route="default", strategy="auto"),
        providers=MappingProxyType({p.name: p for p in providers}),
        routes=MappingProxyType({"default": _default_route(providers)}),
        source=None,
    )


def _default_route(providers: list[ProviderConfig]) -> tuple[Target, ...]:
    """Paid small models, then paid large ones, then Ollama, then the local model last."""
    paid = [p for p in providers if not p.free]
    free = [p for p in providers if p.free]
    small = [Target(p.name, m.name) for p in paid for m in p.models.values() if m.tier == "small"]
    large = [Target(p.name, m.name) for p in paid for m in p.models.values() if m.tier != "small"]
    local = [Target(p.name, m) for p in free for m in p.models]
    return tuple(small + large + local)


def discover_and_load(
    explicit: str | None,
    env: Mapping[str, str],
    cwd: Path,
    paths: Paths,
    keyring_has: Callable[[str], bool] | None = None,
    ollama_up: Callable[[], bool] | None = None,
    local_available: Callable[[], bool] | None = None,
    warn: Callable[[str], None] | None = None,
) -> Config:
    """The config in use: the file `find_config` names (an explicitly named missing file is a
    `ConfigError`), else the built-in default config. A project config is read only when trusted
    (SPEC §1.1); otherwise `warn` gets one line and the user config (or built-in one) is used,
    and nothing the project file names is run, contacted or written. Probes default to the real
    ones and run only when no file exists."""
    from .load import load_config, load_config_bytes

    choice = find_config(explicit, env, cwd, paths)
    if choice.origin == "project":
        check = project_trust(choice.path, paths)
        if check.trusted:
            return load_config_bytes(check.content, choice.path)
        if warn is not None:
            warn(untrusted_notice(choice.path, check))
        choice = user_config(paths)
    if choice.path is not None:
        return load_config(choice.path)
    return default_config(
        env,
        keyring_has or keyring_has_key,
        ollama_up or probe_ollama,
        local_available or local_model_available,
    )


def project_trust(path: Path, paths: Paths) -> TrustCheck:
    """Whether the project config at `path` may be read (SPEC §1.1)."""
    return TrustStore(paths.data_dir).check(path)


def untrusted_notice(path: Path, check: TrustCheck) -> str:
    """The one stderr line for a project config that is not read."""
    if check.state == "unsafe":
        return (f"ignoring {path}: {check.reason}; it is not read even though trusted "
                f"(fix it, then `llmroute config trust`)")
    return f"ignoring {path}: {check.reason}; run `llmroute config trust` to use it"


def keyring_has_key(name: str) -> bool:
    """True when the OS keyring holds a key for provider `name`; any keyring failure is False."""
    try:
        import keyring

        return bool(keyring.get_password(KEYRING_SERVICE, name))
    except Exception:  # noqa: BLE001 - no backend, locked, D-Bus down: all mean "no key here"
        return False


def probe_ollama() -> bool:
    """True when an Ollama server answers on localhost within 0.3 s."""
    try:
        import httpx

        return httpx.get(OLLAMA_TAGS_URL, timeout=0.3).status_code == 200
    except Exception:  # noqa: BLE001 - refused, timeout, anything: Ollama is not usable
        return False


def local_model_available() -> bool:
    """True when the optional `[local]` extra (llama-cpp-python + the bundled model) is installed.
    The check lives with the provider; it finds packages without importing them."""
    try:
        from ..providers.local import local_available
    except ImportError:
        return False
    return local_available()
