"""The planner: option resolution, rules, every filter, strategies wired to config and memory."""

from __future__ import annotations

import random
from datetime import datetime, timezone
from types import MappingProxyType

import pytest

from llmroute.config.model import (
    BudgetConfig, Config, Defaults, Limits, ModelConfig, ProviderConfig, Rule, RuleThen, RuleWhen,
)
from llmroute.errors import ErrorClass, UsageError
from llmroute.catalog.costs import Price, cost_usd, model_context, price_for, worst_case_cost
from llmroute.routing.memory import MemorySnapshot, RateView, RoutingMemory
from llmroute.routing.planner import PlanInputs
from llmroute.routing.planner import key_variable, make_plan
from llmroute.types import Message, RateLimitInfo, Request, Target

NOW = datetime(2026, 3, 4, 12, 0, 0, tzinfo=timezone.utc)
TS = NOW.timestamp()


def provider(name, type_="openai", models=(), **kw) -> ProviderConfig:
    return ProviderConfig(name, type_, models=MappingProxyType({m.name: m for m in models}), **kw)


def config(routes=None, rules=(), budget=BudgetConfig(), strategy="priority", **providers_kw) -> Config:
    providers = {
        "openai": provider("openai", models=[ModelConfig("gpt-4o-mini"), ModelConfig("gpt-4o", tier="large", quality=8)],
                           priority=60),
        "anthropic": provider("anthropic", "anthropic", models=[ModelConfig("claude-haiku-4-5", tier="small")],
                              priority=70),
        "ollama": provider("ollama", "ollama", models=[ModelConfig("llama3.2", context=8192)], priority=10),
        "whisper": provider("whisper", models=[ModelConfig("whisper-1", mode="transcription", per_minute=0.006)]),
    }
    providers.update(providers_kw)
    if routes is None:
        routes = {"default": (Target("openai", "gpt-4o-mini"), Target("anthropic", "claude-haiku-4-5"),
                              Target("ollama", "llama3.2")),
                  "strong": (Target("anthropic", "claude-haiku-4-5"), Target("openai", "gpt-4o"))}
    return Config(defaults=Defaults(strategy=strategy), providers=MappingProxyType(providers),
                  routes=MappingProxyType(routes), rules=tuple(rules), budget=budget)


def request(text="hello there", max_tokens=1024) -> Request:
    return Request((Message("user", text),), max_tokens=max_tokens)


def plan(cfg=None, text="hello there", memory=None, **kw):
    inputs = PlanInputs(config=cfg or config(), request=request(text, kw.pop("max_tokens", 1024)), now=NOW, **kw)
    return make_plan(inputs, memory)


def ids(p) -> list[str]:
    return [c.target.id for c in p.candidates]


def excluded(p) -> dict[str, str]:
    return {e.target.id: e.reason for e in p.excluded}


# --- pricing ------------------------------------------------------------------------------

def test_price_precedence_config_then_builtin_then_free():
    cfg = config(custom=provider("custom", models=[ModelConfig("x", input=1.0, output=2.0), ModelConfig("y")]))
    assert price_for(cfg, Target("custom", "x")) == Price(1.0, 2.0, "config")
    assert price_for(cfg, Target("custom", "y")) is None  # paid and unknown
    builtin = price_for(cfg, Target("openai", "gpt-4o-mini"))
    assert builtin.source.startswith("builtin:") and builtin.input == pytest.approx(0.15)
    assert price_for(cfg, Target("ollama", "llama3.2")) == Price(0.0, 0.0, "free")
    assert price_for(cfg, Target("nope", "x")) is None


def test_partial_config_price_overrides_one_side_of_the_table():
    cfg = config(openai=provider("openai", models=[ModelConfig("gpt-4o-mini", output=9.0)]))
    price = price_for(cfg, Target("openai", "gpt-4o-mini"))
    assert (price.input, price.output) == (pytest.approx(0.15), 9.0)


def test_free_flag_and_local_presets_are_free():
    cfg = config(mine=provider("mine", models=[ModelConfig("z")], free=True),
                 vllm=provider("vllm", models=[ModelConfig("q")], preset="vllm"))
    assert price_for(cfg, Target("mine", "z")).source == "free"
    assert price_for(cfg, Target("vllm", "q")).is_free


def test_cost_helpers_and_context():
    price = Price(2.0, 10.0, "config")
    assert cost_usd(price, 1000, 500) == pytest.approx(0.007)
    assert worst_case_cost(price, 1000, 1024) == pytest.approx((2000 + 10240) / 1e6)
    cfg = config()
    assert model_context(cfg, Target("ollama", "llama3.2")) == 8192
    assert model_context(cfg, Target("openai", "gpt-4o")) == 128000
    assert model_context(cfg, Target("nope", "x")) is None


# --- candidate lists ----------------------------------------------------------------------

def test_default_route_with_priority_strategy():
    p = plan()
    assert p.route == "default" and p.strategy == "priority"
    assert ids(p) == ["anthropic/claude-haiku-4-5", "openai/gpt-4o-mini", "ollama/llama3.2"]
    assert p.candidates[0].reason == "priority 70"
    assert p.estimated_input_tokens > 0
    assert p.difficulty is None  # only `auto` (or --explain) needs the difficulty score


def test_difficulty_is_scored_for_auto_and_for_explain():
    assert plan(strategy_option="auto").difficulty is not None
    assert plan(explain=True).difficulty is not None


def test_worst_case_cost_and_context_on_candidates():
    p = plan(max_tokens=1000)
    mini = next(c for c in p.candidates if c.target.id == "openai/gpt-4o-mini")
    assert mini.est_cost_usd == pytest.approx((p.estimated_input_tokens * 0.15 + 1000 * 0.60) / 1e6)
    assert mini.context == 128000 and not mini.free
    assert next(c for c in p.candidates if c.target.provider == "ollama").free


def test_m_target_pins_first_with_its_route_as_fallbacks():
    p = plan(model_option="ollama/llama3.2")
    assert ids(p) == ["ollama/llama3.2", "anthropic/claude-haiku-4-5", "openai/gpt-4o-mini"]
    assert p.candidates[0].reason == "pinned by -m" and p.route == "default"


def test_m_target_outside_default_route_uses_the_route_containing_it():
    p = plan(model_option="openai/gpt-4o")
    assert p.route == "strong" and ids(p) == ["openai/gpt-4o", "anthropic/claude-haiku-4-5"]


def test_m_bare_provider_means_its_first_model():
    assert ids(plan(model_option="openai"))[0] == "openai/gpt-4o-mini"


def test_m_route_name_and_r_route():
    assert plan(model_option="strong").route == "strong"
    p = plan(route_option="strong")
    assert p.route == "strong" and set(ids(p)) == {"anthropic/claude-haiku-4-5", "openai/gpt-4o"}


def test_m_target_with_r_takes_fallbacks_from_that_route():
    p = plan(model_option="ollama/llama3.2", route_option="strong")
    assert ids(p)[0] == "ollama/llama3.2" and len(ids(p)) == 3


def test_no_fallback_keeps_only_the_first():
    p = plan(model_option="ollama/llama3.2", no_fallback=True)
    assert ids(p) == ["ollama/llama3.2"]
    assert any("--no-fallback" in n for n in p.notes)


def test_no_fallback_never_replaces_a_pinned_target_that_a_filter_removed():
    p = plan(model_option="openai/gpt-4o-mini", no_fallback=True, has_key=lambda prov: prov.name != "openai")
    assert ids(p) == []
    assert excluded(p)["openai/gpt-4o-mini"].startswith("no key")
    assert ids(plan(model_option="openai/gpt-4o-mini", has_key=lambda prov: prov.name != "openai")) \
        == ["anthropic/claude-haiku-4-5", "ollama/llama3.2"]  # without --no-fallback its route still applies


def test_no_routes_means_every_chat_target_in_file_order():
    p = plan(config(routes={}), strategy_option="cost")
    assert p.route is None
    assert set(ids(p)) == {"openai/gpt-4o-mini", "openai/gpt-4o", "anthropic/claude-haiku-4-5", "ollama/llama3.2"}
    assert ids(p)[0] == "ollama/llama3.2"  # free first under cost


def test_missing_default_route_falls_back_to_every_target_with_a_note():
    cfg = config(routes={"strong": (Target("openai", "gpt-4o"),)})
    p = plan(cfg)
    assert p.route is None and len(p.candidates) == 4
    assert any("not defined" in n for n in p.notes)


def test_transcription_mode_selects_transcription_models():
    p = plan(config(routes={}), extra={"mode": "transcription"})
    assert ids(p) == ["whisper/whisper-1"]
    p = plan(model_option="whisper/whisper-1")
    assert excluded(p)["whisper/whisper-1"] == "transcription model (not chat)"


@pytest.mark.parametrize("kw,needle", [
    ({"model_option": "foo"}, "unknown target or route 'foo'; targets: openai/gpt-4o-mini"),
    ({"model_option": "openai/gpt-5"}, "routes: default, strong"),
    ({"route_option": "nope"}, "unknown route 'nope'; routes: default, strong"),
    ({"strategy_option": "fastest"}, "unknown strategy 'fastest'; strategies: priority, cost"),
])
def test_unknown_names_are_usage_errors_listing_what_exists(kw, needle):
    with pytest.raises(UsageError) as info:
        plan(**kw)
    assert needle in info.value.message
    assert info.value.exit_code == 2


def test_strategy_option_overrides_default():
    p = plan(strategy_option="cost")
    assert p.strategy == "cost" and ids(p)[0] == "ollama/llama3.2"


# --- filters ------------------------------------------------------------------------------

def test_disabled_provider_is_excluded():
    cfg = config(anthropic=provider("anthropic", "anthropic", models=[ModelConfig("claude-haiku-4-5")], enabled=False))
    assert excluded(plan(cfg))["anthropic/claude-haiku-4-5"] == "disabled"


def test_no_key_names_the_variable_and_the_command():
    p = plan(has_key=lambda prov: prov.name != "openai")
    assert excluded(p)["openai/gpt-4o-mini"] == "no key (set OPENAI_API_KEY or run `llmroute keys set openai`)"
    assert "openai/gpt-4o-mini" not in ids(p)


def test_key_over_plain_http_to_a_public_host_is_excluded_with_the_fix():
    gateway = provider("gateway", models=[ModelConfig("gpt-4o-mini")], base_url="http://gw.example.com/v1",
                       key_env="GW_KEY", priority=99)
    cfg = config(routes={"default": (Target("gateway", "gpt-4o-mini"), Target("openai", "gpt-4o-mini"))},
                 gateway=gateway)
    p = plan(cfg)
    assert excluded(p)["gateway/gpt-4o-mini"] == (
        "key not sent over plain HTTP to public host gw.example.com; use https, "
        "or set allow_insecure: true for provider gateway")
    assert ids(p) == ["openai/gpt-4o-mini"]


def test_pinned_insecure_target_is_not_replaced():
    gateway = provider("gateway", models=[ModelConfig("m")], base_url="http://93.184.215.14:8080/v1", key_env="GW_KEY")
    p = plan(config(gateway=gateway), model_option="gateway/m", no_fallback=True)
    assert ids(p) == [] and "plain HTTP to public host 93.184.215.14" in excluded(p)["gateway/m"]


@pytest.mark.parametrize(
    "fields",
    [
        {"base_url": "http://gw.example.com/v1", "key_env": "GW_KEY", "allow_insecure": True},
        {"base_url": "https://gw.example.com/v1", "key_env": "GW_KEY"},
        {"base_url": "http://10.1.2.3:8000/v1", "key_env": "GW_KEY"},
        {"base_url": "http://localhost:4000/v1", "key_env": "GW_KEY"},
        {"preset": "vllm"},
    ],
)
def test_keys_over_https_private_hosts_or_allowed_insecure_are_planned(fields):
    gateway = provider("gateway", models=[ModelConfig("m")], **fields)
    p = plan(config(gateway=gateway), model_option="gateway/m", no_fallback=True)
    assert ids(p) == ["gateway/m"]


def test_keyless_provider_on_a_public_http_host_is_planned_unless_it_names_a_key():
    bare = provider("box", "ollama", models=[ModelConfig("llama3.2")], base_url="http://ollama.example.com")
    assert ids(plan(config(box=bare), model_option="box/llama3.2", no_fallback=True)) == ["box/llama3.2"]
    keyed = provider("box", "ollama", models=[ModelConfig("llama3.2")], base_url="http://ollama.example.com",
                     key_env="OLLAMA_KEY")
    p = plan(config(box=keyed), model_option="box/llama3.2", no_fallback=True)
    assert "plain HTTP to public host ollama.example.com" in excluded(p)["box/llama3.2"]


def test_key_variable_from_config_preset_or_name():
    assert key_variable(provider("groq")) == "GROQ_API_KEY"
    assert key_variable(provider("x", preset="mistral")) == "MISTRAL_API_KEY"
    assert key_variable(provider("my-llm", key_env="K")) == "K"
    assert key_variable(provider("my-llm")) == "MY_LLM_API_KEY"


def test_context_window_too_small():
    p = plan(text="word " * 9000)
    reason = excluded(p)["ollama/llama3.2"]
    assert reason.startswith("prompt ~") and reason.endswith("exceeds context 8192")


@pytest.mark.parametrize(
    "fields",
    [{"base_url": "http://localhost:4000/v1"}, {"base_url": "http://127.0.0.1:8080/v1"}, {"preset": "vllm"},
     {"base_url": "https://gateway.example.com/v1"}],
)
def test_known_model_behind_a_custom_base_url_keeps_its_context(fields):
    gateway = provider("gateway", models=[ModelConfig("gpt-4o-mini"), ModelConfig("openai/gpt-4o")], **fields)
    cfg = config(routes={"default": (Target("gateway", "gpt-4o-mini"), Target("gateway", "openai/gpt-4o"))},
                 gateway=gateway)
    assert model_context(cfg, Target("gateway", "gpt-4o-mini")) == 128000
    assert model_context(cfg, Target("gateway", "openai/gpt-4o")) == 128000  # a LiteLLM-style id
    p = plan(cfg, text="word " * 140000)
    assert excluded(p)["gateway/gpt-4o-mini"].endswith("exceeds context 128000") and ids(p) == []


def test_context_lookup_leaves_prices_and_local_formats_as_they_were():
    cfg = config(gateway=provider("gateway", models=[ModelConfig("gpt-4o-mini")], preset="vllm"),
                 box=provider("box", "ollama", models=[ModelConfig("gpt-4o-mini")]))
    assert price_for(cfg, Target("gateway", "gpt-4o-mini")) == Price(0.0, 0.0, "free")  # a local server is free
    assert model_context(cfg, Target("gateway", "gpt-4o-mini")) == 128000
    assert model_context(cfg, Target("box", "gpt-4o-mini")) is None  # Ollama names its own models
    configured = config(gateway=provider("gateway", models=[ModelConfig("gpt-4o-mini", context=4096)],
                                         base_url="http://localhost:4000/v1"))
    assert model_context(configured, Target("gateway", "gpt-4o-mini")) == 4096  # config still wins


def test_max_cost_filters_worst_case():
    p = plan(max_cost_usd=0.0001, max_tokens=1000)
    reason = excluded(p)["openai/gpt-4o-mini"]
    assert reason.startswith("worst case $0.0006") and reason.endswith("exceeds --max-cost $0.0001")
    assert "ollama/llama3.2" in ids(p)


def test_unknown_price_excluded_under_dollar_budget_only():
    routes = {"default": (Target("custom", "y"), Target("ollama", "llama3.2"))}
    custom = provider("custom", models=[ModelConfig("y")])
    assert "custom/y" in ids(plan(config(routes=routes, custom=custom)))
    budget = BudgetConfig(limits=Limits(daily=5.0))
    p = plan(config(routes=routes, budget=budget, custom=custom))
    assert excluded(p)["custom/y"] == "no price known"
    p = plan(config(routes=routes, custom=custom), max_cost_usd=1.0)
    assert excluded(p)["custom/y"].startswith("no price known")


@pytest.mark.parametrize("base_url", ["http://localhost:4000/v1", "http://127.0.0.1:4000/v1"])
def test_a_local_gateway_is_priced_by_model_name_not_free(base_url):
    gateway = provider("gateway", models=[ModelConfig("gpt-4o-mini"), ModelConfig("mystery-7b")], base_url=base_url)
    routes = {"default": (Target("gateway", "gpt-4o-mini"), Target("gateway", "mystery-7b"),
                          Target("ollama", "llama3.2"))}
    cfg = config(routes=routes, gateway=gateway)
    price = price_for(cfg, Target("gateway", "gpt-4o-mini"))
    assert (price.input, price.output) == (pytest.approx(0.15), pytest.approx(0.60))
    assert price.source.startswith("builtin:")
    p = plan(cfg, max_tokens=1000)
    first = p.candidates[0]
    assert first.target.id == "gateway/gpt-4o-mini" and not first.free and first.est_cost_usd > 0
    assert price_for(cfg, Target("gateway", "mystery-7b")) is None
    budgeted = plan(config(routes=routes, budget=BudgetConfig(limits=Limits(daily=5.0)), gateway=gateway))
    assert excluded(budgeted) == {"gateway/mystery-7b": "no price known"}


def test_a_provider_named_after_a_local_server_preset_is_free():
    cfg = config(vllm=provider("vllm", models=[ModelConfig("gpt-4o-mini")], base_url="http://127.0.0.1:8000/v1"))
    assert price_for(cfg, Target("vllm", "gpt-4o-mini")) == Price(0.0, 0.0, "free")


def test_budget_filter_gets_worst_case_and_its_reason_is_reported():
    seen = []

    def budget_filter(target, prov, worst_usd, worst_tokens):
        seen.append((target.id, worst_usd, worst_tokens))
        return "budget: daily $5.00 reached" if target.provider == "anthropic" else None

    p = plan(budget_filter=budget_filter, max_tokens=100)
    assert excluded(p)["anthropic/claude-haiku-4-5"] == "budget: daily $5.00 reached"
    ollama = next(s for s in seen if s[0] == "ollama/llama3.2")
    assert ollama[1] == 0.0 and ollama[2] == p.estimated_input_tokens + 100


def snapshot(**kw) -> MemorySnapshot:
    return MemorySnapshot(now=TS, **{k: MappingProxyType(v) for k, v in kw.items()})


def test_open_circuit_is_excluded_with_its_time(tmp_path):
    memory = RoutingMemory(tmp_path, clock=lambda: TS)
    for _ in range(3):
        memory.record_failure(Target("anthropic", "claude-haiku-4-5"), ErrorClass.TIMEOUT, None, None, 20)
    p = plan(memory=memory)  # a RoutingMemory is snapshotted by the planner
    assert excluded(p)["anthropic/claude-haiku-4-5"] == "circuit open until 12:00:30"


def test_half_open_is_a_candidate_until_another_process_takes_the_trial(tmp_path):
    clock = [TS - 31]
    memory = RoutingMemory(tmp_path, clock=lambda: clock[0])
    target = Target("anthropic", "claude-haiku-4-5")
    for _ in range(3):
        memory.record_failure(target, ErrorClass.TIMEOUT, None, None, 20)
    clock[0] = TS
    p = plan(memory=memory.snapshot())
    assert p.candidates[0].target == target and "half-open" in p.candidates[0].reason
    assert memory.claim_trial(target)
    assert "another process" in excluded(plan(memory=memory.snapshot()))[target.id]


def test_429_retry_after_skips_until_then(tmp_path):
    clock = [TS]
    memory = RoutingMemory(tmp_path, clock=lambda: clock[0])
    memory.record_failure(Target("anthropic", "claude-haiku-4-5"), ErrorClass.RATE_LIMITED, 30, None, 60)
    assert excluded(plan(memory=memory.snapshot()))["anthropic/claude-haiku-4-5"] == "rate limited (429) until 12:00:30"
    # the same stored facts, planned after the wait: the planner judges them at inputs.now
    later = PlanInputs(config=config(), request=request(), now=datetime.fromtimestamp(TS + 31, timezone.utc))
    assert "anthropic/claude-haiku-4-5" in ids(make_plan(later, memory.snapshot()))


def test_ratelimit_headers_remaining_zero_skip_until_reset(tmp_path):
    memory = RoutingMemory(tmp_path, clock=lambda: TS)
    memory.record_success(Target("openai", "gpt-4o-mini"), 100,
                          RateLimitInfo(remaining_requests=0, reset_requests_s=20), 10)
    p = plan(memory=memory.snapshot())
    assert excluded(p)["openai/gpt-4o-mini"] == "rate limit: 0 requests left until 12:00:20"
    after = PlanInputs(config=config(), request=request(), now=datetime.fromtimestamp(TS + 21, timezone.utc))
    assert "openai/gpt-4o-mini" in ids(make_plan(after, memory.snapshot()))


def test_ratelimit_tokens_remaining_below_estimate():
    memory = snapshot(rate_limits={"openai/gpt-4o-mini": RateView(tokens_remaining=5, tokens_reset_at=TS + 10)})
    p = plan(text="word " * 50, memory=memory)
    assert excluded(p)["openai/gpt-4o-mini"].startswith("rate limit: 5 tokens left (need ~")


def test_config_rpm_and_tpm_windows():
    limited = provider("openai", models=[ModelConfig("gpt-4o-mini")], rpm=2, tpm=1000)
    cfg = config(openai=limited)
    two = snapshot(recent={"openai": ((TS - 50, 10), (TS - 5, 10))})
    assert excluded(plan(cfg, memory=two))["openai/gpt-4o-mini"] == \
        "rate limit: rpm 2 reached in the last 60 s (until 12:00:10)"
    old = snapshot(recent={"openai": ((TS - 61, 10), (TS - 5, 10))})
    assert "openai/gpt-4o-mini" in ids(plan(cfg, memory=old))
    heavy = snapshot(recent={"openai": ((TS - 5, 995),)})
    assert excluded(plan(cfg, text="word " * 20, memory=heavy))["openai/gpt-4o-mini"].startswith("rate limit: tpm 1000")


# --- strategies from memory ---------------------------------------------------------------

def test_round_robin_rotates_across_invocations(tmp_path):
    firsts = []
    for _ in range(4):
        memory = RoutingMemory(tmp_path)
        p = plan(strategy_option="round-robin", memory=memory.snapshot())
        firsts.append(ids(p)[0])
        memory.advance_round_robin("route:default", len(p.candidates))
    assert firsts == ["openai/gpt-4o-mini", "anthropic/claude-haiku-4-5", "ollama/llama3.2", "openai/gpt-4o-mini"]


def test_weighted_uses_the_injected_rng():
    a = ids(plan(strategy_option="weighted", extra={"rng": random.Random(3)}))
    b = ids(plan(strategy_option="weighted", extra={"rng": random.Random(3)}))
    assert a == b


def test_quality_uses_priors_from_config():
    p = plan(route_option="strong", strategy_option="quality")
    assert ids(p)[0] == "openai/gpt-4o" and p.candidates[0].reason == "quality prior 8"


def test_auto_sends_hard_prompts_to_large_models():
    hard = ("Prove rigorously, step by step, that the sum of two even integers is even, then derive "
            "the closed form of the recurrence T(n) = 2T(n/2) + n log n and analyse its complexity. "
            "Show every step and justify each inequality in the proof carefully.")
    p = plan(route_option="strong", strategy_option="auto", text=hard)
    assert p.difficulty >= 0.5, p.difficulty_features
    assert ids(p)[0] == "openai/gpt-4o"
    easy = plan(route_option="strong", strategy_option="auto", text="hi")
    assert ids(easy)[0] == "anthropic/claude-haiku-4-5"


def test_plan_to_json_round_trip():
    data = plan(has_key=lambda prov: prov.name != "openai").to_json()
    assert data["strategy"] == "priority" and data["excluded"][0]["target"] == "openai/gpt-4o-mini"


# --- rules --------------------------------------------------------------------------------



def rule(when: RuleWhen, then: RuleThen, index=0) -> Rule:
    return Rule(when, then, index=index)


def test_rule_route_applies_and_is_described():
    cfg = config(rules=[rule(RuleWhen(regex="(?i)urgent"), RuleThen(route="strong"))])
    p = plan(cfg, text="urgent: fix this")
    assert p.route == "strong" and p.rule
    assert plan(cfg, text="calm").route == "default"


def test_first_matching_rule_wins():
    cfg = config(rules=[rule(RuleWhen(regex="a"), RuleThen(strategy="cost")),
                        rule(RuleWhen(regex="a"), RuleThen(strategy="quality"), index=1)])
    assert plan(cfg, text="a").strategy == "cost"


def test_explicit_options_override_rules():
    cfg = config(rules=[rule(RuleWhen(regex="x"), RuleThen(route="strong", strategy="cost"))])
    p = plan(cfg, text="x", route_option="default", strategy_option="quality")
    assert p.route == "default" and p.strategy == "quality"
    assert any("overridden" in n for n in p.notes)
    assert plan(cfg, text="x", model_option="ollama").route == "default"


def test_rule_model_pins_like_m():
    cfg = config(rules=[rule(RuleWhen(tag="local"), RuleThen(model="ollama/llama3.2"))])
    p = plan(cfg, tags=frozenset({"local"}))
    assert ids(p)[0] == "ollama/llama3.2" and p.candidates[0].reason == "pinned by -m"


def test_rule_tier_keeps_only_that_tier_or_is_ignored_with_a_note():
    cfg = config(rules=[rule(RuleWhen(regex="x"), RuleThen(tier="large"))])
    p = plan(cfg, text="x", route_option="strong")
    assert ids(p) == ["openai/gpt-4o"]
    assert excluded(p)["anthropic/claude-haiku-4-5"] == "not tier large (rule)"
    cfg = config(rules=[rule(RuleWhen(regex="x"), RuleThen(tier="reasoning"))])
    p = plan(cfg, text="x")
    assert len(p.candidates) == 3 and any("tier ignored" in n for n in p.notes)


def test_rules_see_budget_use_and_time():
    cfg = config(rules=[rule(RuleWhen(budget_used_over=0.5), RuleThen(strategy="cost")),
                        rule(RuleWhen(hours="11-13"), RuleThen(route="strong"), index=1)])
    assert plan(cfg, budget_used=0.6).strategy == "cost"
    assert plan(cfg, budget_used=0.1).route == "strong"  # NOW is 12:00


def test_rule_naming_an_unknown_route_is_a_usage_error():
    cfg = config(rules=[rule(RuleWhen(regex="x"), RuleThen(route="gone"))])
    with pytest.raises(UsageError, match="rule 1: unknown route 'gone'"):
        plan(cfg, text="x")


# --- the per-config planning table --------------------------------------------------------

def _table_config() -> Config:
    routes = {"default": (Target("openai", "gpt-4o-mini"), Target("ghost", "x"), Target("openai", "nope"),
                          Target("openai", "gpt-4o-mini"), Target("anthropic", "claude-haiku-4-5"),
                          Target("ollama", "llama3.2")),
              "strong": (Target("anthropic", "claude-haiku-4-5"), Target("openai", "gpt-4o"))}
    return config(routes=routes)


def test_planning_table_holds_static_facts_and_deduplicated_routes():
    from llmroute.catalog.costs import facts_for
    from llmroute.routing.planner import PlanningTable

    cfg = _table_config()
    table = PlanningTable.for_config(cfg)
    assert [e.id for e in table.routes["default"]] == [
        "openai/gpt-4o-mini", "ghost/x", "openai/nope", "anthropic/claude-haiku-4-5", "ollama/llama3.2"]
    assert [e.target for e in table.every] == cfg.all_targets()
    for entry in table.every:
        assert entry.reason is None and entry.facts == facts_for(cfg, entry.target)
        assert entry.provider is cfg.providers[entry.target.provider]
        assert entry.model is cfg.model(entry.target)
    assert table.entry(Target("ghost", "x")).reason == "unknown provider 'ghost'"
    assert table.entry(Target("openai", "nope")).reason == "unknown model 'nope' of provider 'openai'"
    assert table.entry(Target("elsewhere", "y")).reason == "unknown provider 'elsewhere'"  # not in any route
    assert not table.dollar_limit
    assert PlanningTable.for_config(config(budget=BudgetConfig(limits=Limits(daily=5.0)))).dollar_limit


@pytest.mark.parametrize("strategy", ["priority", "cost", "latency", "round-robin", "weighted", "quality", "auto"])
@pytest.mark.parametrize("options", [{}, {"model_option": "openai/gpt-4o"}, {"route_option": "strong"},
                                     {"max_cost_usd": 0.0001}, {"no_fallback": True}])
def test_a_precomputed_table_plans_exactly_like_none(strategy, options):
    from llmroute.routing.planner import PlanningTable

    cfg = _table_config()
    memory = MemorySnapshot(now=TS, rate_limits=MappingProxyType({
        "anthropic/claude-haiku-4-5": RateView(blocked_until=TS + 30)}))
    plans = []
    for table in (None, PlanningTable.for_config(cfg)):
        inputs = PlanInputs(config=cfg, request=request("hello " * 300), now=NOW, strategy_option=strategy,
                            extra={"rng": random.Random(7)}, table=table, **options)
        plans.append(make_plan(inputs, memory))
    assert plans[0] == plans[1]
    assert "ghost/x" in excluded(plans[0]) or options


def test_a_table_of_another_config_is_not_used():
    from llmroute.routing.planner import PlanningTable

    stale = PlanningTable.for_config(config())
    cfg = config(openai=provider("openai", models=[ModelConfig("gpt-4o-mini")], enabled=False, priority=60))
    p = plan(cfg, table=stale)
    assert excluded(p)["openai/gpt-4o-mini"] == "disabled"


def test_has_key_is_asked_once_per_provider_per_plan():
    asked = []

    def has_key(p):
        asked.append(p.name)
        return p.name != "openai"

    cfg = config(routes={"default": (Target("openai", "gpt-4o-mini"), Target("openai", "gpt-4o"),
                                     Target("ollama", "llama3.2"))})
    p = plan(cfg, has_key=has_key)
    assert sorted(asked) == ["ollama", "openai"]
    assert excluded(p)["openai/gpt-4o"].startswith("no key (set OPENAI_API_KEY")
    assert ids(p) == ["ollama/llama3.2"]


def test_insecure_key_reason_is_only_for_providers_whose_calls_carry_a_key():
    from llmroute.providers.transport import insecure_key_reason

    public = "http://llm.example.com/v1"
    assert insecure_key_reason(provider("p", base_url=public)) is not None  # hosted: needs a key
    assert insecure_key_reason(provider("p", "ollama", base_url=public)) is None  # keyless, no key named
    assert insecure_key_reason(provider("p", "ollama", base_url=public, key_cmd="pass show x")) is not None
    assert insecure_key_reason(provider("p", base_url=public, key_env="K", allow_insecure=True)) is None


# --- tools (SPEC §13) ---------------------------------------------------------------------------


def _tool_plan(cfg, model_option=None):
    from llmroute.types import ToolSpec

    req = Request((Message("user", "weather?"),), tools=(ToolSpec("get_weather"),))
    return make_plan(PlanInputs(config=cfg, request=req, now=NOW, model_option=model_option))


def test_targets_that_cannot_take_tools_are_filtered_with_the_reason():
    p = _tool_plan(config())
    assert excluded(p) == {"ollama/llama3.2": "no tool support"}
    assert ids(p) == ["anthropic/claude-haiku-4-5", "openai/gpt-4o-mini"]


def test_models_known_without_tools_are_filtered_within_a_tool_format():
    cfg = config(routes={"default": (Target("openai", "o1-mini"), Target("gemini", "gemma-3-27b-it"),
                                     Target("gemini", "gemini-2.5-flash"), Target("co", "command-a-03-2025"))},
                 openai=provider("openai", models=[ModelConfig("o1-mini")]),
                 gemini=provider("gemini", "gemini", models=[ModelConfig("gemma-3-27b-it"),
                                                              ModelConfig("gemini-2.5-flash")]),
                 co=provider("co", "cohere", models=[ModelConfig("command-a-03-2025")]))
    p = _tool_plan(cfg)
    assert excluded(p) == {"openai/o1-mini": "no tool support", "gemini/gemma-3-27b-it": "no tool support",
                           "co/command-a-03-2025": "no tool support"}
    assert ids(p) == ["gemini/gemini-2.5-flash"]


def test_a_request_without_tools_keeps_every_target():
    assert "ollama/llama3.2" in ids(plan())
