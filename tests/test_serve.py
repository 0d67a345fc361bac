"""`llmroute serve` (SPEC §13) with the official SDKs as clients, in front of the fake providers."""

from __future__ import annotations

import asyncio

import pytest

from .support import fake_server, read_ledger, serve_gateway, project_config

pytestmark = pytest.mark.e2e
openai = pytest.importorskip("openai")
anthropic = pytest.importorskip("anthropic")

KEYS = {"OPENAI_API_KEY": "test-openai", "ANTHROPIC_API_KEY": "test-anthropic", "FIRST_API_KEY": "k1",
        "SECOND_API_KEY": "k2", "ALPHA_API_KEY": "k3"}


def config(tmp_path, servers: dict[str, tuple[str, str]], extra: str = "") -> None:
    """servers: name -> (format, url); priority follows the order given."""
    lines = ["version: 1", "defaults: {strategy: priority, retries: 0}", "providers:"]
    for rank, (name, (fmt, url)) in enumerate(servers.items()):
        suffix = "/v1" if fmt == "openai" else ""
        lines += [f"  {name}:", f"    type: {fmt}", f"    base_url: {url}{suffix}", f"    priority: {90 - rank}",
                  "    models:", "      fake-model: {input: 1.0, output: 2.0}"]
    lines += ["routes:", f"  default: [{', '.join(servers)}]"]
    project_config(tmp_path).write_text("\n".join(lines) + "\n" + extra)


def test_openai_sdk_buffered_streamed_and_multi_turn(tmp_path, isolated_env):
    with fake_server("openai", reply="hello from {prompt}") as url:
        config(tmp_path, {"alpha": ("openai", url)})
        with serve_gateway(tmp_path, env=KEYS) as base:
            client = openai.OpenAI(base_url=f"{base}/v1", api_key="unused")
            raw = client.chat.completions.with_raw_response.create(
                model="default", messages=[{"role": "system", "content": "be brief"},
                                           {"role": "user", "content": "one"},
                                           {"role": "assistant", "content": "hello from one"},
                                           {"role": "user", "content": "two"}])
            answer = raw.parse()
            stream = client.chat.completions.create(
                model="alpha/fake-model", messages=[{"role": "user", "content": "streamed"}], stream=True,
                stream_options={"include_usage": True})
            chunks = list(stream)
            models = [m.id for m in client.models.list()]
    assert answer.choices[0].message.content == "hello from two"
    assert answer.model == "alpha/fake-model"
    assert answer.usage.prompt_tokens > 0 and answer.usage.completion_tokens > 0
    assert raw.headers["x-llmroute-target"] == "alpha/fake-model"
    assert float(raw.headers["x-llmroute-cost-usd"]) > 0
    request_id = raw.headers["x-llmroute-request-id"]
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "hello from streamed"
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens > 0
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert {"auto", "default", "alpha/fake-model"} <= set(models)
    records = read_ledger(isolated_env)
    assert [r["kind"] for r in records] == ["serve", "serve"]
    assert records[0]["request_id"] == request_id and records[0]["status"] == "ok"


def test_anthropic_sdk_buffered_and_streamed(tmp_path, isolated_env):
    with fake_server("openai", reply="hi {prompt}") as url:
        config(tmp_path, {"alpha": ("openai", url)})
        with serve_gateway(tmp_path, env=KEYS) as base:
            client = anthropic.Anthropic(base_url=base, api_key="unused")
            message = client.messages.create(model="auto", max_tokens=50, system="be brief",
                                             messages=[{"role": "user", "content": "there"}])
            with client.messages.stream(model="default", max_tokens=50,
                                        messages=[{"role": "user", "content": "you"}]) as stream:
                text = "".join(stream.text_stream)
                final = stream.get_final_message()
    assert message.content[0].text == "hi there" and message.model == "alpha/fake-model"
    assert message.stop_reason == "end_turn" and message.usage.output_tokens > 0
    assert text == "hi you" and final.model == "alpha/fake-model" and final.usage.output_tokens > 0
    assert [r["kind"] for r in read_ledger(isolated_env)] == ["serve", "serve"]


@pytest.mark.parametrize("stream", [False, True])
def test_fallback_on_503_is_invisible(stream, tmp_path, isolated_env):
    with fake_server("openai", "error:503") as bad, fake_server("anthropic", reply="second says {prompt}") as good:
        config(tmp_path, {"first": ("openai", bad), "second": ("anthropic", good)})
        with serve_gateway(tmp_path, env=KEYS) as base:
            client = openai.OpenAI(base_url=f"{base}/v1", api_key="unused", max_retries=0)
            messages = [{"role": "user", "content": "hi"}]
            if stream:
                chunks = list(client.chat.completions.create(model="default", messages=messages, stream=True))
                text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
                model = chunks[0].model
            else:
                answer = client.chat.completions.create(model="default", messages=messages)
                text, model = answer.choices[0].message.content, answer.model
    assert text == "second says hi" and model == "second/fake-model"
    records = read_ledger(isolated_env)
    assert [(r["target"], r["status"]) for r in records] == [("first/fake-model", "error"), ("second/fake-model", "ok")]


def test_every_attempt_failed_is_502(tmp_path):
    with fake_server("openai", "error:503") as bad:
        config(tmp_path, {"first": ("openai", bad)})
        with serve_gateway(tmp_path, env=KEYS) as base:
            client = openai.OpenAI(base_url=f"{base}/v1", api_key="unused", max_retries=0)
            with pytest.raises(openai.APIStatusError) as failed:
                client.chat.completions.create(model="default", messages=[{"role": "user", "content": "hi"}])
            with pytest.raises(openai.NotFoundError):
                client.chat.completions.create(model="nope", messages=[{"role": "user", "content": "hi"}])
            with pytest.raises(openai.BadRequestError):
                client.chat.completions.create(model="default", messages=[])
    assert failed.value.status_code == 502
    assert failed.value.body["type"] == "upstream_error"


def test_budget_refusal_is_each_sdks_rate_limit_error(tmp_path):
    with fake_server("openai") as url:
        config(tmp_path, {"alpha": ("openai", url)}, "budget: {daily: 0.000001}\n")
        with serve_gateway(tmp_path, env=KEYS) as base:
            oa = openai.OpenAI(base_url=f"{base}/v1", api_key="unused", max_retries=0)
            with pytest.raises(openai.RateLimitError) as refused:
                oa.chat.completions.create(model="default", messages=[{"role": "user", "content": "hi " * 50}],
                                           max_tokens=1000)
            an = anthropic.Anthropic(base_url=base, api_key="unused", max_retries=0)
            with pytest.raises(anthropic.RateLimitError) as refused_too:
                an.messages.create(model="default", max_tokens=1000, messages=[{"role": "user", "content": "hi"}])
    assert refused.value.body["type"] == "budget_exceeded"
    assert "daily" in refused.value.body["message"]
    assert refused_too.value.body["error"]["type"] == "budget_exceeded"


def test_64_concurrent_requests(tmp_path, isolated_env):
    with fake_server("openai", reply="answer {prompt}", latency_ms=50) as url:
        config(tmp_path, {"alpha": ("openai", url)})
        with serve_gateway(tmp_path, env=KEYS) as base:
            async def main():
                client = openai.AsyncOpenAI(base_url=f"{base}/v1", api_key="unused", max_retries=0)
                answers = await asyncio.gather(*(
                    client.chat.completions.create(model="default", messages=[{"role": "user", "content": f"n{i}"}])
                    for i in range(64)))
                await client.close()
                return answers
            answers = asyncio.run(main())
    assert [a.choices[0].message.content for a in answers] == [f"answer n{i}" for i in range(64)]
    records = read_ledger(isolated_env)
    assert len(records) == 64 and len({r["request_id"] for r in records}) == 64
