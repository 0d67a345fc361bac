"""The config's cross-referencing sections (SPEC §2.3–§2.4, §6, §8, §15): routes and rules naming
targets, the budget naming providers, the A/B pair, alerts and shared state. `load` builds the
providers first and hands them here, so every name is checked against what exists.
"""

from __future__ import annotations

import re
from types import MappingProxyType
from typing import Any, Mapping

from ..types import Target
from .model import (
    STRATEGIES, TIERS, WEEKDAYS, ABTestConfig, AlertsConfig, BudgetConfig, Limits, ProviderConfig,
    Rule, RuleThen, RuleWhen, StateConfig,
)
from .validate import BAD, Field, Reader, line_of, show, suggest

WHEN_FIELDS = {
    "min_tokens": Field("int", lo=0), "max_tokens": Field("int", lo=0), "regex": Field("str"),
    "has_code": Field("bool"), "tag": Field("str"), "hours": Field("str"),
    "budget_used_over": Field("num", lo=0, hi=1),
}
THEN_FIELDS = {"route": Field("str"), "strategy": Field("str", choices=STRATEGIES),
               "tier": Field("str", choices=TIERS), "model": Field("str")}
LIMIT_FIELDS = {
    "daily": Field("num", nullable=True, lo=0), "weekly": Field("num", nullable=True, lo=0),
    "monthly": Field("num", nullable=True, lo=0), "tokens_daily": Field("int", nullable=True, lo=0),
    "tokens_weekly": Field("int", nullable=True, lo=0), "tokens_monthly": Field("int", nullable=True, lo=0),
}
ALERTS_FIELDS = {"command": Field("str", nullable=True), "webhook": Field("str", nullable=True)}
STATE_FIELDS = {"backend": Field("str", choices=("local", "redis")), "url": Field("str", nullable=True),
                "url_env": Field("str", nullable=True), "namespace": Field("str")}
_HOURS = re.compile(r"^\s*(\d{1,2})\s*-\s*(\d{1,2})\s*$")
_FULL_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def resolve(r: Reader, text: str, node: Any, where: str, providers: Mapping[str, ProviderConfig]) -> Target | None:
    """A `provider/model` or bare provider target; unknown ones are problems (None)."""
    name, slash, model = text.partition("/")
    provider = providers.get(name)
    if provider is None:
        known = ", ".join(providers) or "(none defined)"
        r.problem(node, f"{where}: unknown provider {show(name)}{suggest(name, providers)}; providers: {known}")
        return None
    if not slash:
        if provider.first_model is None:
            r.problem(node, f"{where}: provider '{name}' has no models; add one under providers.{name}.models")
            return None
        return Target(name, provider.first_model)
    if model not in provider.models:
        known = ", ".join(provider.models) or "(none)"
        r.problem(node, f"{where}: unknown model {show(model)} for provider '{name}'"
                        f"{suggest(model, provider.models)}; models: {known}")
        return None
    return Target(name, model)


def build_routes(r: Reader, node: Any, providers: Mapping[str, ProviderConfig]) -> dict[str, tuple[Target, ...]]:
    items = r.mapping_items(node, "routes") or {}
    out: dict[str, tuple[Target, ...]] = {}
    for name, (key_node, value_node) in items.items():
        where = f"routes.{name}"
        entries = r.strings(value_node, where)
        if entries is None:
            continue
        if r.is_null(value_node) or (r.is_sequence(value_node) and not value_node.value):
            r.problem(key_node, f"{where}: route has no targets")
        targets = [resolve(r, text, item, where, providers) for text, item in entries]
        out[name] = tuple(t for t in targets if t is not None)
    return out


def build_rules(r: Reader, node: Any, providers: Mapping[str, ProviderConfig],
           routes: Mapping[str, Any]) -> tuple[Rule, ...]:
    out: list[Rule] = []
    for index, item in enumerate(r.sequence(node, "rules") or []):
        where = f"rules[{index}]"
        entries = r.mapping(item, where, ("when", "then"))
        if entries is None:
            continue
        when = _when(r, entries.get("when"), f"{where}.when")
        then = _then(r, entries.get("then"), f"{where}.then", providers, routes)
        if then == RuleThen():
            r.problem(entries.get("then", item), f"{where}.then must set at least one of {', '.join(THEN_FIELDS)}")
        out.append(Rule(when=when, then=then, index=index, line=line_of(item)))
    return tuple(out)


def _when(r: Reader, node: Any, where: str) -> RuleWhen:
    entries = r.mapping(node, where, [*WHEN_FIELDS, "weekdays"]) or {}
    values = r.fields(entries, where, WHEN_FIELDS)
    if "regex" in values:
        try:
            re.compile(values["regex"])
        except re.error as exc:
            r.problem(entries["regex"], f"{where}.regex is not a valid regular expression: {exc}")
    if "hours" in values:
        match = _HOURS.match(values["hours"])
        if not match or int(match[1]) > 23 or int(match[2]) > 23:
            r.problem(entries["hours"], f'{where}.hours must look like "9-17" (hours 0-23), got {show(values["hours"])}')
    if "weekdays" in entries:
        days = _weekdays(r, entries["weekdays"], f"{where}.weekdays")
        if days is not None:
            values["weekdays"] = days
    return RuleWhen(**values)


def _weekdays(r: Reader, node: Any, where: str) -> tuple[str, ...] | None:
    items = r.strings(node, where)
    if items is None:
        return None
    days = []
    for text, item in items:
        day = text.strip().lower()
        day = WEEKDAYS[_FULL_DAYS.index(day)] if day in _FULL_DAYS else day
        if day not in WEEKDAYS:
            r.problem(item, f"{where}: unknown weekday {show(text)}; valid: {', '.join(WEEKDAYS)}")
        else:
            days.append(day)
    return tuple(days)


def _then(r: Reader, node: Any, where: str, providers: Mapping[str, ProviderConfig],
          routes: Mapping[str, Any]) -> RuleThen:
    entries = r.mapping(node, where, THEN_FIELDS) or {}
    values = r.fields(entries, where, THEN_FIELDS)
    route = values.get("route")
    if route is not None and route not in routes:
        r.problem(entries["route"], f"{where}.route: unknown route {show(route)}{suggest(route, routes)}; "
                                    f"routes: {', '.join(routes) or '(none defined)'}")
    model = values.get("model")
    if model is not None and model not in routes:
        resolve(r, model, entries["model"], f"{where}.model", providers)
    return RuleThen(**values)


def _limits(r: Reader, entries: Mapping[str, Any], where: str) -> Limits:
    return Limits(**r.fields(entries, where, LIMIT_FIELDS))


def build_budget(r: Reader, node: Any, providers: Mapping[str, ProviderConfig]) -> BudgetConfig:
    allowed = [*LIMIT_FIELDS, "per_provider", "on_exhaust", "alert_at", "timezone"]
    entries = r.mapping(node, "budget", allowed) or {}
    values: dict[str, Any] = r.fields(entries, "budget", {
        "on_exhaust": Field("str", choices=("free", "block")), "timezone": Field("str")})
    if "timezone" in values and not _valid_timezone(values["timezone"]):
        r.problem(entries["timezone"], f"budget.timezone must be 'local' or a time zone name like "
                                       f"'Europe/Paris', got {show(values['timezone'])}")
    per_provider: dict[str, Limits] = {}
    for name, (key_node, value_node) in (r.mapping_items(entries.get("per_provider"), "budget.per_provider") or {}).items():
        where = f"budget.per_provider.{name}"
        if name not in providers:
            r.problem(key_node, f"{where}: unknown provider {show(name)}{suggest(name, providers)}; "
                                f"providers: {', '.join(providers) or '(none defined)'}")
        per_provider[name] = _limits(r, r.mapping(value_node, where, LIMIT_FIELDS) or {}, where)
    if "alert_at" in entries:
        alert_at = _alert_at(r, entries["alert_at"])
        if alert_at is not None:
            values["alert_at"] = alert_at
    return BudgetConfig(limits=_limits(r, entries, "budget"), per_provider=MappingProxyType(per_provider), **values)


def _alert_at(r: Reader, node: Any) -> tuple[float, ...] | None:
    items = r.sequence(node, "budget.alert_at")
    if items is None:
        return None
    spec = Field("num", lo=0, hi=1, lo_open=True)
    values = [r.read(item, f"budget.alert_at[{i}]", spec) for i, item in enumerate(items)]
    return tuple(sorted(v for v in values if v is not BAD))


def _valid_timezone(name: str) -> bool:
    if name == "local":
        return True
    import zoneinfo

    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


def build_abtest(r: Reader, node: Any, providers: Mapping[str, ProviderConfig]) -> ABTestConfig:
    entries = r.mapping(node, "abtest", ("sample_rate", "min_tokens", "targets", "judge")) or {}
    values: dict[str, Any] = r.fields(entries, "abtest", {
        "sample_rate": Field("num", lo=0, hi=1), "min_tokens": Field("int", lo=0),
        "judge": Field("str", nullable=True)})
    items = (r.strings(entries["targets"], "abtest.targets") or []) if "targets" in entries else []
    if len(items) not in (0, 2):
        r.problem(entries["targets"], f"abtest.targets must name exactly 2 targets (or none), got {len(items)}")
    resolved = [resolve(r, text, item, "abtest.targets", providers) for text, item in items]
    targets = tuple(t for t in resolved if t is not None)
    if values.get("sample_rate", 0.0) > 0 and not items:
        r.problem(entries["sample_rate"], "abtest.sample_rate is above 0 but abtest.targets names no targets")
    if values.get("judge") is not None:
        values["judge"] = resolve(r, values["judge"], entries["judge"], "abtest.judge", providers)
    return ABTestConfig(targets=targets, **values)


def build_alerts(r: Reader, node: Any) -> AlertsConfig:
    entries = r.mapping(node, "alerts", ALERTS_FIELDS) or {}
    values = r.fields(entries, "alerts", ALERTS_FIELDS)
    webhook = values.get("webhook")
    if webhook is not None and not webhook.startswith(("http://", "https://")):
        r.problem(entries["webhook"], "alerts.webhook must be an http:// or https:// URL")
    return AlertsConfig(**values)


def build_state(r: Reader, node: Any) -> StateConfig:
    """`state:` (SPEC §15). A URL with a password is a secret in the file: refused like a literal
    key, pointing at `url_env` or the keyring."""
    entries = r.mapping(node, "state", STATE_FIELDS) or {}
    values = r.fields(entries, "state", STATE_FIELDS)
    url = values.get("url")
    if url is not None:
        from urllib.parse import urlsplit

        try:
            parts = urlsplit(url)
            password = parts.password
        except ValueError:
            parts, password = None, None
        if parts is None or parts.scheme not in ("redis", "rediss", "unix"):
            r.problem(entries["url"], f"state.url must be a redis://, rediss:// or unix:// URL, got {show(url)}")
        elif password:
            r.problem(entries["url"], "state.url holds a password, and secrets are not allowed in the config; "
                                      "put the URL in the variable named by state.url_env, or store it with "
                                      "`llmroute keys set redis_url`")
    namespace = values.get("namespace")
    if namespace is not None and not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", namespace):
        r.problem(entries["namespace"], f"state.namespace must be 1-64 letters, digits, '.', '_' or '-', "
                                        f"got {show(namespace)}")
        values.pop("namespace")
    if values.get("backend") == "redis" and not url and not values.get("url_env"):
        values.setdefault("url_env", "LLMROUTE_REDIS_URL")
    return StateConfig(**values)
