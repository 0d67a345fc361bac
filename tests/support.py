"""Helpers for end-to-end tests: start fake providers, run the installed `llmroute` binary."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

TESTS = Path(__file__).parent


def llmroute_binary() -> str:
    """The console script installed next to this interpreter (the one a user runs)."""
    candidate = Path(sys.executable).parent / "llmroute"
    if not candidate.exists():
        import pytest  # only here: benchmarks import this module without pytest installed

        pytest.skip("the llmroute console script is not installed (pip install -e .)")
    return str(candidate)


@contextmanager
def fake_server(fmt: str = "openai", mode: str = "ok", *, reply: str = "fake answer to: {prompt}",
                latency_ms: int = 0, log: Path | None = None, lifetime: float = 120.0,
                require_key: str | None = None) -> Iterator[str]:
    """Start tests/fakeserver.py; yield its base URL; stop it by PID. `require_key`: the server
    answers 401 to any request that does not carry that key."""
    args = [sys.executable, str(TESTS / "fakeserver.py"), "--format", fmt, "--mode", mode,
            "--reply", reply, "--latency-ms", str(latency_ms), "--lifetime", str(lifetime)]
    if log is not None:
        args += ["--log", str(log)]
    if require_key is not None:
        args += ["--require-key", require_key]
    process = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
    try:
        port = int(process.stdout.readline().strip())
        yield f"http://127.0.0.1:{port}"
    finally:
        process.kill()
        process.wait(timeout=10)


def refused_url() -> str:
    """A loopback URL where nothing listens: connections are refused at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def run_cli(args: list[str], *, input: str | bytes | None = None, env: dict | None = None,
            timeout: float = 60.0, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run the installed binary as a user would; stdin is a pipe (or /dev/null)."""
    full_env = {**os.environ, **(env or {})}
    full_env.pop("LLMROUTE_DEBUG", None)
    data = input.encode() if isinstance(input, str) else input
    return subprocess.run([llmroute_binary(), *args], input=data if data is not None else b"",
                          capture_output=True, timeout=timeout, env=full_env, cwd=cwd)


def read_ledger(home: Path) -> list[dict]:
    path = home / "ledger.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def write_config(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


class ProjectConfig:
    """A test's `./llmroute.yaml`, written as a user who then ran `llmroute config trust` has it
    (SPEC §1.1: a project config is read only once trusted). Trust is recorded in the data dir
    the test's `LLMROUTE_HOME` names."""

    def __init__(self, directory: Path):
        self.path = Path(directory) / "llmroute.yaml"

    def write_text(self, text: str) -> Path:
        self.path.write_text(text)
        return trust(self.path)

    def __fspath__(self) -> str:
        return str(self.path)

    def __str__(self) -> str:
        return str(self.path)


def project_config(directory: Path) -> ProjectConfig:
    return ProjectConfig(directory)


def trust(path: Path, home: Path | None = None) -> Path:
    """Record `path` as trusted in `home` (default: the test's `LLMROUTE_HOME`)."""
    import os

    from llmroute.config.trust import TrustStore

    TrustStore(home or Path(os.environ["LLMROUTE_HOME"])).trust(path)
    return path


def invoke(args: list[str], input: bytes | str | None = None) -> tuple[int, str, str]:
    """Run `llmroute ARGS` in this process through the real `main` wrapper (errors become their
    lines and exit codes): (exit code, stdout, stderr)."""
    from click.testing import CliRunner

    from llmroute.cli.main import main

    with CliRunner().isolation(input=input) as streams:
        try:
            main(args)
        except SystemExit as done:
            code = done.code if isinstance(done.code, int) else 1
        else:
            code = 0
    return code, streams[0].getvalue().decode(), streams[1].getvalue().decode()


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


@contextmanager
def serve_gateway(cwd: Path, *, env: dict | None = None, host: str = "127.0.0.1",
                  wait: float = 30.0) -> Iterator[str]:
    """Start `llmroute serve` in `cwd` on a free port; yield its base URL once `/health` answers;
    stop it by PID (SIGTERM, then SIGKILL after 10 s)."""
    import time
    import urllib.request

    port = free_port(host)
    full_env = {**os.environ, **(env or {})}
    process = subprocess.Popen([llmroute_binary(), "serve", "--host", host, "--port", str(port)],
                               cwd=cwd, env=full_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://{host}:{port}"
    try:
        deadline = time.monotonic() + wait
        while True:
            if process.poll() is not None:
                raise AssertionError(f"serve exited: {process.stderr.read().decode()}")
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        process.stderr.close()
