"""Ctrl-C during a provider call (issue 13, SPEC §5): the cut-off attempt is recorded in the ledger
(`status: error`, `error: interrupted`), its budget reservation is released, and the process exits
130 — buffered, streamed, in the async (batch) path, and through the real binary on SIGINT."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import threading
from pathlib import Path

import httpx
import pytest

from llmroute.budget.guard import BudgetGuard
from llmroute.config.load import parse_config
from llmroute.engine import AskOptions, Engine
from llmroute.engine_async import AsyncEngine
from llmroute.keys import KeyStore
from llmroute.paths import Paths
from llmroute.providers.mock import MockProvider
from llmroute.types import Chunk, Message, Request, Result, Usage

from .support import fake_server, llmroute_binary

CONFIG = """\
version: 1
defaults: {strategy: priority, retries: 0}
providers:
  demo:
    type: mock
    models:
      small: {input: 1.0, output: 2.0}
  spare:
    type: mock
    priority: 1
    models:
      tiny: {input: 1.0, output: 2.0}
routes:
  default: [demo/small, spare/tiny]
budget:
  daily: 5
"""

REQUEST = Request(messages=(Message("user", "a long question"),), max_tokens=50)


def _setup(home: Path):
    config = parse_config(CONFIG)
    paths = Paths(home, home)
    guard = BudgetGuard(config, paths)
    engine = Engine(config, paths=paths, keys=KeyStore({}), budget=guard)
    return engine, guard


def _ledger(home: Path) -> list[dict]:
    path = home / "ledger.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _assert_interrupted_and_released(home: Path, guard: BudgetGuard) -> None:
    records = _ledger(home)
    assert len(records) == 1  # the cut-off attempt; no fallback was tried after Ctrl-C
    assert records[0]["status"] == "error" and records[0]["error"] == "interrupted"
    assert records[0]["target"] == "demo/small" and records[0]["cost_usd"] in (0, 0.0, None)
    assert guard.store.read()["reservations"] == {}


def test_ctrl_c_during_a_buffered_call_is_recorded_and_released(isolated_env, monkeypatch):
    def interrupted(self, request, model, *, timeout):
        raise KeyboardInterrupt

    monkeypatch.setattr(MockProvider, "complete", interrupted)
    engine, guard = _setup(isolated_env)
    with pytest.raises(KeyboardInterrupt):
        engine.ask(REQUEST, AskOptions())
    _assert_interrupted_and_released(isolated_env, guard)


def test_ctrl_c_in_the_middle_of_a_stream_is_recorded_with_its_first_token(isolated_env, monkeypatch):
    def stream(self, request, model, *, timeout):
        yield Chunk(text="the beginning of ")
        raise KeyboardInterrupt

    monkeypatch.setattr(MockProvider, "stream", stream)
    engine, guard = _setup(isolated_env)
    shown: list[str] = []
    with pytest.raises(KeyboardInterrupt):
        engine.ask(REQUEST, AskOptions(stream=True), on_text=shown.append)
    assert "".join(shown) == "the beginning of "
    _assert_interrupted_and_released(isolated_env, guard)
    assert _ledger(isolated_env)[0]["ttft_ms"] is not None


def test_a_cancelled_async_call_is_recorded_and_released(isolated_env, monkeypatch):
    entered, leave = threading.Event(), threading.Event()

    def blocking(self, request, model, *, timeout):
        entered.set()
        leave.wait(30)
        return Result(text="too late: the caller was cancelled", usage=Usage(1, 1))

    monkeypatch.setattr(MockProvider, "complete", blocking)
    engine, guard = _setup(isolated_env)

    async def scenario() -> None:
        async with httpx.AsyncClient() as client:
            task = asyncio.create_task(AsyncEngine(engine, client).ask(REQUEST, AskOptions(kind="batch")))
            while not entered.is_set():
                await asyncio.sleep(0.01)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            leave.set()  # let the worker thread finish, so the loop can shut down

    try:
        asyncio.run(scenario())
    finally:
        leave.set()
    _assert_interrupted_and_released(isolated_env, guard)


@pytest.mark.e2e
def test_sigint_to_the_binary_waiting_on_a_slow_server(tmp_path, isolated_env):
    log = tmp_path / "requests.jsonl"
    with fake_server("openai", mode="slow:60000", log=log) as url:
        config = tmp_path / "cfg.yaml"
        config.write_text(
            "version: 1\ndefaults: {retries: 0}\nbudget: {daily: 5}\nproviders:\n"
            f"  slow:\n    type: openai\n    base_url: {url}/v1\n"
            "    models:\n      fake-model: {input: 1.0, output: 2.0}\n")
        process = subprocess.Popen([llmroute_binary(), "--config", str(config), "--no-stream", "hello"],
                                   stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   env={k: v for k, v in os.environ.items() if k != "LLMROUTE_DEBUG"})
        try:
            for _ in range(600):  # until the request reached the server (or the process ended)
                if (log.exists() and log.read_text().strip()) or process.poll() is not None:
                    break
                threading.Event().wait(0.05)
            assert process.poll() is None, process.communicate()
            process.send_signal(signal.SIGINT)
            out, err = process.communicate(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    assert process.returncode == 130, err.decode()
    assert out == b"" and b"interrupted" in err and b"Traceback" not in err
    records = _ledger(isolated_env)
    assert [(r["status"], r["error"], r["target"]) for r in records] == [("error", "interrupted", "slow/fake-model")]
    budget = json.loads((isolated_env / "state" / "budget.json").read_text())
    assert budget["reservations"] == {}
