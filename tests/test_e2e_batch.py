"""End to end: the installed binary runs `batch` against the fake OpenAI server."""

from __future__ import annotations

import json

from .support import fake_server, project_config, read_ledger, run_cli


def test_two_hundred_prompts_at_p16_come_back_in_order_with_one_record_each(tmp_path, isolated_env):
    log = tmp_path / "server.jsonl"
    with fake_server("openai", latency_ms=100, reply="answer to: {prompt}", log=log) as url:
        config = project_config(tmp_path)
        config.write_text(f"""version: 1
providers:
  fake:
    type: openai
    base_url: {url}/v1
    models:
      m1: {{input: 0.10, output: 0.20}}
routes:
  default: [fake/m1]
""")
        prompts = "".join(f"prompt number {i}\n" for i in range(200))
        result = run_cli(["batch", "-", "-P", "16"], input=prompts, env={"LLMROUTE_HOME": str(isolated_env)},
                         cwd=tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr.decode()
    assert result.stderr == b""  # not a terminal: no progress bar
    rows = [json.loads(line) for line in result.stdout.decode().splitlines()]
    assert [r["id"] for r in rows] == list(range(1, 201))
    assert all(r["error"] is None and r["target"] == "fake/m1" for r in rows)
    assert all(r["text"] == f"answer to: prompt number {i}" for i, r in enumerate(rows))
    records = read_ledger(isolated_env)
    assert len(records) == 200 and {r["kind"] for r in records} == {"batch"}
    assert {r["status"] for r in records} == {"ok"} and len({r["request_id"] for r in records}) == 200
    assert len(log.read_text().splitlines()) == 200  # one call per prompt, no retries
