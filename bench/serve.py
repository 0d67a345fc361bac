"""`llmroute serve` overhead: the latency it adds per request over calling the fake provider
directly (p50, goal <= 3 ms), requests/s with 64 concurrent clients against a provider answering
in 100 ms (goal >= 300/s on 2 cores), the gateway's CPU time per request under that load (less
sensitive than wall time to other work on a shared machine), and its peak memory (VmHWM)."""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import AsyncExitStack
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from bench.figures import emit  # noqa: E402
from tests.support import fake_server, project_config, serve_gateway  # noqa: E402

BODY = {"model": "default", "messages": [{"role": "user", "content": "hello there"}]}


async def latencies(url: str, n: int) -> list[float]:
    async with httpx.AsyncClient(timeout=30) as client:
        out = []
        for _ in range(n):
            started = time.perf_counter()
            response = await client.post(url, json=BODY)
            response.raise_for_status()
            out.append(time.perf_counter() - started)
        return out


async def throughput(url: str, total: int, clients: int) -> float:
    """Requests/s from `clients` concurrent clients, each its own `httpx.AsyncClient` with one
    connection, as separate tools would be: one shared client with 64 connections tops out near
    90 requests/s in its own pool (DESIGN.md, "Many requests at once") and would measure itself."""
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    queue = list(range(total))

    async def worker(client: httpx.AsyncClient) -> None:
        while queue:
            queue.pop()
            (await client.post(url, json=BODY)).raise_for_status()

    async with AsyncExitStack() as stack:
        pool = [await stack.enter_async_context(httpx.AsyncClient(timeout=60, limits=limits))
                for _ in range(clients)]
        started = time.perf_counter()
        await asyncio.gather(*(worker(client) for client in pool))
        return total / (time.perf_counter() - started)


def peak_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used so far (/proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def gateway_pid(base: str) -> int:
    port = base.rsplit(":", 1)[1]
    found = subprocess.run(["pgrep", "-n", "-f", f"serve --host 127.0.0.1 --port {port}"],
                           capture_output=True, text=True).stdout.split()
    return int(found[0])


def config(directory: Path, url: str) -> None:
    project_config(directory).write_text(
        "version: 1\ndefaults: {retries: 0}\nproviders:\n  fake:\n    type: openai\n"
        f"    base_url: {url}/v1\n    models:\n      fake-model: {{input: 1.0, output: 2.0}}\n"
        "routes:\n  default: [fake]\n")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    n, total = (30, 128) if args.quick else (300, 1500)
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        os.environ["LLMROUTE_HOME"] = str(directory / "home")
        env = {"FAKE_API_KEY": "k"}
        with fake_server("openai", reply="ok") as url:
            config(directory, url)
            direct = asyncio.run(latencies(f"{url}/v1/chat/completions", n))
            with serve_gateway(directory, env=env) as base:
                via = asyncio.run(latencies(f"{base}/v1/chat/completions", n))
        added = (statistics.median(via) - statistics.median(direct)) * 1000
        emit("serve added latency p50", added, "ms", "<= 3")
        with fake_server("openai", reply="ok", latency_ms=100) as url:
            config(directory, url)
            with serve_gateway(directory, env=env) as base:
                pid = gateway_pid(base)
                before = cpu_seconds(pid)
                rate = asyncio.run(throughput(f"{base}/v1/chat/completions", total, 64))
                cpu = cpu_seconds(pid) - before
                peak = peak_kib(pid)
        emit("serve requests/s, 64 clients, 100 ms provider", rate, "req/s", ">= 300")
        emit("serve CPU per request, 64 clients", cpu / total * 1000, "ms")
        emit("serve peak memory", peak / 1024, "MiB")


if __name__ == "__main__":
    main()
