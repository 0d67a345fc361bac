"""End to end: the installed binary against local fake servers (tests/fakeserver.py).

A's server answers with GOOD in the text, B's without; the judge is a third server that judges
by content (or, in `judge-first` mode, also says "A" for about 30% of prompts whatever they
hold). Also: `compare` over 5 one-second targets runs them concurrently, and `feedback`.
"""

from __future__ import annotations

import json
import time
from contextlib import ExitStack

from .support import fake_server, read_ledger, run_cli


def write_config(path, servers: dict[str, str], extra: str = ""):
    lines = ["version: 1", "providers:"]
    for name, url in servers.items():
        lines += [f"  {name}:", "    type: openai", f"    base_url: {url}/v1", "    models:",
                  "      m: {input: 0.5, output: 1.5}"]
    path.write_text("\n".join(lines) + "\n" + extra)
    return path


def run_abtest(tmp_path, reply_a: str, reply_b: str, judge_mode: str, n: int = 60):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("".join(f"question number {i}: explain item {i}\n" for i in range(n)))
    with ExitStack() as stack:
        servers = {"alpha": stack.enter_context(fake_server("openai", reply=reply_a)),
                   "beta": stack.enter_context(fake_server("openai", reply=reply_b)),
                   "judge": stack.enter_context(fake_server("openai", judge_mode, reply="not a verdict"))}
        config = write_config(tmp_path / "llmroute.yaml", servers)
        done = run_cli(["abtest", "run", "-a", "alpha/m", "-b", "beta/m", "--judge", "judge/m",
                        "--prompts", str(prompts), "-P", "8", "--name", "e2e", "--config", str(config)],
                       cwd=tmp_path)
        report = run_cli(["abtest", "report", "--name", "e2e", "--json"], cwd=tmp_path)
    return done, report


def test_abtest_names_the_better_target(tmp_path, isolated_env):
    done, report = run_abtest(tmp_path, "GOOD answer to {prompt}", "answer to {prompt}", "judge-content")
    out = done.stdout.decode()
    print(out)
    assert done.returncode == 0, done.stderr.decode()
    assert "verdict: A is better (p<0.001)" in out
    test = json.loads(report.stdout)["tests"][0]
    assert (test["a"]["wins"], test["a"]["losses"], test["judged"]) == (60, 0, 60)
    assert test["p_value"] < 0.05
    records = read_ledger(isolated_env)
    assert sum(r["kind"] == "abtest" for r in records) == 120 and sum(r["kind"] == "judge" for r in records) == 120


def test_abtest_equally_good_targets_show_no_difference(tmp_path, isolated_env):
    done, report = run_abtest(tmp_path, "GOOD answer to {prompt}", "GOOD reply to {prompt}", "judge-content")
    print(done.stdout.decode())
    assert done.returncode == 0, done.stderr.decode()
    assert "verdict: no significant difference yet (p=1)" in done.stdout.decode()
    assert json.loads(report.stdout)["tests"][0]["a"]["ties"] == 60


def test_a_judge_biased_to_the_first_answer_still_names_the_right_winner(tmp_path, isolated_env):
    done, report = run_abtest(tmp_path, "answer to {prompt}", "GOOD answer to {prompt}", "judge-first")
    out = done.stdout.decode()
    print(out)
    assert done.returncode == 0, done.stderr.decode()
    test = json.loads(report.stdout)["tests"][0]
    assert test["b"]["wins"] > 20 and test["b"]["losses"] == 0  # position bias became ties, never wins
    assert test["a"]["ties"] > 0
    assert test["p_value"] < 0.05 and "verdict: B is better" in out


def test_compare_five_slow_targets_runs_them_concurrently(tmp_path, isolated_env):
    with ExitStack() as stack:
        servers = {f"p{i}": stack.enter_context(fake_server("openai", reply=f"answer {i}", latency_ms=1000))
                   for i in range(5)}
        config = write_config(tmp_path / "llmroute.yaml", servers)
        started = time.monotonic()
        done = run_cli(["compare", "hello there", "--all", "--format", "json", "--config", str(config)], cwd=tmp_path)
        wall = time.monotonic() - started
    assert done.returncode == 0, done.stderr.decode()
    result = json.loads(done.stdout)
    print(f"compare of 5 one-second targets: {result['wall_ms']} ms inside, {wall:.2f} s for the whole process")
    assert [r["status"] for r in result["results"]] == ["ok"] * 5
    assert wall < 4 and result["wall_ms"] < 4000
    records = read_ledger(isolated_env)
    assert len(records) == 5 and {r["compare_id"] for r in records} == {result["compare_id"]}


def test_compare_table_and_exit_code_when_nothing_answers(tmp_path, isolated_env):
    with ExitStack() as stack:
        servers = {"ok": stack.enter_context(fake_server("openai", reply="fine answer")),
                   "bad": stack.enter_context(fake_server("openai", "error:500"))}
        config = write_config(tmp_path / "llmroute.yaml", servers)
        table = run_cli(["compare", "hi", "-t", "ok/m", "-t", "bad/m", "--config", str(config)], cwd=tmp_path)
        failed = run_cli(["compare", "hi", "-t", "bad", "--json", "--config", str(config)], cwd=tmp_path)
        unknown = run_cli(["compare", "hi", "-t", "nope/m", "--config", str(config)], cwd=tmp_path)
    out = table.stdout.decode()
    assert table.returncode == 0 and "ok/m" in out and "server_error" in out and "── ok/m ──\nfine answer" in out
    assert failed.returncode == 1 and json.loads(failed.stdout)["status"] == "error"
    assert unknown.returncode == 2 and b"unknown target 'nope/m'" in unknown.stderr


def test_feedback_on_the_last_answer_shows_in_the_report(tmp_path, isolated_env):
    with fake_server("openai", reply="hello back") as url:
        config = write_config(tmp_path / "llmroute.yaml", {"solo": url})
        asked = run_cli(["--config", str(config), "-m", "solo/m", "--json", "hi"], cwd=tmp_path)
    assert asked.returncode == 0, asked.stderr.decode()
    request_id = json.loads(asked.stdout)["request_id"]
    assert run_cli(["feedback", "last", "up"], cwd=tmp_path).returncode == 0
    assert run_cli(["feedback", request_id, "down"], cwd=tmp_path).returncode == 0
    assert run_cli(["feedback", "sideways"], cwd=tmp_path).returncode == 2
    assert run_cli(["feedback", "nope", "up"], cwd=tmp_path).returncode == 2
    report = run_cli(["abtest", "report"], cwd=tmp_path)
    assert "solo/m: 0 up, 1 down" in report.stdout.decode()


def _wait_for(predicate, what: str, seconds: float = 60.0):
    """Poll until `predicate()` gives something truthy (a bound, not a timing assertion)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"gave up waiting for {what}")


def test_sampled_ab_exits_with_the_answer_and_finishes_the_pair_in_the_background(tmp_path, isolated_env):
    from llmroute.budget.guard import pid_alive

    from .support import project_config

    beta_log = tmp_path / "beta.log"
    with ExitStack() as stack:
        servers = {"alpha": stack.enter_context(fake_server("openai", reply="GOOD answer")),
                   "beta": stack.enter_context(fake_server("openai", "slow:3000", reply="weak answer", log=beta_log)),
                   "judge": stack.enter_context(fake_server("openai", "judge-content"))}
        lines = ["version: 1", "defaults: {strategy: priority}", "providers:"]
        for name, url in servers.items():
            lines += [f"  {name}:", "    type: openai", f"    base_url: {url}/v1",
                      "    models:", "      m: {input: 0.5, output: 1.5}"]
        lines += ["routes:", "  default: [alpha/m]", "budget: {daily: 5}",
                  "abtest: {sample_rate: 1.0, min_tokens: 1, targets: [alpha/m, beta/m], judge: judge/m}"]
        project_config(tmp_path).write_text("\n".join(lines) + "\n")  # trusted: the worker must read it too
        # stdout and stderr are pipes read to EOF: a worker holding them would hold this call too.
        done = run_cli(["explain the difference between a list and a tuple"], cwd=tmp_path)
        assert done.returncode == 0, done.stderr.decode()
        assert done.stdout.decode() == "GOOD answer\n"
        # The user's process is gone while beta still holds its answer: only the routed record
        # exists, and the second call's reservation, made by the user's process, now belongs to
        # a live worker.
        records = read_ledger(isolated_env)
        assert [r["kind"] for r in records] == ["ask"]
        ab_id = records[0]["ab_id"]
        reservations = json.loads((isolated_env / "state" / "budget.json").read_text())["reservations"]
        [held] = reservations.values()
        assert held["target"] == "beta/m" and pid_alive(held["pid"])

        def finished():
            records = read_ledger(isolated_env)
            budget = json.loads((isolated_env / "state" / "budget.json").read_text())
            judged = sum(r["kind"] == "judge" for r in records) == 2
            return records if judged and not budget["reservations"] else None

        records = _wait_for(finished, "the background pair")
    assert sorted(r["kind"] for r in records) == ["abtest", "ask", "judge", "judge"]
    assert {r["ab_id"] for r in records} == {ab_id}
    [second] = [r for r in records if r["kind"] == "abtest"]
    assert second["target"] == "beta/m" and second["status"] == "ok"
    sent = [json.loads(line)["body"] for line in beta_log.read_text().splitlines()]
    assert [m["content"] for m in sent[0]["messages"]][-1] == "explain the difference between a list and a tuple"
    assert not list((isolated_env / "state" / "sampled").iterdir())  # the job file is gone
    report = json.loads(run_cli(["abtest", "report", "--json"], cwd=tmp_path).stdout)
    [test] = report["tests"]
    assert test["a"]["wins"] == 1  # alpha's GOOD answer won the judged pair
