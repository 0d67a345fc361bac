"""The benchmark suite runs in quick mode so it cannot rot. No timing assertions: only that
every script ran and reported the figures it is meant to report."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from llmroute.providers.local import local_available

ROOT = Path(__file__).resolve().parent.parent

EXPECTED = {
    "startup": "cold start: llmroute --help",
    "e2e": "piped prompt ratio llmroute/minimal",
    "route": "planning time per prompt",
    "route_eval": "route APGR sealed set, prior (difficulty), all",
    "difficulty": "difficulty scoring time",
    "budget": "budget check added by long ledger",
    "report": "report --month, first run",
    "batch": "batch throughput",
    "local": "local model tokens/s",
    "serve": "serve requests/s, 64 clients",
}


def _runnable(name: str) -> bool:
    if name == "local":
        return local_available()
    if name == "serve":  # needs the [serve] extra
        return all(importlib.util.find_spec(module) for module in ("starlette", "uvicorn"))
    return True


@pytest.mark.e2e
def test_bench_suite_quick_mode_reports_every_figure(tmp_path):
    scripts = [name for name in EXPECTED if _runnable(name)]
    env = {**os.environ, "LLMROUTE_HOME": str(tmp_path / "home")}
    result = subprocess.run([sys.executable, "-m", "bench", "--quick", *scripts], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-2000:]
    for name in scripts:
        assert EXPECTED[name] in result.stdout, f"{name} reported nothing:\n{result.stdout}"
