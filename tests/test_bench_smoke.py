"""The benchmark suite runs in quick mode so it cannot rot. No timing assertions: only that
every script ran and reported the figures it is meant to report."""

from __future__ import annotations

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
    "difficulty": "difficulty scoring time",
    "budget": "budget check added by long ledger",
    "report": "report --month, first run",
    "batch": "batch throughput",
    "local": "local model tokens/s",
}


@pytest.mark.e2e
def test_bench_suite_quick_mode_reports_every_figure(tmp_path):
    scripts = [name for name in EXPECTED if name != "local" or local_available()]
    env = {**os.environ, "LLMROUTE_HOME": str(tmp_path / "home")}
    result = subprocess.run([sys.executable, "-m", "bench", "--quick", *scripts], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-2000:]
    for name in scripts:
        assert EXPECTED[name] in result.stdout, f"{name} reported nothing:\n{result.stdout}"
