"""SPEC §15: several machines (data homes) share one budget on a real Redis.

Each test module run starts `redis-server` on a free loopback port with `--save ''` (no RDB
snapshots) and `--appendonly yes --appendfsync always`: every write is in the append-only file
before Redis answers it, which is what lets a restarted Redis still hold every settled amount.
The server is stopped by its PID.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from .support import fake_server, llmroute_binary, read_ledger, run_cli

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server not installed")

# $0.0001/input token, $0.001/output token: "p N-I" is ~5 input tokens, the reply 3 words =
# --max-tokens 3, so each call reserves (and at most costs) $0.0035.
WORST = 5 * 0.0001 + 3 * 0.001


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    def __init__(self, directory: Path):
        self.dir, self.port, self.process = directory, _free_port(), None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "yes", "--appendfsync", "always", "--dir", str(self.dir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def kill(self) -> None:
        """Stop it the hard way (SIGKILL): only what the append-only file holds survives."""
        if self.process is not None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
            self.process = None

    def client(self):
        import redis

        return redis.Redis.from_url(self.url)


@pytest.fixture
def redis_server(tmp_path):
    server = RedisServer(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.kill()


def _config(directory: Path, provider_url: str, limit: float, *, namespace: str = "team-a",
            redis: str | None = None) -> Path:
    state = f"state:\n  backend: redis\n  url_env: TEAM_REDIS\n  namespace: {namespace}\n"
    if redis is not None:
        state += f"  url: {redis}\n"
    path = directory / "llmroute.yaml"
    path.write_text(
        "version: 1\ndefaults: {retries: 0}\nproviders:\n"
        f"  fake:\n    type: openai\n    base_url: {provider_url}/v1\n"
        "    models:\n      fake-model: {input: 100, output: 1000}\n"
        "routes:\n  default: [fake]\n"
        f"budget:\n  daily: {limit}\n  on_exhaust: block\n  alert_at: []\n" + state)
    return path


def _machine(tmp_path: Path, name: str) -> dict:
    home = tmp_path / name
    home.mkdir()
    return {"LLMROUTE_HOME": str(home)}


def _ask(config: Path, env: dict, prompt: str) -> subprocess.CompletedProcess:
    return run_cli(["--config", str(config), "--max-tokens", "3", prompt], env=env, timeout=120)


def test_state_section_is_validated_and_a_password_in_the_url_is_refused():
    from llmroute.config.load import parse_config
    from llmroute.errors import ConfigError

    config = parse_config("state: {backend: redis, url: 'redis://10.0.0.5:6379/2', namespace: team-a}\n")
    assert (config.state.backend, config.state.url, config.state.namespace) == ("redis", "redis://10.0.0.5:6379/2", "team-a")
    assert parse_config("version: 1\n").state.backend == "local"
    with pytest.raises(ConfigError) as refused:
        parse_config("state: {backend: redis, url: 'redis://:hunter2@10.0.0.5:6379/0'}\n")
    text = "\n".join(refused.value.lines())
    assert "url_env" in text and "keyring" in text.replace("keys set", "keyring") and "hunter2" not in text
    with pytest.raises(ConfigError):
        parse_config("state: {backend: memcached}\n")
    with pytest.raises(ConfigError):
        parse_config("state: {backend: redis, namespace: 'a b'}\n")


def test_three_machines_share_one_limit(tmp_path, redis_server):
    machines, processes, prompts = 3, 4, 6
    limit = round(machines * processes * prompts * WORST / 2, 6)  # fits about half the prompts
    env_redis = {"TEAM_REDIS": redis_server.url}
    binary = llmroute_binary()
    with fake_server(reply="one two three") as url:
        config = _config(tmp_path, url, limit)
        workers = []
        for m in range(machines):
            env = {**os.environ, **_machine(tmp_path, f"m{m}"), **env_redis}
            for p in range(processes):
                script = (f'for i in $(seq 1 {prompts}); do "{binary}" --config "{config}" --max-tokens 3 '
                          f'"p $1-$i" > /dev/null 2>> err-$1; echo $? >> codes-$1; done')
                workers.append(subprocess.Popen(["sh", "-c", script, "sh", f"{m}-{p}"], cwd=tmp_path, env=env))
        assert all(w.wait(timeout=600) == 0 for w in workers)
    codes = [int(c) for f in tmp_path.glob("codes-*") for c in f.read_text().split()]
    errors = "".join(f.read_text() for f in tmp_path.glob("err-*"))
    assert len(codes) == machines * processes * prompts and set(codes) <= {0, 4}, errors
    ok = [r for m in range(machines) for r in read_ledger(tmp_path / f"m{m}") if r["status"] == "ok"]
    assert len(ok) == codes.count(0)
    assert {r["host"] for r in ok} == {socket.gethostname()}
    spent = sum(r["cost_usd"] for r in ok)
    assert spent <= limit + 1e-9
    assert spent >= 0.9 * limit, f"only {spent / limit:.0%} of the limit was used"
    assert "blocked by budget: the daily" in errors and "Traceback" not in errors
    client = redis_server.client()
    assert client.hlen("team-a:budget:res") == 0  # every reservation was settled
    status = json.loads(run_cli(["budget", "--json", "--config", str(config)],
                                env={**_machine(tmp_path, "viewer"), **env_redis}).stdout)
    assert abs(status["spent"]["daily"]["usd"] - spent) < 1e-9
    assert status["shared"] == {"backend": "redis", "url": redis_server.url, "namespace": "team-a"}


def test_redis_down_fails_closed_before_any_provider_call(tmp_path):
    port = _free_port()  # nothing listens there
    log = tmp_path / "requests.jsonl"
    with fake_server(reply="one two three", log=log) as url:
        config = _config(tmp_path, url, 1.0)
        env = {**_machine(tmp_path, "m0"), "TEAM_REDIS": f"redis://ops:s3cret@127.0.0.1:{port}/0"}
        result = _ask(config, env, "hello")
    errors = result.stderr.decode()
    assert result.returncode == 4, errors
    assert "Redis" in errors and f"redis://127.0.0.1:{port}/0" in errors and "s3cret" not in errors
    assert not log.exists() or log.read_text() == ""


def test_a_restarted_redis_still_holds_the_limit(tmp_path, redis_server):
    env = {**_machine(tmp_path, "m0"), "TEAM_REDIS": redis_server.url}
    with fake_server(reply="one two three") as url:
        config = _config(tmp_path, url, round(3 * WORST, 6))
        codes = [_ask(config, env, f"p {i}").returncode for i in range(4)]
        assert codes == [0, 0, 0, 4]
        redis_server.kill()
        assert _ask(config, env, "while down").returncode == 4
        redis_server.start()
        blocked = _ask(config, {**_machine(tmp_path, "m1"), "TEAM_REDIS": redis_server.url}, "after restart")
    assert blocked.returncode == 4 and "blocked by budget" in blocked.stderr.decode()


def test_namespaces_keep_two_teams_apart(tmp_path, redis_server):
    env = {**_machine(tmp_path, "m0"), "TEAM_REDIS": redis_server.url}
    with fake_server(reply="one two three") as url:
        (tmp_path / "a").mkdir()
        (tmp_path / "b").mkdir()
        a = _config(tmp_path / "a", url, round(WORST, 6))
        b = _config(tmp_path / "b", url, round(WORST, 6), namespace="team-b")
        assert [_ask(a, env, f"a {i}").returncode for i in range(2)] == [0, 4]
        assert [_ask(b, env, f"b {i}").returncode for i in range(2)] == [0, 4]


# --- the guard itself, against the same real Redis ------------------------------------------------

def _guard(tmp_path: Path, redis_server, limit: float, alert_at: str = "[]", **kwargs):
    from llmroute.budget.redis_store import RedisBudgetGuard
    from llmroute.config.load import parse_config
    from llmroute.paths import Paths

    config = parse_config(
        "providers:\n  fake:\n    type: openai\n    base_url: http://127.0.0.1:9/v1\n"
        "    models:\n      fake-model: {input: 100, output: 1000}\n"
        f"budget: {{daily: {limit}, alert_at: {alert_at}}}\nstate: {{backend: redis, namespace: t}}\n")
    paths = Paths.from_env({"LLMROUTE_HOME": str(tmp_path / "home")})
    kwargs.setdefault("warn", lambda m: None)
    guard = RedisBudgetGuard(config, paths, url=redis_server.url, **kwargs)
    target = config.all_targets()[0]
    return guard, target, config.providers[target.provider]


def test_settle_counts_once_and_an_expired_reservation_frees_itself(tmp_path, redis_server):
    guard, target, provider = _guard(tmp_path, redis_server, 1.0, ttl=1.0)
    handle = guard.reserve(target, provider, 0.6, 10)
    assert handle is not None
    assert guard.reserve(target, provider, 0.6, 10) is None  # 0.6 reserved + 0.6 > 1.0
    guard.settle(handle, 0.25, 10)
    guard.settle(handle, 0.25, 10)  # a repeated settle counts nothing
    assert guard.snapshot().totals["daily"].usd == pytest.approx(0.25)
    abandoned = guard.reserve(target, provider, 0.7, 10)  # its process is "killed": never settled
    assert abandoned is not None and guard.reserve(target, provider, 0.7, 10) is None
    deadline = time.monotonic() + 30
    while guard.reserve(target, provider, 0.7, 10) is None:
        assert time.monotonic() < deadline, "the abandoned reservation never expired"
        time.sleep(0.2)
    assert guard.snapshot().reserved.count == 1


def test_alerts_fire_once_when_crossed_on_the_shared_budget(tmp_path, redis_server):
    fired = []
    guard, target, provider = _guard(tmp_path, redis_server, 1.0, alert_at="[0.5]", warn=fired.append)
    guard.settle(guard.reserve(target, provider, 0.3, 10), 0.3, 10)
    assert fired == []  # under every alert fraction: nothing due
    guard.settle(guard.reserve(target, provider, 0.3, 10), 0.3, 10)
    guard.settle(guard.reserve(target, provider, 0.1, 10), 0.1, 10)
    assert len(fired) == 1 and "50%" in fired[0]  # crossed once, fired once


def test_seed_from_ledger_adds_this_machines_spend_once(tmp_path, redis_server):
    from llmroute.ledger import ledger_path

    guard, target, provider = _guard(tmp_path, redis_server, 5.0)
    ledger = ledger_path(guard.config, Paths_of(tmp_path))
    ledger.parent.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
    line = {"v": 1, "ts": stamp, "request_id": "r1", "kind": "ask", "target": target.id,
            "provider": "fake", "model": "fake-model", "status": "ok", "input_tokens": 10,
            "output_tokens": 20, "cost_usd": 1.5, "price_source": "config", "cached": False}
    ledger.write_text(json.dumps(line) + "\n")
    assert guard.seed_from_ledger() > 0
    assert guard.seed_from_ledger() == 0
    assert guard.snapshot().totals["daily"].usd == pytest.approx(1.5)
    handle = guard.reserve(target, provider, 0.5, 30)  # a call settled here after seeding ...
    guard.settle(handle, 0.5, 30)
    with ledger.open("a") as f:
        f.write(json.dumps({**line, "request_id": "r2", "cost_usd": 0.5}) + "\n")
    assert guard.seed_from_ledger() == 0  # ... is not added a second time by a later seed
    assert guard.snapshot().totals["daily"].usd == pytest.approx(2.0)


def Paths_of(tmp_path: Path):
    from llmroute.paths import Paths

    return Paths.from_env({"LLMROUTE_HOME": str(tmp_path / "home")})
