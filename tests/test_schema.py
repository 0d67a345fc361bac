"""`--schema` (SPEC §14): each format's structured-output mechanism (exact request bodies), the
answer checked against the schema (`invalid_output` otherwise), targets without a mechanism
filtered, and end to end: a first target whose answer does not validate falls back to the next,
`--json` nests the parsed object."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timezone

import httpx
import pytest

from llmroute.cache import cache_key
from llmroute.catalog.capabilities import structured_output_problem
from llmroute.config.model import ProviderConfig
from llmroute.errors import ErrorClass, ProviderError, UsageError
from llmroute.providers import create_provider
from llmroute.providers.gemini import response_schema
from llmroute.providers.openai import strict_ready
from llmroute.structured import checked, load_schema
from llmroute.types import Message, Request, Result, ToolCall

from .support import fake_server, project_config, read_ledger, run_cli
from .test_options import ANSWERS, sent_body

HI = (Message("user", "Hi"),)
SCHEMA = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
CLOSED = {**SCHEMA, "additionalProperties": False}


def ask(kind: str, schema: dict) -> dict:
    return sent_body(kind, Request(HI, max_tokens=8, schema=schema))


# --- each format's mechanism -------------------------------------------------------------------


def test_openai_asks_for_json_schema_strict_only_when_the_schema_allows_it():
    body = ask("openai", CLOSED)
    assert body["response_format"] == {"type": "json_schema",
                                       "json_schema": {"name": "answer", "schema": CLOSED, "strict": True}}
    assert ask("openai", SCHEMA)["response_format"]["json_schema"]["strict"] is False


def test_strict_needs_every_object_closed_with_every_property_required():
    assert strict_ready(CLOSED)
    assert not strict_ready({"type": "object", "properties": {"a": {"type": "string"}}, "additionalProperties": False})
    nested_open = {**CLOSED, "properties": {"n": {"type": "object", "properties": {}}}}
    assert not strict_ready(nested_open)


def test_anthropic_forces_the_answer_tool():
    body = ask("anthropic", SCHEMA)
    assert body["tools"] == [{"name": "answer", "input_schema": SCHEMA}]
    assert body["tool_choice"] == {"type": "tool", "name": "answer"}


def test_gemini_asks_for_json_with_its_schema_subset():
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object",
              "additionalProperties": False, "required": ["n", "tag"],
              "properties": {"n": {"type": "integer", "minimum": 0},
                             "tag": {"type": ["string", "null"]}, "kind": {"const": "x"},
                             "items": {"type": "array", "items": {"type": "string"}}}}
    body = ask("gemini", schema)
    assert body["generationConfig"] == {
        "maxOutputTokens": 8, "responseMimeType": "application/json",
        "responseSchema": {"type": "OBJECT", "required": ["n", "tag"],
                           "properties": {"n": {"type": "INTEGER", "minimum": 0},
                                          "tag": {"nullable": True, "type": "STRING"},
                                          "kind": {"enum": ["x"]},
                                          "items": {"type": "ARRAY", "items": {"type": "STRING"}}}}}
    assert response_schema({"type": ["string", "integer"]}) == {"anyOf": [{"type": "STRING"}, {"type": "INTEGER"}]}


def test_ollama_sends_the_schema_as_format():
    assert ask("ollama", SCHEMA)["format"] == SCHEMA


def test_cohere_asks_for_a_json_object_with_the_schema():
    assert ask("cohere", SCHEMA)["response_format"] == {"type": "json_object", "json_schema": SCHEMA}


def test_anthropic_answer_is_the_forced_tools_input():
    answer = {"type": "message", "stop_reason": "tool_use", "usage": {"input_tokens": 3, "output_tokens": 4},
              "content": [{"type": "tool_use", "id": "toolu_1", "name": "answer", "input": {"n": 3}}]}
    client = httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(200, json=answer)))
    provider = create_provider(ProviderConfig(name="anthropic", type="anthropic"), key="k", client=client)
    result = provider.complete(Request(HI, schema=SCHEMA), "claude-haiku-4-5", timeout=5)
    assert checked(result, SCHEMA).text == '{"n": 3}'


# --- checking the answer ---------------------------------------------------------------------


def test_a_matching_answer_becomes_one_line_of_json():
    assert checked(Result(text='```json\n{\n  "n": 3\n}\n```'), SCHEMA).text == '{"n": 3}'


@pytest.mark.parametrize("text, message", [
    ("three", "answer is not JSON"),
    ('{"m": 3}', "answer does not match the schema at (root): 'n' is a required property"),
    ('{"n": "3"}', "answer does not match the schema at n: '3' is not of type 'integer'"),
])
def test_an_answer_that_does_not_validate_is_invalid_output(text, message):
    with pytest.raises(ProviderError) as caught:
        checked(Result(text=text), SCHEMA)
    assert caught.value.error_class is ErrorClass.INVALID_OUTPUT
    assert message in caught.value.message


def test_tool_input_is_used_only_when_there_is_no_text():
    result = Result(text="", tool_calls=(ToolCall("t", "answer", '{"n": 1}'),))
    assert checked(result, SCHEMA).tool_calls == ()
    assert checked(result, SCHEMA).text == '{"n": 1}'


@pytest.mark.parametrize("text, message", [
    ("{not json", "--schema: not valid JSON"),
    ("[1]", "a JSON schema is an object, not list"),
    ('{"type": "nope"}', "not a valid JSON schema"),
    ("/no/such/schema.json", "cannot read /no/such/schema.json"),
])
def test_bad_schemas_are_usage_errors(text, message):
    with pytest.raises(UsageError) as caught:
        load_schema(text)
    assert message in caught.value.message


def test_schema_from_a_file(tmp_path):
    path = tmp_path / "s.json"
    path.write_text(json.dumps(SCHEMA))
    assert load_schema(str(path)) == SCHEMA


# --- planning and caching ----------------------------------------------------------------------


def test_targets_without_a_mechanism_are_filtered():
    assert structured_output_problem(ProviderConfig(name="local", type="local"), SCHEMA) == "no structured output"
    assert structured_output_problem(ProviderConfig(name="a", type="anthropic"), {"type": "array"}).startswith(
        "no structured output for a non-object schema")
    for kind in ("openai", "anthropic", "gemini", "ollama", "cohere", "mock"):
        assert structured_output_problem(ProviderConfig(name=kind, type=kind), SCHEMA) is None


def test_cache_key_holds_the_schema_options_and_images():
    from llmroute.types import Attachment

    plain = cache_key(Request(HI), "m", None)
    assert cache_key(Request(HI, schema=SCHEMA), "m", None) != plain
    assert cache_key(Request(HI, options=(("seed", 1),)), "m", None) != \
        cache_key(Request(HI, options=(("seed", 2),)), "m", None)
    assert cache_key(Request(HI, attachments=(Attachment("image/png", b"1"),)), "m", None) != \
        cache_key(Request(HI, attachments=(Attachment("image/png", b"2"),)), "m", None)


def test_jsonschema_is_imported_only_with_schema(tmp_path):
    code = ("import sys\nfrom llmroute.types import Request, Message, Result\n"
            "from llmroute.cli import ask\n"
            "assert 'jsonschema' not in sys.modules, 'imported at start'\n"
            "from llmroute.structured import checked\n"
            "checked(Result(text='1'), {'type': 'integer'})\n"
            "assert 'jsonschema' in sys.modules\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


# --- end to end ------------------------------------------------------------------------------

KEYS = {"FIRST_API_KEY": "k1", "SECOND_API_KEY": "k2"}


def two_servers(tmp_path, first: str, second: str) -> None:
    project_config(tmp_path).write_text(
        "version: 1\ndefaults: {strategy: priority, retries: 0}\nproviders:\n"
        f"  first: {{type: openai, base_url: {first}/v1, priority: 90, models: {{fake: {{input: 1, output: 1}}}}}}\n"
        f"  second: {{type: openai, base_url: {second}/v1, priority: 10, models: {{fake: {{input: 1, output: 1}}}}}}\n")


@pytest.mark.e2e
@pytest.mark.parametrize("bad_reply", ["sorry, I cannot do JSON", '{"count": 3}'])
def test_an_answer_that_does_not_validate_falls_back(bad_reply, tmp_path, isolated_env):
    log = tmp_path / "first.jsonl"
    with fake_server("openai", reply=bad_reply, log=log) as first, fake_server("openai", reply='{"n": 3}') as second:
        two_servers(tmp_path, first, second)
        as_json = run_cli(["--json", "--schema", json.dumps(SCHEMA), "count"], cwd=tmp_path, env=KEYS)
        plain = run_cli(["--stream", "--schema", json.dumps(SCHEMA), "count"], cwd=tmp_path, env=KEYS)
    assert as_json.returncode == 0, as_json.stderr.decode()
    data = json.loads(as_json.stdout)
    assert data["target"] == "second/fake"
    assert data["data"] == {"n": 3} and data["text"] == '{"n": 3}'
    assert data["attempts"][0] == {"target": "first/fake", "status": "error", "error": "invalid_output",
                                   "latency_ms": data["attempts"][0]["latency_ms"]}
    assert plain.returncode == 0, plain.stderr.decode()
    assert plain.stdout.decode() == '{"n": 3}\n'  # the checked answer, never the stream of a bad one
    sent = json.loads(log.read_text().splitlines()[0])["body"]
    assert sent["response_format"]["json_schema"]["schema"] == SCHEMA
    errors = [r for r in read_ledger(isolated_env) if r["status"] == "error"]
    assert errors and all(r["error"] == "invalid_output" for r in errors)


@pytest.mark.e2e
def test_no_valid_answer_anywhere_fails(tmp_path, isolated_env):
    with fake_server("openai", reply="nope") as first, fake_server("openai", reply="[1, 2]") as second:
        two_servers(tmp_path, first, second)
        result = run_cli(["--schema", json.dumps(SCHEMA), "count"], cwd=tmp_path, env=KEYS)
    assert result.returncode == 1
    assert result.stdout == b""
    assert "invalid_output" in result.stderr.decode()


@pytest.mark.e2e
def test_a_bad_schema_exits_2(tmp_path, isolated_env):
    result = run_cli(["--schema", '{"type": 5}', "count"], cwd=tmp_path)
    assert result.returncode == 2
    assert "--schema: not a valid JSON schema" in result.stderr.decode()
