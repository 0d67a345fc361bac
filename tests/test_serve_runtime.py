"""`llmroute serve` as a long-running process: the response cache, routing memory shared with
other processes while outcomes are written in batches, and a graceful stop on SIGTERM/SIGINT."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
import urllib.request
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest

from llmroute.cli.serve_cmd import GRACE_SECONDS
from llmroute.routing.memory import RoutingMemory
from llmroute.types import Target

from .support import fake_server, free_port, llmroute_binary, project_config, read_ledger, serve_gateway

pytestmark = pytest.mark.e2e

KEYS = {"FIRST_API_KEY": "k1", "SECOND_API_KEY": "k2"}
BODY = {"model": "default", "messages": [{"role": "user", "content": "hello there"}]}


def config(tmp_path: Path, urls: dict[str, str], extra: str = "") -> None:
    """OpenAI-format providers in priority order, one `default` route over them."""
    lines = ["version: 1", "defaults: {strategy: priority, retries: 0}", "providers:"]
    for rank, (name, url) in enumerate(urls.items()):
        lines += [f"  {name}:", "    type: openai", f"    base_url: {url}/v1", f"    priority: {90 - rank}",
                  "    models:", "      fake-model: {input: 1.0, output: 2.0}"]
    lines += ["routes:", f"  default: [{', '.join(urls)}]"]
    project_config(tmp_path).write_text("\n".join(lines) + "\n" + extra)


def logged(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def wait_for(condition, seconds: float = 15.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


@pytest.mark.parametrize("stream", [False, True], ids=["buffered", "streamed"])
def test_a_repeated_request_is_answered_from_the_cache(stream, tmp_path, isolated_env):
    log = tmp_path / "calls.jsonl"
    with fake_server("openai", reply="cached words", log=log) as url:
        config(tmp_path, {"first": url}, "cache: {enabled: true}\n")
        with serve_gateway(tmp_path, env=KEYS) as base:
            answers = []
            for _ in range(2):
                response = httpx.post(f"{base}/v1/chat/completions", json={**BODY, "stream": stream}, timeout=20)
                assert response.status_code == 200
                answers.append(response.text)
    assert len(logged(log)) == 1  # the second answer never reached the provider
    assert "cached words" in answers[1]
    records = read_ledger(isolated_env)
    assert [(r["kind"], r["status"], r.get("cached")) for r in records] == [
        ("serve", "ok", False), ("serve", "ok", True)]


def test_routing_memory_is_shared_with_other_processes_while_serving(tmp_path, isolated_env):
    """Outcomes reach the state file (batched, not per request), and a breaker another process
    opens is seen by the running gateway within its flush interval."""
    with ExitStack() as first_server, fake_server("openai", reply="from second") as second:
        first = first_server.enter_context(fake_server("openai", reply="from first"))
        config(tmp_path, {"first": first, "second": second})
        with serve_gateway(tmp_path, env=KEYS) as base:
            ask = lambda: httpx.post(f"{base}/v1/chat/completions", json=BODY, timeout=20)  # noqa: E731
            assert ask().headers["x-llmroute-target"] == "first/fake-model"
            memory = RoutingMemory(isolated_env / "state", clock=time.time)
            wait_for(lambda: "first/fake-model" in memory.store.read().get("latency", {}))
            # Another process finds `first` down and opens its breaker; it is down for good
            # (stopped), so no later answer from it can close the breaker again.
            memory.trip(Target("first", "fake-model"), "down, as another process found")
            first_server.close()

            def first_skipped() -> bool:
                answer = ask()
                assert answer.headers["x-llmroute-target"] == "second/fake-model"
                request_id = answer.headers["x-llmroute-request-id"]
                wait_for(lambda: any(r["request_id"] == request_id for r in read_ledger(isolated_env)))
                tried = [r["target"] for r in read_ledger(isolated_env) if r["request_id"] == request_id]
                return tried == ["second/fake-model"]  # the plan left `first` out: breaker open

            wait_for(first_skipped)
        latency = memory.store.read()["latency"]  # the last outcomes are written on the way out
    assert set(latency) == {"first/fake-model", "second/fake-model"}


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_stop_signal_lets_the_request_in_flight_finish_and_exits_0(signum, tmp_path, isolated_env):
    log = tmp_path / "calls.jsonl"
    with fake_server("openai", mode="slow:1500", reply="late but whole", log=log) as url:
        config(tmp_path, {"first": url})
        port = free_port()
        process = subprocess.Popen([llmroute_binary(), "serve", "--port", str(port)], cwd=tmp_path,
                                   env={**os.environ, **KEYS}, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.PIPE)
        try:
            base = f"http://127.0.0.1:{port}"

            def healthy() -> bool:
                assert process.poll() is None, process.stderr.read().decode()
                try:
                    with urllib.request.urlopen(f"{base}/health", timeout=1):
                        return True
                except OSError:
                    return False

            wait_for(healthy, 30)
            result: dict = {}

            def client() -> None:
                try:
                    result["response"] = httpx.post(f"{base}/v1/chat/completions", json=BODY, timeout=20)
                except httpx.HTTPError as error:
                    result["error"] = error

            thread = threading.Thread(target=client)
            thread.start()
            wait_for(lambda: logged(log))  # the provider has the request: it is in flight
            process.send_signal(signum)
            code = process.wait(timeout=GRACE_SECONDS + 5)
            thread.join(timeout=20)
            stderr = process.stderr.read().decode()
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=10)
            process.stderr.close()
    assert "error" not in result, result
    assert result["response"].status_code == 200
    assert result["response"].json()["choices"][0]["message"]["content"] == "late but whole"
    assert code == 0, stderr
    assert [(r["kind"], r["status"]) for r in read_ledger(isolated_env)] == [("serve", "ok")]
