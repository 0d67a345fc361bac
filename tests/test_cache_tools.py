"""The response cache tells gateway requests apart by their tools, tool turns, top_p and stop,
and CLI requests (none of those set) keep the keys they had."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace

import pytest

from llmroute.cache import cache_key
from llmroute.types import Message, Request, ToolCall, ToolSpec

BASE = Request((Message("user", "Weather?"),), max_tokens=64)


def test_cli_request_keys_are_unchanged():
    material = {"messages": [["user", "Weather?"]], "system": None, "model": "openai/gpt-4o-mini",
                "route": None, "max_tokens": 64, "temperature": None}
    before = hashlib.sha256(json.dumps(material, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    assert cache_key(BASE, "openai/gpt-4o-mini", None) == before


@pytest.mark.parametrize("changed", [
    replace(BASE, top_p=0.5),
    replace(BASE, stop=("END",)),
    replace(BASE, tools=(ToolSpec("get_weather"),)),
    replace(BASE, tools=(ToolSpec("get_weather", parameters={"type": "object"}),)),
    replace(BASE, tools=(ToolSpec("get_weather"),), tool_choice="required"),
    replace(BASE, messages=BASE.messages + (
        Message("assistant", "", (ToolCall("c1", "get_weather", '{"city":"Paris"}'),)),
        Message("tool", "sunny", tool_call_id="c1"))),
])
def test_gateway_fields_make_a_different_question(changed):
    assert cache_key(changed, "m", None) != cache_key(BASE, "m", None)


def test_different_tool_arguments_are_different_questions():
    def turns(arguments):
        return replace(BASE, messages=BASE.messages + (
            Message("assistant", "", (ToolCall("c1", "get_weather", arguments),)),
            Message("tool", "sunny", tool_call_id="c1")))
    assert cache_key(turns('{"city":"Paris"}'), "m", None) != cache_key(turns('{"city":"Lyon"}'), "m", None)


def test_tool_call_answers_are_not_stored(tmp_path):
    from types import SimpleNamespace

    from llmroute.cache import CacheHook, ResponseCache
    from llmroute.types import Answer, Target

    cache = ResponseCache(tmp_path / "c.sqlite3", ttl=60, clock=lambda: 1000.0)
    hook = CacheHook(SimpleNamespace(response_cache=lambda: cache), SimpleNamespace(model=None, route=None))

    def answer(**extra):
        return Answer(request_id="r", text="", target=Target("openai", "gpt-4o"), route=None, usage=None,
                      cost_usd=None, latency_ms=1, **extra)
    calls = replace(BASE, tools=(ToolSpec("get_weather"),))
    hook.store(calls, answer(tool_calls=(ToolCall("c1", "get_weather", "{}"),)))
    assert cache.get(hook.key(calls)) is None
    hook.store(BASE, replace(answer(), text="sunny"))
    assert cache.get(hook.key(BASE)).text == "sunny"
