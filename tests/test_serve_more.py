"""`llmroute serve`: token auth, the non-loopback rule, the body limit, a client that goes away
mid-stream, and a tool call round trip from an OpenAI client to an Anthropic-format target."""

from __future__ import annotations

import json
import socket
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from .support import project_config, read_ledger, run_cli, serve_gateway

pytestmark = pytest.mark.e2e
openai = pytest.importorskip("openai")

KEYS = {"SCRIPTED_API_KEY": "k"}


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def server_bind(self):
        self.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().server_bind()


@contextmanager
def scripted(answer):
    """A provider on 127.0.0.1 whose reply `answer(handler, body)` writes; stopped at exit."""
    bodies: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["content-length"])))
            bodies.append(body)
            answer(self, body)

    server = _Server(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", bodies
    finally:
        server.shutdown()
        server.server_close()


def write_json(handler, body: dict) -> None:
    data = json.dumps(body).encode()
    handler.send_response(200)
    handler.send_header("content-type", "application/json")
    handler.send_header("content-length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)


def config(tmp_path, fmt: str, url: str, extra: str = "") -> None:
    suffix = "/v1" if fmt == "openai" else ""
    project_config(tmp_path).write_text(
        "version: 1\ndefaults: {retries: 0}\nproviders:\n"
        f"  scripted:\n    type: {fmt}\n    base_url: {url}{suffix}\n"
        "    models:\n      fake-model: {input: 1.0, output: 2.0}\n"
        "routes:\n  default: [scripted]\n" + extra)


def ok(handler, body):
    write_json(handler, {"id": "c", "object": "chat.completion", "model": "fake-model",
                         "choices": [{"index": 0, "message": {"role": "assistant", "content": "fine"},
                                      "finish_reason": "stop"}],
                         "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}})


def test_token_is_required_and_checked(tmp_path):
    with scripted(ok) as (url, _):
        config(tmp_path, "openai", url, "serve: {token_env: GATEWAY_TOKEN}\n")
        with serve_gateway(tmp_path, env={**KEYS, "GATEWAY_TOKEN": "s3cret-token"}) as base:
            wrong = openai.OpenAI(base_url=f"{base}/v1", api_key="not-it", max_retries=0)
            with pytest.raises(openai.AuthenticationError):
                wrong.chat.completions.create(model="default", messages=[{"role": "user", "content": "hi"}])
            with pytest.raises(openai.AuthenticationError):
                wrong.models.list()
            right = openai.OpenAI(base_url=f"{base}/v1", api_key="s3cret-token", max_retries=0)
            answer = right.chat.completions.create(model="default", messages=[{"role": "user", "content": "hi"}])
            anthropic_style = httpx.post(f"{base}/v1/messages", headers={"x-api-key": "s3cret-token"},
                                         json={"model": "default", "max_tokens": 5,
                                               "messages": [{"role": "user", "content": "hi"}]})
    assert answer.choices[0].message.content == "fine"
    assert anthropic_style.status_code == 200 and anthropic_style.json()["content"][0]["text"] == "fine"


def test_non_loopback_host_needs_a_token(tmp_path):
    with scripted(ok) as (url, _):
        config(tmp_path, "openai", url)
        refused = run_cli(["serve", "--host", "0.0.0.0", "--port", "1"], cwd=tmp_path, env=KEYS, timeout=30)
        config(tmp_path, "openai", url, "serve: {token_env: GATEWAY_TOKEN}\n")
        unset = run_cli(["serve", "--host", "0.0.0.0", "--port", "1"], cwd=tmp_path, env=KEYS, timeout=30)
    assert refused.returncode == 2 and b"without a token" in refused.stderr
    assert unset.returncode == 2 and b"GATEWAY_TOKEN" in unset.stderr


def test_body_over_the_limit_is_413(tmp_path):
    with scripted(ok) as (url, bodies):
        config(tmp_path, "openai", url)
        with serve_gateway(tmp_path, env=KEYS) as base:
            big = httpx.post(f"{base}/v1/chat/completions", timeout=30, json={
                "model": "default", "messages": [{"role": "user", "content": "x" * (5 * 1024 * 1024)}]})
            bad = httpx.post(f"{base}/v1/chat/completions", content=b"{not json")
    assert big.status_code == 413 and big.json()["error"]["type"] == "request_too_large"
    assert bad.status_code == 400 and bad.json()["error"]["type"] == "invalid_request_error"
    assert bodies == []


def test_client_that_disconnects_mid_stream_is_recorded_and_released(tmp_path, isolated_env):
    gone = threading.Event()

    def slow_stream(handler, body):
        handler.send_response(200)
        handler.send_header("content-type", "text/event-stream")
        handler.end_headers()
        chunk = {"id": "c", "object": "chat.completion.chunk", "model": "fake-model",
                 "choices": [{"index": 0, "delta": {"content": "first words "}, "finish_reason": None}]}
        handler.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
        handler.wfile.flush()
        gone.wait(20)  # the rest never comes while the client is there

    with scripted(slow_stream) as (url, _):
        config(tmp_path, "openai", url, "budget: {daily: 5}\n")
        with serve_gateway(tmp_path, env=KEYS) as base:
            with httpx.stream("POST", f"{base}/v1/chat/completions", timeout=20, json={
                    "model": "default", "stream": True, "messages": [{"role": "user", "content": "hi"}]}) as response:
                for line in response.iter_lines():
                    if "first words" in line:
                        break
            deadline = time.monotonic() + 15
            while not read_ledger(isolated_env) and time.monotonic() < deadline:
                time.sleep(0.05)
            records = read_ledger(isolated_env)
            budget = json.loads(next(isolated_env.rglob("budget.json")).read_text())
        gone.set()
    assert [(r["kind"], r["status"], r["error"]) for r in records] == [("serve", "error", "interrupted")]
    assert budget["reservations"] == {}


def test_tool_call_round_trip_openai_client_to_anthropic_target(tmp_path):
    def tool_answer(handler, body):
        last = body["messages"][-1]
        results = [b for b in last["content"] if isinstance(b, dict) and b.get("type") == "tool_result"] \
            if isinstance(last["content"], list) else []
        if results:
            content = [{"type": "text", "text": f"it is {results[0]['content']}"}]
            stop = "end_turn"
        else:
            content = [{"type": "tool_use", "id": "toolu_1", "name": body["tools"][0]["name"],
                        "input": {"city": "Paris"}}]
            stop = "tool_use"
        write_json(handler, {"id": "msg", "type": "message", "role": "assistant", "model": "fake-model",
                             "content": content, "stop_reason": stop, "stop_sequence": None,
                             "usage": {"input_tokens": 5, "output_tokens": 3}})

    tools = [{"type": "function", "function": {"name": "weather", "description": "the weather in a city",
                                               "parameters": {"type": "object",
                                                              "properties": {"city": {"type": "string"}}}}}]
    with scripted(tool_answer) as (url, bodies):
        config(tmp_path, "anthropic", url)
        with serve_gateway(tmp_path, env=KEYS) as base:
            client = openai.OpenAI(base_url=f"{base}/v1", api_key="unused", max_retries=0)
            messages = [{"role": "user", "content": "weather in Paris?"}]
            first = client.chat.completions.create(model="default", messages=messages, tools=tools)
            call = first.choices[0].message.tool_calls[0]
            messages += [first.choices[0].message.model_dump(exclude_none=True),
                         {"role": "tool", "tool_call_id": call.id, "content": "sunny"}]
            second = client.chat.completions.create(model="default", messages=messages, tools=tools)
    assert first.choices[0].finish_reason == "tool_calls"
    assert (call.id, call.function.name, json.loads(call.function.arguments)) == ("toolu_1", "weather", {"city": "Paris"})
    assert bodies[0]["tools"][0]["name"] == "weather" and "input_schema" in bodies[0]["tools"][0]
    assert second.choices[0].message.content == "it is sunny"
