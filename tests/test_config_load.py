"""Config loading and validation (SPEC §2, §2.5, §2.6)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from llmroute.config.defaults import default_config, discover_and_load
from llmroute.config.load import load_config
from llmroute.config.model import Config
from llmroute.config.starter import STARTER_CONFIG
from llmroute.config.trust import TrustStore
from llmroute.errors import ConfigError, ExitCode
from llmroute.paths import Paths
from llmroute.types import Target

REPO = Path(__file__).resolve().parent.parent

BASE = """\
version: 1
providers:
  openai:
    type: openai
    models:
      gpt-4o-mini: {}
      gpt-4o: {input: 2.5, output: 10, tier: large}
  fake:
    type: mock
    models:
      echo: null
routes:
  default: [openai, fake/echo]
"""


def extend(extra: str) -> str:
    return BASE + textwrap.dedent(extra)


def write(tmp_path: Path, text: str, name: str = "c.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def problems(tmp_path: Path, text: str) -> list[str]:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.exit_code == ExitCode.CONFIG
    return info.value.problems


def one_problem(tmp_path: Path, text: str) -> str:
    found = problems(tmp_path, text)
    assert len(found) == 1, found
    return found[0]


# -- valid configs and defaults ------------------------------------------------------------

def test_valid_config_builds_typed_objects_with_lines(tmp_path):
    config = load_config(write(tmp_path, BASE))
    assert config.source == tmp_path / "c.yaml"
    openai = config.providers["openai"]
    assert openai.line == 3 and openai.models["gpt-4o"].line == 7
    assert openai.models["gpt-4o"].input == 2.5 and isinstance(openai.models["gpt-4o"].output, float)
    assert config.providers["fake"].models["echo"].name == "echo"
    # a bare provider name is its first model
    assert config.routes["default"] == (Target("openai", "gpt-4o-mini"), Target("fake", "echo"))


def test_defaults_applied_for_omitted_sections(tmp_path):
    config = load_config(write(tmp_path, BASE))
    assert config.defaults.strategy == "auto" and config.defaults.max_attempts == 4
    assert config.budget.on_exhaust == "free" and config.budget.alert_at == (0.5, 0.8, 1.0)
    assert config.budget.limits.is_empty and config.cache.ttl == 3600
    assert config.abtest.targets == () and config.ledger.log_prompts is False
    provider = config.providers["openai"]
    assert provider.priority == 50 and provider.enabled and provider.key_env is None


def test_empty_file_is_an_empty_valid_config(tmp_path):
    config = load_config(write(tmp_path, "# nothing yet\n"))
    assert config.providers == {} and config.routes == {}


def test_starter_and_example_configs_are_valid():
    from llmroute.config.load import parse_config

    starter = parse_config(STARTER_CONFIG)
    assert "openai" in starter.providers and "default" in starter.routes
    example = load_config(REPO / "example-config.yaml")
    assert {p.type for p in example.providers.values()} >= {"openai", "anthropic", "mock", "ollama", "local"}
    assert example.rules and example.budget.per_provider and len(example.abtest.targets) == 2
    assert example.providers["offline"].options == {"latency_ms": 50.0, "fail_rate": 0.0,
                                                    "reply": "mock answer", "seed": 7}


def test_type_options_and_inferred_type(tmp_path):
    config = load_config(write(tmp_path, """\
        providers:
          loc: {type: local, model_path: /m.gguf, n_ctx: 512, threads: 2, models: [tiny]}
          groq: {models: [llama-3.1-8b-instant]}
          ollama: {models: {llama3.2: {}}}
        """))
    assert config.providers["loc"].options == {"model_path": "/m.gguf", "n_ctx": 512, "threads": 2}
    assert config.providers["groq"].type == "openai"  # a preset name implies type openai
    assert config.providers["ollama"].type == "ollama"


def test_rules_are_built(tmp_path):
    config = load_config(write(tmp_path, extend("""\
          strong: [openai/gpt-4o]
        rules:
          - when: {min_tokens: 100, hours: "22-07", weekdays: [Monday, sat], has_code: true}
            then: {route: strong, tier: large}
          - when: {tag: quick}
            then: {model: fake}
        """)))
    first, second = config.rules
    assert first.when.weekdays == ("mon", "sat") and first.when.hours == "22-07"
    assert first.then.route == "strong" and first.line == 16 and second.index == 1
    assert second.then.model == "fake"


# -- problems ------------------------------------------------------------------------------

def test_invalid_yaml_reports_its_line(tmp_path):
    found = one_problem(tmp_path, "version: 1\nproviders:\n  a: [1, 2\n  b: {}\n")
    assert found.startswith(f"{tmp_path / 'c.yaml'}:") and "invalid YAML" in found
    assert found.split(":")[1] in ("3", "4")


def test_unknown_keys_at_every_level_with_suggestions(tmp_path):
    found = problems(tmp_path, """\
        verison: 1
        defaults: {stratgy: cost}
        providers:
          p:
            type: mock
            priorty: 3
            models:
              m: {ouput: 1}
        """)
    assert len(found) == 4
    assert ":1: config: unknown key 'verison' (did you mean 'version'?)" in found[0]
    assert ":2: defaults: unknown key 'stratgy' (did you mean 'strategy'?)" in found[1]
    assert ":6: providers.p: unknown key 'priorty' (did you mean 'priority'?)" in found[2]
    assert ":8: providers.p.models.m: unknown key 'ouput' (did you mean 'output'?)" in found[3]


def test_wrong_types(tmp_path):
    found = problems(tmp_path, """\
        defaults:
          timeout: "fast"
          max_attempts: 2.5
          retries: true
          temperature: 1
        providers:
          p: {type: mock, weight: yes, enabled: 1, models: {m: {input: 1, context: 10.5}}}
        """)
    joined = "\n".join(found)
    assert ":2: defaults.timeout must be a number, got a string" in joined
    assert ":3: defaults.max_attempts must be an integer, got a number" in joined
    assert ":4: defaults.retries must be an integer, got true/false" in joined  # bools are not numbers
    assert "weight must be a number, got true/false" in joined
    assert "enabled must be true or false, got a number" in joined
    assert "models.m.context must be an integer" in joined
    assert "temperature" not in joined and "input" not in joined  # ints are fine where floats are
    assert len(found) == 6


def test_unknown_choices_list_valid_values(tmp_path):
    found = problems(tmp_path, """\
        defaults: {strategy: fastest}
        providers:
          p: {type: openia, models: [a]}
          q: {type: mock, models: {m: {tier: huge, mode: speech, quality: 11}}}
        budget: {on_exhaust: panic}
        """)
    joined = "\n".join(found)
    assert ":1: defaults.strategy: unknown strategy 'fastest'; valid: priority, cost" in joined
    assert ":3: providers.p.type: unknown type 'openia' (did you mean 'openai'?); valid: openai, anthropic" in joined
    assert "unknown tier 'huge'; valid: small, large, reasoning" in joined
    assert "unknown mode 'speech'" in joined and "quality must be in [0, 10], got 11" in joined
    assert ":5: budget.on_exhaust: unknown on_exhaust 'panic'; valid: free, block" in joined


def test_type_specific_options_are_unknown_for_other_types(tmp_path):
    found = problems(tmp_path, """\
        providers:
          p: {type: openai, latency_ms: 3, models: [a]}
          q: {type: mock, threads: 2, fail_rate: 1.5, models: [a]}
        """)
    assert ":2: providers.p: 'latency_ms' only applies to type mock" in found[0]
    assert ":3: providers.q: 'threads' only applies to type local" in "\n".join(found)
    assert any("fail_rate must be in [0, 1], got 1.5" in p for p in found)


def test_missing_type_and_bad_provider_values(tmp_path):
    found = problems(tmp_path, """\
        providers:
          mine: {models: [a]}
          other: {type: openai, base_url: api.example.com, key_env: "my key", preset: nope, models: [a]}
          ant: {type: anthropic, preset: groq, models: [a]}
        """)
    joined = "\n".join(found)
    assert ":2: providers.mine: missing type; valid: openai" in joined
    assert "base_url must start with http:// or https://" in joined
    assert "key_env must be an environment variable name" in joined
    assert "preset: unknown preset 'nope'" in joined
    assert ":4: providers.ant.preset only applies to type openai" in joined


def test_rule_problems(tmp_path):
    found = problems(tmp_path, extend("""\
        rules:
          - when: {regex: "(unclosed", hours: "9-24", weekdays: [mon, funday], budget_used_over: 2}
            then: {route: nowhere, model: openai/gpt-9}
          - when: {hours: "morning"}
            then: {}
        """))
    joined = "\n".join(found)
    assert ":15: rules[0].when.regex is not a valid regular expression" in joined
    assert ':15: rules[0].when.hours must look like "9-17" (hours 0-23)' in joined
    assert "unknown weekday 'funday'" in joined and "budget_used_over must be in [0, 1]" in joined
    assert ":16: rules[0].then.route: unknown route 'nowhere'; routes: default" in joined
    assert ":16: rules[0].then.model: unknown model 'gpt-9' for provider 'openai'" in joined
    assert ":17: rules[1].when.hours" in joined
    assert ":18: rules[1].then must set at least one of route, strategy, tier, model" in joined


def test_route_problems(tmp_path):
    found = problems(tmp_path, """\
        providers:
          openai: {type: openai, models: [gpt-4o-mini]}
          bare: {type: mock}
        routes:
          a: [opnai/gpt-4o-mini, openai/gpt-5, bare]
          b: []
          c: openai
        defaults: {route: missing}
        """)
    assert found == [
        f"{tmp_path / 'c.yaml'}:5: routes.a: unknown provider 'opnai' (did you mean 'openai'?); providers: openai, bare",
        f"{tmp_path / 'c.yaml'}:5: routes.a: unknown model 'gpt-5' for provider 'openai'; models: gpt-4o-mini",
        f"{tmp_path / 'c.yaml'}:5: routes.a: provider 'bare' has no models; add one under providers.bare.models",
        f"{tmp_path / 'c.yaml'}:6: routes.b: route has no targets",
        f"{tmp_path / 'c.yaml'}:7: routes.c must be a list, got a string",
        f"{tmp_path / 'c.yaml'}:8: defaults.route: unknown route 'missing'; routes: a, b",
    ]


def test_defaults_route_is_free_when_no_routes_exist(tmp_path):
    config = load_config(write(tmp_path, "defaults: {route: anything}\nproviders: {p: {type: mock, models: [m]}}\n"))
    assert config.defaults.route == "anything"


def test_budget_abtest_and_other_section_problems(tmp_path):
    found = problems(tmp_path, extend("""\
        budget:
          daily: -1
          tokens_daily: 1.5
          alert_at: [0, 0.5, 1.2]
          timezone: Mars/Olympus
          per_provider: {anthropic: {daily: 1}, openai: {hourly: 1}}
        abtest: {sample_rate: 1.5, targets: [openai], judge: nobody/x}
        cache: {enabled: maybe}
        alerts: {webhook: "ftp://x"}
        """))
    joined = "\n".join(found)
    for expected in (
        ":15: budget.daily must be at least 0, got -1", ":16: budget.tokens_daily must be an integer",
        ":17: budget.alert_at[0] must be in (0, 1], got 0", ":17: budget.alert_at[2] must be in (0, 1], got 1.2",
        ":18: budget.timezone must be 'local' or a time zone name", ":19: budget.per_provider.anthropic: unknown provider",
        ":19: budget.per_provider.openai: unknown key 'hourly'", ":20: abtest.sample_rate must be in [0, 1]",
        ":20: abtest.targets must name exactly 2 targets (or none), got 1", ":20: abtest.judge: unknown provider 'nobody'",
        ":21: cache.enabled must be true or false", ":22: alerts.webhook must be an http:// or https:// URL",
    ):
        assert expected in joined, expected


def test_version_must_be_1_and_keys_must_be_unique(tmp_path):
    found = problems(tmp_path, "version: 2\nproviders:\n  p: {type: mock}\n  p: {type: mock}\n")
    assert found == [f"{tmp_path / 'c.yaml'}:1: version must be 1, got 2",
                     f"{tmp_path / 'c.yaml'}:4: providers: duplicate key 'p'"]


def test_valid_budget_and_abtest(tmp_path):
    config = load_config(write(tmp_path, extend("""\
        budget: {daily: 5, tokens_daily: 100, alert_at: [1, 0.5], timezone: Europe/Paris, per_provider: {openai: {monthly: 3}}}
        abtest: {sample_rate: 0.1, targets: [openai, fake], judge: openai/gpt-4o}
        """)))
    assert config.budget.limits.daily == 5.0 and config.budget.limits.tokens_daily == 100
    assert config.budget.alert_at == (0.5, 1.0) and config.budget.per_provider["openai"].monthly == 3.0
    assert config.abtest.targets == (Target("openai", "gpt-4o-mini"), Target("fake", "echo"))
    assert config.abtest.judge == Target("openai", "gpt-4o") and config.budget.has_dollar_limit


def test_sample_rate_without_targets_is_a_problem(tmp_path):
    found = one_problem(tmp_path, extend("abtest: {sample_rate: 0.2}\n"))
    assert "abtest.sample_rate is above 0 but abtest.targets names no targets" in found


def test_every_problem_reported_together_in_line_order(tmp_path):
    found = problems(tmp_path, """\
        providers:
          p:
            type: nope
            models: [a]
        routes:
          r: [q/a]
        defaults:
          max_tokens: 0
        """)
    lines = [int(p.split(":")[1]) for p in found]
    assert lines == [3, 6, 8] and lines == sorted(lines)


# -- literal API keys ------------------------------------------------------------------------

SECRET = "sk-proj-abcdefghijklmnopqrstuvwxyz0123456789"


@pytest.mark.parametrize("snippet", [
    f"api_key: {SECRET}",
    "token: hunter2hunter2",
    "password: x",
    f"headers: {{Authorization: 'Bearer {SECRET}'}}",
    f"key_cmd: echo {SECRET}",
    "key_env: AIzaSyA1234567890abcdefghijklmnopqrstuvw",
    "models: {m: {key: gsk_abcdefghijklmnopqrstuv}}",
])
def test_literal_api_keys_are_refused_without_echoing_them(tmp_path, snippet):
    found = problems(tmp_path, f"providers:\n  p:\n    type: openai\n    {snippet}\n")
    refusals = [p for p in found if "literal API keys are not allowed" in p and "llmroute keys set" in p]
    assert refusals and refusals[0].split(":")[1] in ("4", "5")
    joined = "\n".join(found)
    for secret in (SECRET, "hunter2", "gsk_abc", "AIzaSy"):
        assert secret not in joined


def test_key_looking_value_anywhere_is_refused(tmp_path):
    found = problems(tmp_path, f"alerts:\n  command: \"curl -H 'x: sk-ant-api03-{'a' * 30}' host\"\n")
    assert found == [f"{tmp_path / 'c.yaml'}:2: literal API keys are not allowed in the config; "
                     "store it with `llmroute keys set NAME` or set key_env"]


def test_plain_headers_are_allowed(tmp_path):
    config = load_config(write(tmp_path, "providers:\n  p: {type: openai, headers: {X-Title: demo, X-Version: 2}, models: [a]}\n"))
    assert dict(config.providers["p"].headers) == {"X-Title": "demo", "X-Version": "2"}


# -- price warnings --------------------------------------------------------------------------

def test_paid_model_without_price_is_a_warning(tmp_path):
    config = load_config(write(tmp_path, """\
        providers:
          p:
            type: openai
            models:
              secret-model-x: {}
              priced: {input: 1, output: 2}
          free-one: {type: openai, free: true, models: [other-unknown]}
          o: {type: ollama, models: [whatever]}
          lan: {type: openai, base_url: "http://localhost:8080/v1", models: [mystery]}
        """))
    assert config.warnings == (
        f"{tmp_path / 'c.yaml'}:5: no price known for p/secret-model-x; set input/output "
        "(USD per 1M tokens) or it is skipped under a dollar budget",
        # A local base URL is no proof of a free model (a LiteLLM proxy there is paid).
        f"{tmp_path / 'c.yaml'}:9: no price known for lan/mystery; set input/output "
        "(USD per 1M tokens) or it is skipped under a dollar budget",
    )


def test_local_server_presets_and_known_models_behind_a_local_url_are_not_warned_about(tmp_path):
    config = load_config(write(tmp_path, """\
        providers:
          vllm: {type: openai, models: [qwen-local]}
          box: {type: openai, preset: llamacpp, base_url: "http://10.0.0.9:8080/v1", models: [any-gguf]}
          gw: {type: openai, base_url: "http://127.0.0.1:4000/v1", models: [gpt-4o-mini, openai/gpt-4o]}
          stt: {type: openai, base_url: "http://127.0.0.1:4000/v1", models: {whisper-1: {}, my-stt: {mode: transcription}}}
        """))
    assert config.warnings == (
        f"{tmp_path / 'c.yaml'}:5: no price known for stt/my-stt; set per_minute "
        "or it is skipped under a dollar budget",
    )


# -- files and discovery ---------------------------------------------------------------------

def test_missing_and_unreadable_files(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")
    (tmp_path / "bin.yaml").write_bytes(b"version: 1\n\xff\xfe\n")
    with pytest.raises(ConfigError, match="not valid UTF-8"):
        load_config(tmp_path / "bin.yaml")


def _paths(tmp_path: Path) -> Paths:
    return Paths(data_dir=tmp_path / "data", config_dir=tmp_path / "conf")


def test_discover_explicit_missing_file_is_an_error(tmp_path):
    with pytest.raises(ConfigError) as info:
        discover_and_load(str(tmp_path / "gone.yaml"), {}, tmp_path, _paths(tmp_path))
    assert info.value.problems == [f"config file not found: {tmp_path / 'gone.yaml'}"]


def test_discover_prefers_trusted_local_file_and_skips_probes(tmp_path):
    write(tmp_path, BASE, "llmroute.yaml")
    TrustStore(_paths(tmp_path).data_dir).trust(tmp_path / "llmroute.yaml")

    def boom() -> bool:
        raise AssertionError("probes must not run when a config file exists")

    config = discover_and_load(None, {}, tmp_path, _paths(tmp_path), lambda n: boom(), boom, boom)
    assert config.source == tmp_path / "llmroute.yaml"


def test_discover_without_file_builds_default_config(tmp_path):
    config = discover_and_load(None, {"OPENAI_API_KEY": "x"}, tmp_path, _paths(tmp_path),
                               lambda n: False, lambda: False, lambda: False)
    assert config.source is None and list(config.providers) == ["openai"]


def test_default_config_with_nothing_available():
    config = default_config({}, lambda n: False, lambda: False, lambda: False)
    assert isinstance(config, Config) and config.providers == {} and config.source is None


def test_default_config_from_env_keyring_ollama_and_local():
    env = {"OPENAI_API_KEY": "x", "GROQ_API_KEY": "", "CO_API_KEY": "y"}
    config = default_config(env, lambda name: name == "anthropic", lambda: True, lambda: True)
    assert list(config.providers) == ["openai", "anthropic", "cohere", "ollama", "local"]
    assert config.defaults.strategy == "auto" and config.defaults.route == "default"
    assert config.providers["cohere"].key_env == "CO_API_KEY"  # an accepted alias variable
    assert config.providers["openai"].key_env is None
    assert config.providers["ollama"].free and config.providers["local"].free
    route = [t.id for t in config.routes["default"]]
    assert route == ["openai/gpt-4o-mini", "anthropic/claude-haiku-4-5", "cohere/command-r7b-12-2024",
                     "openai/gpt-4o", "anthropic/claude-sonnet-4-5", "cohere/command-a-03-2025",
                     "ollama/llama3.2", "local/smollm2-135m"]
    assert config.providers["openai"].models["gpt-4o"].tier == "large"


def test_default_config_presets():
    env = {"MISTRAL_API_KEY": "a", "GROQ_API_KEY": "b", "OPENROUTER_API_KEY": "c", "GEMINI_API_KEY": "d"}
    config = default_config(env, lambda n: False, lambda: False, lambda: False)
    assert config.providers["mistral"].preset == "mistral" and config.providers["mistral"].type == "openai"
    assert config.providers["groq"].first_model == "llama-3.1-8b-instant"
    assert config.providers["openrouter"].first_model == "openai/gpt-4o-mini"
    assert list(config.providers["gemini"].models) == ["gemini-2.5-flash", "gemini-2.5-pro"]
    assert "ollama" not in config.providers and "local" not in config.providers
