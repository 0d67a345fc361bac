"""YAML config file -> validated, frozen `Config` (SPEC §2, §2.5).

`load_config` reads the whole file, checks every section and cross-reference (routes naming
providers and models, rules naming routes, budgets naming providers) and raises one
`ConfigError` holding every problem as `path:line: message`, so a user fixes them all in one go.
Paid models without a known price are warnings, not errors (SPEC §2.2). The typed reads and
problem bookkeeping live in `validate`; this module knows the schema.
"""

from __future__ import annotations

import re
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

from ..errors import ConfigError
from .model import (
    MODEL_MODES, PROVIDER_TYPES, STRATEGIES, TIERS, AutoConfig, CacheConfig, Config,
    ConversationsConfig, Defaults, LedgerConfig, ModelConfig, ProviderConfig, ServeConfig,
)
from .sections import build_abtest, build_alerts, build_budget, build_routes, build_rules, build_state
from .validate import BAD, Field, Reader, line_of, show, suggest

TOP_KEYS = ("version", "defaults", "providers", "routes", "rules", "budget", "abtest", "cache",
            "alerts", "ledger", "serve", "conversations", "state", "auto")
AUTO_FIELDS = {"quality_margin": Field("num", lo=0, hi=1)}
CONVERSATIONS_FIELDS = {"keep": Field("int", lo=0)}
SERVE_FIELDS = {"token_env": Field("str", nullable=True)}
DEFAULTS_FIELDS = {
    "route": Field("str"), "strategy": Field("str", choices=STRATEGIES),
    "auto_threshold": Field("num", lo=0, hi=1), "timeout": Field("num", lo=0, lo_open=True),
    "max_attempts": Field("int", lo=1), "retries": Field("int", lo=0),
    "max_tokens": Field("int", lo=1), "temperature": Field("num", nullable=True, lo=0, hi=2),
}
PROVIDER_FIELDS = {
    "type": Field("str", choices=PROVIDER_TYPES), "preset": Field("str", nullable=True),
    "base_url": Field("str", nullable=True), "allow_insecure": Field("bool"),
    "key_env": Field("str", nullable=True), "key_cmd": Field("str", nullable=True),
    "priority": Field("int"), "weight": Field("num", lo=0), "free": Field("bool"),
    "rpm": Field("int", nullable=True, lo=1), "tpm": Field("int", nullable=True, lo=1),
    "timeout": Field("num", nullable=True, lo=0, lo_open=True), "enabled": Field("bool"),
}
OPTION_FIELDS: dict[str, dict[str, Field]] = {
    "mock": {"latency_ms": Field("num", lo=0), "fail_rate": Field("num", lo=0, hi=1),
             "reply": Field("str"), "seed": Field("int")},
    "local": {"model_path": Field("str", nullable=True), "n_ctx": Field("int", lo=1), "threads": Field("int", lo=1)},
}
MODEL_FIELDS = {
    "input": Field("num", nullable=True, lo=0), "output": Field("num", nullable=True, lo=0),
    "context": Field("int", nullable=True, lo=1), "max_output": Field("int", nullable=True, lo=1),
    "tier": Field("str", nullable=True, choices=TIERS), "quality": Field("num", nullable=True, lo=0, hi=10),
    "mode": Field("str", choices=MODEL_MODES), "per_minute": Field("num", nullable=True, lo=0),
    "cached_input": Field("num", nullable=True, lo=0), "cache_write": Field("num", nullable=True, lo=0),
    "tier_tokens": Field("int", nullable=True, lo=1),
    "input_above": Field("num", nullable=True, lo=0), "output_above": Field("num", nullable=True, lo=0),
    "images": Field("bool", nullable=True),  # takes image input (-a); null: the built-in table decides
}
CACHE_FIELDS = {"enabled": Field("bool"), "ttl": Field("num", lo=0)}
LEDGER_FIELDS = {"path": Field("str", nullable=True), "log_prompts": Field("bool"), "required": Field("bool")}
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def load_config(path: Path) -> Config:
    """Read and validate a config file. Raises `ConfigError` listing every problem."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError([f"config file not found: {path}"]) from None
    except IsADirectoryError:
        raise ConfigError([f"{path}: is a directory, not a config file"]) from None
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read config file: {exc.strerror or exc}"]) from None
    return load_config_bytes(data, path)


def load_config_bytes(data: bytes, path: Path) -> Config:
    """Validate config bytes already read from `path` (a trusted project config is parsed from
    exactly the bytes its trust was checked against)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError([f"{path}:1: config file is not valid UTF-8"]) from None
    return parse_config(text, path)


def parse_config(text: str, source: Path | None = None) -> Config:
    """Validate config text; `source` names the file in messages and in `Config.source`."""
    import yaml

    display = str(source) if source is not None else "<config>"
    try:
        # libyaml's composer when PyYAML was built with it: same node tree and marks, in C.
        root = yaml.compose(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        raise ConfigError([f"{display}:{line}: invalid YAML: {exc.problem or exc.context}"]) from None
    except yaml.YAMLError as exc:
        raise ConfigError([f"{display}:1: invalid YAML: {exc}"]) from None
    reader = Reader(display)
    reader.scan_secrets(root)
    config = _build(reader, root, source)
    if reader.problems:
        raise ConfigError(reader.problems, hint="fix these and run `llmroute config check`")
    return config


def _build(r: Reader, root: Any, source: Path | None) -> Config:
    top = r.mapping(root, "config", TOP_KEYS)
    if top is None:
        return Config(source=source)
    if "version" in top:
        version = r.read(top["version"], "version", Field("int"))
        if version is not BAD and version != 1:
            r.problem(top["version"], f"version must be 1, got {show(version)}")
    defaults = _defaults(r, top.get("defaults"))
    providers = _providers(r, top.get("providers"))
    routes = build_routes(r, top.get("routes"), providers)
    if "defaults" in top and routes:
        _check_default_route(r, top["defaults"], defaults, routes)
    _price_warnings(r, providers)
    return Config(
        version=1, defaults=defaults, providers=MappingProxyType(providers),
        routes=MappingProxyType(routes), rules=build_rules(r, top.get("rules"), providers, routes),
        budget=build_budget(r, top.get("budget"), providers), abtest=build_abtest(r, top.get("abtest"), providers),
        cache=CacheConfig(**_section(r, top.get("cache"), "cache", CACHE_FIELDS)),
        alerts=build_alerts(r, top.get("alerts")),
        ledger=LedgerConfig(**_section(r, top.get("ledger"), "ledger", LEDGER_FIELDS)),
        serve=ServeConfig(**_section(r, top.get("serve"), "serve", SERVE_FIELDS)),
        conversations=ConversationsConfig(**_section(r, top.get("conversations"), "conversations",
                                                     CONVERSATIONS_FIELDS)),
        state=build_state(r, top.get("state")),
        auto=AutoConfig(**_section(r, top.get("auto"), "auto", AUTO_FIELDS)),
        source=source, warnings=tuple(r.warnings),
    )


def _section(r: Reader, node: Any, where: str, specs: Mapping[str, Field]) -> dict[str, Any]:
    """The valid values of a flat section whose keys are exactly `specs`."""
    return r.fields(r.mapping(node, where, specs) or {}, where, specs)


def _defaults(r: Reader, node: Any) -> Defaults:
    return Defaults(**_section(r, node, "defaults", DEFAULTS_FIELDS))


def _check_default_route(r: Reader, node: Any, defaults: Defaults, routes: Mapping[str, Any]) -> None:
    entries = r.mapping(node, "defaults", None) or {}
    if "route" in entries and defaults.route not in routes:
        r.problem(entries["route"], f"defaults.route: unknown route {show(defaults.route)}"
                                    f"{suggest(defaults.route, routes)}; routes: {', '.join(routes)}")


# -- providers and models ------------------------------------------------------------------

def _providers(r: Reader, node: Any) -> dict[str, ProviderConfig]:
    items = r.mapping_items(node, "providers") or {}
    out: dict[str, ProviderConfig] = {}
    for name, (key_node, value_node) in items.items():
        where = f"providers.{name}"
        if "/" in name or not name.strip():
            r.problem(key_node, f"{where}: a provider name must be non-empty and contain no '/'")
        out[name] = _provider(r, name, key_node, value_node)
    return out


def _provider(r: Reader, name: str, key_node: Any, node: Any) -> ProviderConfig:
    where = f"providers.{name}"
    ptype = _provider_type(r, name, key_node, node)
    options = OPTION_FIELDS.get(ptype, {}) if ptype in PROVIDER_TYPES else _all_options()
    elsewhere = {k: f"type {t}" for t, fields in OPTION_FIELDS.items() for k in fields if k not in options}
    allowed = [*PROVIDER_FIELDS, "headers", "models", *options]
    entries = r.mapping(node, where, allowed, refuse_secret_keys=True, elsewhere=elsewhere)
    if entries is None:
        return ProviderConfig(name=name, type=ptype, line=line_of(key_node))
    values = r.fields(entries, where, {k: f for k, f in PROVIDER_FIELDS.items() if k != "type"})
    _check_provider_values(r, where, ptype, entries, values)
    models = _models(r, entries.get("models"), f"{where}.models")
    return ProviderConfig(
        name=name, type=ptype, **values,
        headers=MappingProxyType(_headers(r, entries.get("headers"), f"{where}.headers")),
        models=MappingProxyType({n: _known_mode(m, name, ptype, values) for n, m in models.items()}),
        options=MappingProxyType(r.fields(entries, where, options)),
        line=line_of(key_node),
    )


def _known_mode(model: ModelConfig, name: str, ptype: str, values: Mapping[str, Any]) -> ModelConfig:
    """A model the built-in table knows as a transcription model (whisper-1, whisper-large-v3,
    gpt-4o-transcribe, ...) needs no `mode: transcription` (SPEC §11)."""
    if model.mode != "chat":
        return model
    from ..catalog.presets import PRESETS

    preset = values.get("preset") or (name if ptype == "openai" and name in PRESETS else None)
    entry = _lookup_price(ptype, model.name, values.get("base_url"), preset)
    if getattr(entry, "per_minute", None) is None:
        return model
    from dataclasses import replace

    return replace(model, mode="transcription")


def _all_options() -> dict[str, Field]:
    return {k: f for fields in OPTION_FIELDS.values() for k, f in fields.items()}


def _provider_type(r: Reader, name: str, key_node: Any, node: Any) -> str:
    """The `type` key; when absent, a provider named after a type or a preset implies it."""
    from ..catalog.presets import PRESETS

    entries = r.mapping(node, f"providers.{name}", None) if r.is_mapping(node) else {}
    if entries and "type" in entries:
        value = r.read(entries["type"], f"providers.{name}.type", PROVIDER_FIELDS["type"])
        return value if value is not BAD else "invalid"
    if name in PROVIDER_TYPES:
        return name
    if name in PRESETS:
        return "openai"
    r.problem(key_node, f"providers.{name}: missing type; valid: {', '.join(PROVIDER_TYPES)}")
    return "invalid"


def _check_provider_values(r: Reader, where: str, ptype: str, entries: Mapping[str, Any],
                           values: Mapping[str, Any]) -> None:
    from ..catalog.presets import PRESETS

    preset = values.get("preset")
    if preset is not None:
        if ptype != "openai":
            r.problem(entries["preset"], f"{where}.preset only applies to type openai")
        elif preset not in PRESETS:
            r.problem(entries["preset"], f"{where}.preset: unknown preset {show(preset)}"
                                         f"{suggest(preset, PRESETS)}; valid: {', '.join(PRESETS)}")
    base_url = values.get("base_url")
    if base_url is not None and not base_url.startswith(("http://", "https://")):
        r.problem(entries["base_url"], f"{where}.base_url must start with http:// or https://")
    key_env = values.get("key_env")
    if key_env is not None and not _ENV_NAME.match(key_env):
        r.problem(entries["key_env"], f"{where}.key_env must be an environment variable name "
                                      "(like OPENAI_API_KEY)")


def _headers(r: Reader, node: Any, where: str) -> dict[str, str]:
    entries = r.mapping(node, where) or {}
    out: dict[str, str] = {}
    for name, value_node in entries.items():
        value = r.scalar(value_node) if r.is_scalar(value_node) else BAD
        if value is BAD or value is None or isinstance(value, bool):
            r.problem(value_node, f"{where}.{name} must be a string")
            continue
        out[name] = str(value)
    return out


def _models(r: Reader, node: Any, where: str) -> dict[str, ModelConfig]:
    """`models:` as a mapping of name -> fields (`{}` or null allowed), or a list of names."""
    if r.is_sequence(node):
        names = r.strings(node, where) or []
        return {name: ModelConfig(name=name, line=line_of(item)) for name, item in names}
    items = r.mapping_items(node, where) or {}
    out: dict[str, ModelConfig] = {}
    for name, (key_node, value_node) in items.items():
        entries = r.mapping(value_node, f"{where}.{name}", MODEL_FIELDS, refuse_secret_keys=True) or {}
        fields = r.fields(entries, f"{where}.{name}", MODEL_FIELDS)
        if fields.get("tier_tokens") is None:
            for key in ("input_above", "output_above"):
                if fields.get(key) is not None:
                    r.problem(entries[key], f"{where}.{name}.{key} needs tier_tokens (the prompt size it applies above)")
        out[name] = ModelConfig(name=name, **fields, line=line_of(key_node))
    return out


def _price_warnings(r: Reader, providers: Mapping[str, ProviderConfig]) -> None:
    """Warn about paid models whose price is neither in the config nor in the built-in table.

    The rule is the planner's (`catalog.costs.price_known`): only `free: true`, the local
    types and the keyless local-server presets are free. A base URL on localhost is not (a
    LiteLLM proxy there forwards to paid APIs), so an unknown model behind one is warned about
    like any other paid model without a price."""
    from ..catalog.costs import price_known

    for provider in providers.values():
        for model in provider.models.values():
            if not price_known(provider, model):
                field = "per_minute" if model.mode == "transcription" else "input/output (USD per 1M tokens)"
                r.warn(model.line, f"no price known for {provider.name}/{model.name}; set {field} "
                                   "or it is skipped under a dollar budget")


def _lookup_price(provider_type: str, model: str, base_url: str | None, preset: str | None) -> object | None:
    """The built-in price entry, or None (also when the price table is not available)."""
    try:
        from ..catalog.builtin import lookup_price
    except ImportError:
        return None
    return lookup_price(provider_type, model, base_url, preset=preset)


# -- routes, rules, budget, abtest, alerts ---------------------------------------------------
