"""Request parameters are checked per target (SPEC §4, issue 15): `--temperature 1.5` is outside
Anthropic's 0–1, so an Anthropic target is filtered with that reason — shown by `--explain` and
in the exit-5 error when nothing is left — instead of being sent a request it refuses with a 400
(which would stop the fallback); OpenAI (0–2), Gemini (0–2) and local servers still answer.
Likewise a `--max-tokens` above a model's `max_output` (config, else the built-in table)."""

from __future__ import annotations

import json

import pytest

from llmroute.catalog.params import ParamRanges, temperature_range
from llmroute.config.model import ModelConfig, ProviderConfig
from llmroute.types import Message, Request

from .support import fake_server, invoke, project_config

REASON = "temperature 1.5 is outside anthropic's range 0–1"


def provider(name, type="openai", **kw) -> ProviderConfig:
    return ProviderConfig(name=name, type=type, **kw)


@pytest.mark.parametrize(
    "config, span",
    [
        (provider("claude", "anthropic"), "0–1"),
        (provider("claude", "anthropic", base_url="https://proxy.example"), "0–1"),  # the format's range
        (provider("openai"), "0–2"), (provider("work"), "0–2"),  # OpenAI itself
        (provider("google", "gemini"), "0–2"), (provider("groq"), "0–2"),
        (provider("x", preset="openrouter"), "0–2"), (provider("deepseek"), "0–2"),
        (provider("co", "cohere"), "≥ 0"),
    ],
)
def test_documented_ranges(config, span):
    assert temperature_range(config).describe() == span


@pytest.mark.parametrize(
    "config",
    [provider("box", "ollama"), provider("local", "local"), provider("demo", "mock"), provider("vllm"),
     provider("gateway", base_url="http://127.0.0.1:4000/v1"),  # may forward to anything
     provider("mistral"), provider("together")],  # sources disagree, or none
)
def test_unknown_ranges_are_not_checked(config):
    assert temperature_range(config) is None
    assert ParamRanges.for_provider(config).problem(ask(1.9)) is None


def ask(temperature, max_tokens=1024):
    return Request((Message("user", "hi"),), temperature=temperature, max_tokens=max_tokens)


def test_the_reason_names_the_value_and_the_range():
    ranges = ParamRanges.for_provider(provider("claude", "anthropic"))
    assert ranges.problem(ask(1.5)) == REASON
    assert ranges.problem(ask(1.0)) is None and ranges.problem(ask(0.0)) is None  # bounds included
    assert ranges.problem(ask(None)) is None  # the provider's default


# --- planning ------------------------------------------------------------------------------

def _plan(temperature, max_tokens=1024, models=None, **kw):
    from datetime import datetime, timezone
    from types import MappingProxyType

    from llmroute.config.model import Config, Defaults
    from llmroute.routing.planner import PlanInputs, make_plan
    from llmroute.types import Target

    def p(name, type_, model):
        return ProviderConfig(name, type_, models=MappingProxyType({model: (models or {}).get(model, ModelConfig(model))}))

    providers = {"anthropic": p("anthropic", "anthropic", "claude-haiku-4-5"),
                 "openai": p("openai", "openai", "gpt-4o-mini"),
                 "gemini": p("gemini", "gemini", "gemini-2.5-flash"),
                 "ollama": p("ollama", "ollama", "llama3.2")}
    route = tuple(Target(name, next(iter(cfg.models))) for name, cfg in providers.items())
    config = Config(defaults=Defaults(strategy="priority"), providers=MappingProxyType(providers),
                    routes=MappingProxyType({"default": route}))
    inputs = PlanInputs(config=config, request=ask(temperature, max_tokens),
                        now=datetime(2026, 3, 4, 12, tzinfo=timezone.utc), **kw)
    return make_plan(inputs)


def test_a_target_whose_range_excludes_the_value_is_filtered_and_the_rest_answer():
    plan = _plan(1.5)
    assert [e.target.id for e in plan.excluded] == ["anthropic/claude-haiku-4-5"]
    assert plan.excluded[0].reason == REASON
    assert [c.target.id for c in plan.candidates] == ["openai/gpt-4o-mini", "gemini/gemini-2.5-flash",
                                                      "ollama/llama3.2"]
    assert not _plan(0.7).excluded and not _plan(None).excluded


def test_a_pinned_target_outside_its_range_is_not_replaced():
    plan = _plan(1.5, model_option="anthropic/claude-haiku-4-5", no_fallback=True)
    assert plan.candidates == () and plan.excluded[0].reason == REASON


def test_max_tokens_above_a_models_max_output_filters_it():
    plan = _plan(None, max_tokens=20000)  # gpt-4o-mini answers at most 16384 tokens (table)
    assert {e.target.id: e.reason for e in plan.excluded} == {
        "openai/gpt-4o-mini": "max_tokens 20000 exceeds gpt-4o-mini's max output 16384"}
    assert "anthropic/claude-haiku-4-5" in [c.target.id for c in plan.candidates]  # 64000
    assert "ollama/llama3.2" in [c.target.id for c in plan.candidates]  # no limit known
    assert not _plan(None, max_tokens=16384).excluded
    configured = {"claude-haiku-4-5": ModelConfig("claude-haiku-4-5", max_output=4096)}  # config wins
    plan = _plan(None, max_tokens=5000, models=configured)
    assert [e.reason for e in plan.excluded] == ["max_tokens 5000 exceeds claude-haiku-4-5's max output 4096"]


# --- end to end (in process, real HTTP to fake servers) ---------------------------------------

def _config(tmp_path, claude: str, gpt: str) -> None:
    project_config(tmp_path).write_text(
        "version: 1\ndefaults: {strategy: priority, retries: 0}\nproviders:\n"
        f"  claude:\n    type: anthropic\n    base_url: {claude}\n    key_env: CLAUDE_KEY\n    priority: 90\n"
        "    models: {claude-haiku-4-5: {}}\n"
        f"  gpt:\n    type: openai\n    base_url: {gpt}/v1\n    key_env: GPT_KEY\n    priority: 10\n"
        "    models: {gpt-4o-mini: {}}\n"
        "routes:\n  default: [claude, gpt]\n")


def test_cli_filters_anthropic_explains_why_and_exits_5_when_pinned(tmp_path, monkeypatch):
    monkeypatch.setenv("CLAUDE_KEY", "sk-ant-test-0123456789")
    monkeypatch.setenv("GPT_KEY", "sk-gpt-test-0123456789")
    claude_log = tmp_path / "claude.jsonl"
    with fake_server("anthropic", "error:400", log=claude_log) as claude, \
            fake_server("openai", reply="from gpt") as gpt:
        _config(tmp_path, claude, gpt)
        code, out, err = invoke(["--temperature", "1.5", "--json", "hello"])
        assert code == 0, err
        data = json.loads(out)
        assert data["target"] == "gpt/gpt-4o-mini" and data["text"] == "from gpt"
        assert [a["target"] for a in data["attempts"]] == ["gpt/gpt-4o-mini"]
        code, out, err = invoke(["--temperature", "1.5", "--explain", "--json", "hello"])
        assert code == 0, err
        excluded = {e["target"]: e["reason"] for e in json.loads(out)["excluded"]}
        assert excluded == {"claude/claude-haiku-4-5": REASON}
        code, out, err = invoke(["-m", "claude/claude-haiku-4-5", "--no-fallback", "--temperature", "1.5", "hello"])
        assert code == 5 and out == ""
        assert REASON in err
        code, out, err = invoke(["--temperature", "1.0", "-m", "gpt", "hello"])
        assert code == 0, err
    assert not claude_log.exists()  # never sent a request it would refuse


def test_compare_skips_a_target_outside_its_range_with_the_reason(tmp_path, monkeypatch):
    monkeypatch.setenv("CLAUDE_KEY", "sk-ant-test-0123456789")
    monkeypatch.setenv("GPT_KEY", "sk-gpt-test-0123456789")
    claude_log = tmp_path / "claude.jsonl"
    with fake_server("anthropic", "error:400", log=claude_log) as claude, \
            fake_server("openai", reply="from gpt") as gpt:
        _config(tmp_path, claude, gpt)
        code, out, err = invoke(["compare", "--temperature", "1.5", "--format", "json",
                                 "-t", "claude/claude-haiku-4-5", "-t", "gpt/gpt-4o-mini", "hello"])
    assert code == 0, err
    results = {r["target"]: r for r in json.loads(out)["results"]}
    assert results["claude/claude-haiku-4-5"]["status"] == "skipped"
    assert REASON in json.dumps(results["claude/claude-haiku-4-5"], ensure_ascii=False)
    assert results["gpt/gpt-4o-mini"]["status"] == "ok"
    assert not claude_log.exists()
