"""Team state on Redis (SPEC §15): what the shared budget and routing memory add per prompt, and
how many reserve/settle operations a loopback Redis takes from 32 processes.

Run: `python bench/team.py [--rounds R] [--ops N] [--quick]`. Starts its own `redis-server` on a
free loopback port (no persistence, a temporary directory), stopped by its PID at the end.

1. Per prompt, the budget's work as the engine does it (`plan_filter()` + `used_fraction()`,
   reserve, settle), R rounds: the local file budget vs the Redis budget. Goal: Redis adds
   <= 2 ms per prompt.
2. Per prompt, the routing memory's work (`snapshot()`, `claim_trial`, `record_success`):
   local `routing.json` vs the Redis memory.
3. 32 processes, each with its own guard (its own connection), doing N reserve + settle pairs
   against one limit high enough never to refuse: operations (a reserve or a settle) per second.
"""

from __future__ import annotations

import argparse
import multiprocessing
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.budget import CONFIG as LOCAL_CONFIG, TARGET  # noqa: E402
from bench.figures import emit  # noqa: E402
from llmroute.config.load import parse_config  # noqa: E402
from llmroute.paths import Paths  # noqa: E402

# The budget benchmark's config (the same limits, so both measure the same checks), shared.
CONFIG = LOCAL_CONFIG + "state: {backend: redis, namespace: bench}\n"
PROCESSES = 32


def start_redis(directory: Path) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    process = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(directory)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    return process, f"redis://127.0.0.1:{port}/0"
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("redis-server did not start")


def budget_prompt(guard) -> float:
    provider = guard.config.providers["openai"]
    started = time.perf_counter()
    guard.plan_filter()(TARGET, provider, 0.001, 1200)
    guard.used_fraction()
    handle = guard.reserve(TARGET, provider, 0.001, 1200)
    guard.settle(handle, 0.0004, 800)
    return (time.perf_counter() - started) * 1000


def memory_prompt(memory) -> float:
    started = time.perf_counter()
    memory.snapshot()
    memory.claim_trial(TARGET)
    memory.record_success(TARGET, 420.0, None, 800)
    return (time.perf_counter() - started) * 1000


def _p50(samples: list[float]) -> float:
    return statistics.median(samples)


def _worker(url: str, home: str, ops: int, ready, go, out) -> None:
    from llmroute.budget.redis_store import RedisBudgetGuard

    config = parse_config(CONFIG)
    guard = RedisBudgetGuard(config, Paths(data_dir=Path(home), config_dir=Path(home)), url=url,
                             warn=lambda message: None)
    provider = config.providers["openai"]
    ready.release()
    go.wait()
    for _ in range(ops):
        guard.settle(guard.reserve(TARGET, provider, 0.001, 1200), 0.0004, 800)
    out.put(ops * 2)


def throughput(url: str, tmp: Path, ops: int) -> float:
    context = multiprocessing.get_context("fork" if sys.platform == "linux" else "spawn")
    ready, go, out = context.Semaphore(0), context.Event(), context.Queue()
    workers = [context.Process(target=_worker, args=(url, str(tmp / f"w{i}"), ops, ready, go, out))
               for i in range(PROCESSES)]
    for w in workers:
        w.start()
    for _ in workers:
        ready.acquire()
    started = time.perf_counter()
    go.set()
    total = sum(out.get() for _ in workers)
    elapsed = time.perf_counter() - started
    for w in workers:
        w.join()
    return total / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--ops", type=int, default=200, help="reserve + settle pairs per process")
    parser.add_argument("--quick", action="store_true", help="50 rounds, 20 pairs per process")
    args = parser.parse_args()
    rounds, ops = (50, 20) if args.quick else (args.rounds, args.ops)
    if shutil.which("redis-server") is None:
        print("redis-server is not installed: nothing to measure", file=sys.stderr)
        raise SystemExit(1)
    from llmroute.budget.guard import BudgetGuard
    from llmroute.budget.redis_store import RedisBudgetGuard
    from llmroute.routing.memory import RoutingMemory
    from llmroute.routing.redis_memory import routing_memory_for

    config = parse_config(CONFIG)
    with tempfile.TemporaryDirectory(prefix="llmroute-bench-team-") as name:
        tmp = Path(name)
        process, url = start_redis(tmp)
        try:
            local_paths = Paths(data_dir=tmp / "local", config_dir=tmp / "local")
            team_paths = Paths(data_dir=tmp / "team", config_dir=tmp / "team")
            local = BudgetGuard(config, local_paths)
            shared = RedisBudgetGuard(config, team_paths, url=url, warn=lambda message: None)
            for guard in (local, shared):  # warm up: index, scripts loaded
                budget_prompt(guard)
            local_ms = _p50([budget_prompt(local) for _ in range(rounds)])
            redis_ms = _p50([budget_prompt(shared) for _ in range(rounds)])
            print(f"budget per prompt: local file p50 {local_ms:.2f} ms, Redis p50 {redis_ms:.2f} ms: "
                  f"{redis_ms - local_ms:+.2f} ms (goal <= +2 ms)")
            local_memory = RoutingMemory(local_paths.state_dir)
            redis_memory = routing_memory_for(config, team_paths, url=url, warn=print)
            for memory in (local_memory, redis_memory):
                memory_prompt(memory)
            local_mem_ms = _p50([memory_prompt(local_memory) for _ in range(rounds)])
            redis_mem_ms = _p50([memory_prompt(redis_memory) for _ in range(rounds)])
            print(f"routing memory per prompt: local file p50 {local_mem_ms:.2f} ms, Redis p50 "
                  f"{redis_mem_ms:.2f} ms: {redis_mem_ms - local_mem_ms:+.2f} ms")
            rate = throughput(url, tmp, ops)
            print(f"{PROCESSES} processes: {rate:,.0f} reserve/settle operations per second")
        finally:
            process.kill()
            process.wait(timeout=10)
    emit("budget per prompt, local file (p50)", local_ms, "ms")
    emit("budget per prompt, Redis (p50)", redis_ms, "ms")
    emit("Redis budget overhead per prompt", redis_ms - local_ms, "ms", "<= +2 ms")
    emit("routing memory per prompt, local (p50)", local_mem_ms, "ms")
    emit("routing memory per prompt, Redis (p50)", redis_mem_ms, "ms")
    emit(f"reserve/settle ops/s, {PROCESSES} processes", rate, "ops/s")


if __name__ == "__main__":
    main()
