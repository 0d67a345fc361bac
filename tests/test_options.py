"""`-o KEY=VALUE` model options (SPEC §14): reading them, each format's field for each option
(exact request bodies through MockTransport), filtering the targets that cannot take one, and
end to end through the installed binary against fake providers."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import httpx
import pytest

from llmroute.catalog import options as opts
from llmroute.config.model import ProviderConfig
from llmroute.errors import UsageError
from llmroute.providers import create_provider
from llmroute.types import Message, Request

from .support import fake_server, project_config, run_cli

HI = (Message("user", "Hi"),)

# (provider type, answer body) for one buffered call of each format.
ANSWERS = {
    "openai": {"choices": [{"message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
               "usage": {"prompt_tokens": 1, "completion_tokens": 1}},
    "anthropic": {"type": "message", "content": [{"type": "text", "text": "ok"}], "stop_reason": "end_turn",
                  "usage": {"input_tokens": 1, "output_tokens": 1}},
    "gemini": {"candidates": [{"content": {"role": "model", "parts": [{"text": "ok"}]}, "finishReason": "STOP"}],
               "usageMetadata": {"promptTokenCount": 1, "candidatesTokenCount": 1}},
    "ollama": {"message": {"role": "assistant", "content": "ok"}, "done": True, "prompt_eval_count": 1, "eval_count": 1},
    "cohere": {"finish_reason": "COMPLETE", "message": {"role": "assistant", "content": [{"type": "text", "text": "ok"}]},
               "usage": {"tokens": {"input_tokens": 1, "output_tokens": 1}}},
}


def sent_body(kind: str, request: Request, model: str = "m", **config) -> dict:
    """The JSON body the provider of `kind` sends for `request` (one buffered call)."""
    seen: list[httpx.Request] = []

    def handler(req: httpx.Request) -> httpx.Response:
        seen.append(req)
        return httpx.Response(200, json=ANSWERS[kind])

    provider = create_provider(ProviderConfig(name=config.pop("name", kind), type=kind, **config), key="k-test",
                               client=httpx.Client(transport=httpx.MockTransport(handler)))
    provider.complete(request, model, timeout=5)
    return json.loads(seen[0].content)


# --- reading -o -----------------------------------------------------------------------------


def test_values_are_typed_and_stop_joins_commas_and_repeats():
    parsed = opts.parse_cli(["top_p=0.9", "top_k=40", "seed=7", "stop=END, STOP", "stop=DONE",
                             "reasoning_effort=LOW", "presence-penalty=-1.5"])
    assert parsed == (("top_p", 0.9), ("top_k", 40), ("seed", 7), ("stop", ["END", "STOP", "DONE"]),
                      ("reasoning_effort", "low"), ("presence_penalty", -1.5))


@pytest.mark.parametrize("text, message", [
    ("top_q=1", "unknown option 'top_q'"),
    ("top_p", "-o takes KEY=VALUE"),
    ("top_k=1.5", "option top_k takes an integer"),
    ("top_p=abc", "option top_p takes a number"),
    ("top_p=1.5", "option top_p must be 0–1"),
    ("top_p=nan", "option top_p takes a finite number"),
    ("reasoning_effort=max", "option reasoning_effort takes one of minimal, low, medium, high"),
    ("stop=,", "option stop needs at least one value"),
])
def test_bad_options_are_usage_errors(text, message):
    with pytest.raises(UsageError) as caught:
        opts.parse_cli([text])
    assert message in caught.value.message


def test_unknown_option_lists_the_known_ones():
    with pytest.raises(UsageError) as caught:
        opts.parse_cli(["temperture=1"])
    assert caught.value.hint == ("known options: frequency_penalty, min_p, num_ctx, presence_penalty, "
                                 "reasoning_effort, seed, stop, top_k, top_p")


# --- each format's fields ---------------------------------------------------------------------


ALL = (("top_p", 0.5), ("top_k", 20), ("seed", 3), ("stop", ["END"]), ("presence_penalty", 0.5),
       ("frequency_penalty", 0.25), ("reasoning_effort", "low"), ("min_p", 0.1), ("num_ctx", 4096))


def test_openai_body_carries_its_options_and_leaves_out_the_rest():
    body = sent_body("openai", Request(HI, max_tokens=8, options=ALL))
    assert body == {"model": "m", "messages": [{"role": "user", "content": "Hi"}], "max_completion_tokens": 8,
                    "top_p": 0.5, "seed": 3, "stop": ["END"], "presence_penalty": 0.5,
                    "frequency_penalty": 0.25, "reasoning_effort": "low"}


def test_mistral_names_the_seed_random_seed():
    body = sent_body("openai", Request(HI, max_tokens=8, options=(("seed", 3),)), name="mistral")
    assert body["random_seed"] == 3 and "seed" not in body


def test_openrouter_takes_top_k_and_effort_as_reasoning_effort():
    body = sent_body("openai", Request(HI, max_tokens=8, options=(("top_k", 20), ("reasoning_effort", "high"))),
                     name="openrouter")
    assert body["top_k"] == 20 and body["reasoning"] == {"effort": "high"}


def test_anthropic_body():
    body = sent_body("anthropic", Request(HI, max_tokens=8, options=ALL))
    assert body == {"model": "m", "max_tokens": 8, "messages": [{"role": "user", "content": "Hi"}],
                    "top_p": 0.5, "top_k": 20, "stop_sequences": ["END"]}


def test_gemini_body():
    body = sent_body("gemini", Request(HI, max_tokens=8, options=ALL))
    assert body == {"contents": [{"role": "user", "parts": [{"text": "Hi"}]}],
                    "generationConfig": {"maxOutputTokens": 8, "topP": 0.5, "topK": 20, "seed": 3,
                                         "stopSequences": ["END"], "presencePenalty": 0.5,
                                         "frequencyPenalty": 0.25}}


def test_ollama_body():
    body = sent_body("ollama", Request(HI, max_tokens=8, options=ALL))
    assert body == {"model": "m", "messages": [{"role": "user", "content": "Hi"}], "stream": False,
                    "options": {"num_predict": 8, "top_p": 0.5, "top_k": 20, "seed": 3, "stop": ["END"],
                                "presence_penalty": 0.5, "frequency_penalty": 0.25, "min_p": 0.1,
                                "num_ctx": 4096}}


def test_cohere_body():
    body = sent_body("cohere", Request(HI, max_tokens=8, options=ALL))
    assert body == {"model": "m", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 8,
                    "p": 0.5, "k": 20, "seed": 3, "stop_sequences": ["END"], "presence_penalty": 0.5,
                    "frequency_penalty": 0.25, "stream": False}


# --- planning -------------------------------------------------------------------------------


def test_problem_names_the_option_and_the_target():
    openai = ProviderConfig(name="openai", type="openai")
    cohere = ProviderConfig(name="cohere", type="cohere")
    assert opts.problem(openai, [("top_k", 5)]) == "option top_k not supported by openai"
    assert opts.problem(ProviderConfig(name="anthropic", type="anthropic"), [("top_k", 5)]) is None
    assert opts.problem(cohere, [("presence_penalty", 1.5)]) == \
        "option presence_penalty 1.5 is outside cohere's range 0–1"
    assert opts.problem(openai, [("stop", ["a", "b", "c", "d", "e"])]) == "option stop: openai takes at most 4"
    assert opts.problem(ProviderConfig(name="mock", type="mock"), [("num_ctx", 4)]) is None


def test_planner_filters_a_target_that_cannot_take_an_option():
    from llmroute.config.load import parse_config
    from llmroute.routing.planner import PlanInputs, make_plan

    config = parse_config(
        "version: 1\ndefaults: {strategy: priority}\nproviders:\n"
        "  openai: {type: openai, priority: 90, models: {gpt-4o-mini: {input: 1, output: 1}}}\n"
        "  anthropic: {type: anthropic, priority: 10, models: {claude-haiku-4-5: {input: 1, output: 1}}}\n")
    request = Request(HI, options=(("top_k", 5),))
    plan = make_plan(PlanInputs(config, request, datetime.now(timezone.utc)))
    assert [c.target.id for c in plan.candidates] == ["anthropic/claude-haiku-4-5"]
    assert [(e.target.id, e.reason) for e in plan.excluded] == \
        [("openai/gpt-4o-mini", "option top_k not supported by openai")]


# --- end to end -------------------------------------------------------------------------------

KEYS = {"OPENAI_API_KEY": "test-openai", "ANTHROPIC_API_KEY": "test-anthropic"}


@pytest.mark.e2e
def test_option_one_target_lacks_is_filtered_and_the_other_answers(tmp_path, isolated_env):
    log = tmp_path / "requests.jsonl"
    with fake_server("openai", reply="from openai") as first, \
            fake_server("anthropic", reply="from anthropic", log=log) as second:
        project_config(tmp_path).write_text(
            "version: 1\ndefaults: {strategy: priority, retries: 0}\nproviders:\n"
            f"  openai: {{type: openai, base_url: {first}/v1, priority: 90, models: {{fake: {{input: 1, output: 1}}}}}}\n"
            f"  anthropic: {{type: anthropic, base_url: {second}, priority: 10, models: {{fake: {{input: 1, output: 1}}}}}}\n")
        result = run_cli(["--json", "-o", "top_k=5", "-o", "stop=END", "hello"], cwd=tmp_path, env=KEYS)
        plan = run_cli(["route", "--json", "-o", "top_k=5", "hello"], cwd=tmp_path, env=KEYS)
    assert result.returncode == 0, result.stderr.decode()
    data = json.loads(result.stdout)
    assert data["text"] == "from anthropic"
    assert [a["target"] for a in data["attempts"]] == ["anthropic/fake"]
    body = json.loads(log.read_text().splitlines()[0])["body"]
    assert body["top_k"] == 5 and body["stop_sequences"] == ["END"]
    excluded = json.loads(plan.stdout)["excluded"]
    assert {"target": "openai/fake", "reason": "option top_k not supported by openai"} in excluded


@pytest.mark.e2e
def test_unknown_option_exits_2_listing_the_known_ones(tmp_path, isolated_env):
    result = run_cli(["-o", "temprature=0.5", "hello"], cwd=tmp_path)
    assert result.returncode == 2
    err = result.stderr.decode()
    assert "unknown option 'temprature'" in err
    assert "known options: frequency_penalty, min_p, num_ctx, presence_penalty, reasoning_effort, seed, stop, " \
           "top_k, top_p" in err


@pytest.mark.e2e
def test_chat_sends_its_options_with_every_turn(tmp_path, isolated_env):
    log = tmp_path / "requests.jsonl"
    with fake_server("anthropic", reply="hi back", log=log) as url:
        project_config(tmp_path).write_text(
            "version: 1\ndefaults: {retries: 0}\nproviders:\n"
            f"  anthropic: {{type: anthropic, base_url: {url}, models: {{fake: {{input: 1, output: 1}}}}}}\n")
        result = run_cli(["chat", "-o", "top_k=3"], input="hello\nagain\nexit\n", cwd=tmp_path, env=KEYS)
        unknown = run_cli(["chat", "-o", "topk=3"], input="hello\nexit\n", cwd=tmp_path, env=KEYS)
    assert result.returncode == 0, result.stderr.decode()
    bodies = [json.loads(line)["body"] for line in log.read_text().splitlines()]
    assert len(bodies) == 2 and all(b["top_k"] == 3 for b in bodies)
    assert unknown.returncode == 2 and "known options:" in unknown.stderr.decode()
