"""In-process fakes for compare/abtest/sampling tests: OpenAI-format providers behind one
`httpx.MockTransport`, told apart by their base URL path, and a scriptable budget guard."""

from __future__ import annotations

import json
import re

import httpx

from llmroute.config.load import parse_config
from llmroute.engine import Engine
from llmroute.keys import KeyStore
from llmroute.paths import Paths


def config_text(names: list[str], extra: str = "") -> str:
    lines = ["version: 1", "providers:"]
    for name in names:
        lines += [f"  {name}:", "    type: openai", f"    base_url: http://127.0.0.1:9/{name}/v1",
                  "    models:", "      m: {input: 1.0, output: 2.0}"]
    return "\n".join(lines) + "\n" + extra


def judge_reply(prompt: str) -> str:
    """Like tests/fakeserver.py's judge-content mode: the answer containing GOOD wins."""
    a = re.search(r"\[Answer A\](.*?)\[Answer B\]", prompt, re.S).group(1)
    b = re.search(r"\[Answer B\](.*?)\[End\]", prompt, re.S).group(1)
    if ("GOOD" in a) != ("GOOD" in b):
        return "A" if "GOOD" in a else "B"
    return "TIE"


class FakeProviders:
    """name -> reply text (or an int HTTP status to fail with); `judge` answers as a judge."""

    def __init__(self, replies: dict[str, str | int]):
        self.replies = replies
        self.calls: list[tuple[str, str]] = []

    def handler(self, request: httpx.Request) -> httpx.Response:
        name = request.url.path.split("/")[1]
        body = json.loads(request.content)
        prompt = body["messages"][-1]["content"]
        self.calls.append((name, prompt))
        reply = self.replies[name]
        if isinstance(reply, int):
            return httpx.Response(reply, json={"error": {"message": "boom", "type": "server_error"}})
        text = judge_reply(prompt) if reply == "judge" else reply.replace("{prompt}", prompt[:40])
        return httpx.Response(200, json={
            "id": "x", "object": "chat.completion", "model": "m",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}})

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.MockTransport(self.handler))


class FakeBudget:
    """A BudgetGuard that refuses the targets in `refuse` (or everything when refuse_all)."""

    def __init__(self, refuse: set[str] = frozenset(), refuse_all: bool = False):
        self.refuse = set(refuse)
        self.refuse_all = refuse_all
        self.reserved: list[str] = []
        self.settled: list[tuple[str, float]] = []
        self.released: list[str] = []

    def plan_filter(self):
        return None

    def used_fraction(self):
        return None

    def reserve(self, target, provider, worst_case_usd, worst_case_tokens):
        if self.refuse_all or target.id in self.refuse:
            return None
        self.reserved.append(target.id)
        return target.id

    def settle(self, handle, cost_usd, tokens):
        self.settled.append((handle, cost_usd))

    def release(self, handle):
        self.released.append(handle)

    def exhausted_error(self, plan):
        return None


def make_engine(home, text: str, budget=None, client: httpx.Client | None = None) -> Engine:
    return Engine(parse_config(text), paths=Paths(home, home), keys=KeyStore({}), budget=budget,
                  sleep=lambda s: None, client=client)


def ledger(home) -> list[dict]:
    path = home / "ledger.jsonl"
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []
