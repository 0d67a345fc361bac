"""End to end: 20 concurrent shell loops of the installed binary against a fake OpenAI provider
can never push recorded spend past the daily limit, and still use nearly all of it."""

from __future__ import annotations

import json
import subprocess

import pytest

from .support import fake_server, llmroute_binary, read_ledger, project_config

pytestmark = pytest.mark.e2e

PROCESSES, PROMPTS = 20, 10
# Prices: $0.0001 per input token, $0.001 per output token. Each prompt "p N-I" is estimated at
# 5 input tokens and the reply is 3 words = --max-tokens, so a call's worst case (reserved) is
# $0.0035 and its real cost at most that. The limit fits about 100 of the 200 calls.
WORST = 5 * 0.0001 + 3 * 0.001
LIMIT = round(100 * WORST, 6)


def test_concurrent_prompts_never_overshoot_the_daily_limit(tmp_path, isolated_env):
    with fake_server(reply="one two three") as url:
        project_config(tmp_path).write_text(
            "version: 1\ndefaults: {retries: 0}\nproviders:\n"
            f"  fake:\n    type: openai\n    base_url: {url}/v1\n"
            "    models:\n      fake-model: {input: 100, output: 1000}\n"
            "routes:\n  default: [fake]\n"
            f"budget:\n  daily: {LIMIT}\n  on_exhaust: block\n  alert_at: []\n")
        binary = llmroute_binary()
        script = (f'for i in 0 1 2 3 4 5 6 7 8 9; do "{binary}" --max-tokens 3 "p $1-$i" > /dev/null 2>> err-$1;'
                  f' echo $? >> codes-$1; done')
        workers = [subprocess.Popen(["sh", "-c", script, "sh", str(n)], cwd=tmp_path) for n in range(PROCESSES)]
        assert all(w.wait(timeout=600) == 0 for w in workers)
    codes = [int(c) for n in range(PROCESSES) for c in (tmp_path / f"codes-{n}").read_text().split()]
    assert len(codes) == PROCESSES * PROMPTS
    assert set(codes) <= {0, 4}, {c: codes.count(c) for c in set(codes)}
    records = read_ledger(isolated_env)
    ok = [r for r in records if r["status"] == "ok"]
    assert len(ok) == codes.count(0)
    spent = sum(r["cost_usd"] for r in ok)
    assert all(0 < r["cost_usd"] <= WORST + 1e-12 for r in ok)
    assert spent <= LIMIT + 1e-9
    assert spent >= 0.9 * LIMIT, f"only {spent / LIMIT:.0%} of the limit was used"
    errors = "".join((tmp_path / f"err-{n}").read_text() for n in range(PROCESSES))
    assert "blocked by budget: the daily" in errors and "Traceback" not in errors
    state = json.loads((isolated_env / "state" / "budget.json").read_text())
    assert state["reservations"] == {}  # every reservation was settled
