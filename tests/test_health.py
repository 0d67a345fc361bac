"""Health: score, status rules, alert transitions, history pruning, breaker feed, deep records,
alert delivery and the CLI's output and exit codes. Clocks are injected; nothing sleeps."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from llmroute import health
from llmroute.config.model import AlertsConfig, Config, ModelConfig, ProviderConfig
from llmroute.engine import Engine
from llmroute.errors import ErrorClass, ProviderError, UsageError
from llmroute.health import (HealthChecker, HealthHistory, Outcome, Sample, Stats, classify,
                             exit_code, health_score, latency_score, prune, select, stats_for,
                             transition)
from llmroute.keys import KeyStore
from llmroute.paths import Paths
from llmroute.types import Result, Target, Usage
from .support import project_config, invoke

HOUR = 3600.0


class Clock:
    def __init__(self, now: float = 1_800_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


class ThreadClock:
    """A monotonic clock per thread: each probe thread advances only its own time."""

    def __init__(self):
        self.local = threading.local()

    def __call__(self) -> float:
        return getattr(self.local, "now", 0.0)

    def advance(self, seconds: float) -> None:
        self.local.now = self() + seconds


class StubProvider:
    """Answers a probe after `latency_s` (on the thread clock) or raises `error`."""

    def __init__(self, clock: ThreadClock, latency_s: float = 0.05, error: ProviderError | None = None):
        self.clock, self.latency_s, self.error = clock, latency_s, error
        self.calls: list[str] = []

    def _call(self, what: str):
        self.calls.append(what)
        self.clock.advance(self.latency_s)
        if self.error is not None:
            raise self.error

    def probe(self, *, timeout: float) -> list[str]:
        self._call("probe")
        return ["m"]

    def complete(self, request, model, *, timeout: float) -> Result:
        self._call(f"complete {model} max_tokens={request.max_tokens}")
        return Result("p", Usage(3, 1))

    def redact(self, text: str) -> str:
        return text.replace("sk-secret", "[REDACTED]")


def provider(name: str, type_: str = "mock", **extra) -> ProviderConfig:
    models = extra.pop("models", {"m": ModelConfig("m", input=1.0, output=2.0)})
    return ProviderConfig(name=name, type=type_, models=models, **extra)


class World:
    """An engine over `providers`, stub providers by name, recorded alerts, a wall clock."""

    def __init__(self, tmp_path: Path, providers: list[ProviderConfig], stubs: dict, env=None,
                 alerts: AlertsConfig = AlertsConfig()):
        self.clock = Clock()
        self.mono = ThreadClock()
        config = Config(providers={p.name: p for p in providers}, alerts=alerts)
        self.engine = Engine(config, paths=Paths(tmp_path, tmp_path), keys=KeyStore(env or {}),
                             clock=self.clock)
        self.stubs = stubs
        self.alerts: list[tuple[str, str, dict]] = []
        self.checker = HealthChecker(self.engine, alert=lambda *a: self.alerts.append(a),
                                     provider_for=lambda name: self.stubs[name], monotonic=self.mono)

    def run(self, names=(), deep=False):
        return {r.provider: r for r in self.checker.run(select(self.engine, names), deep=deep)}

    def breaker(self, target: str) -> str:
        return self.engine.memory.snapshot().breaker(target).state


def refused() -> ProviderError:
    return ProviderError(ErrorClass.CONNECTION, "ConnectError: [Errno 111] Connection refused sk-secret")


# --- pure rules ---------------------------------------------------------------------------


def test_latency_score_is_100_fast_0_slow_and_logarithmic_between():
    assert latency_score(100) == latency_score(300) == 100.0
    assert latency_score(10_000) == latency_score(60_000) == 0.0
    middle = (300 * 10_000) ** 0.5  # the geometric midpoint scores exactly 50
    assert latency_score(middle) == pytest.approx(50.0)
    assert latency_score(None) == 0.0
    assert latency_score(1000) > latency_score(2000) > latency_score(5000)


def test_health_score_weights_uptime_40_latency_30_errors_30():
    assert health_score(Stats(10, 1.0, 0.0, 200)) == 100
    assert health_score(Stats(10, 0.0, 1.0, None)) == 0
    assert health_score(Stats(10, 1.0, 0.0, None)) == 70  # no answered probe: latency scores 0
    assert health_score(Stats(10, 0.5, 0.5, 10_000)) == 35  # 20 + 0 + 15
    assert health_score(Stats(4, 0.75, 0.25, 1732)) == round(30 + 0.3 * latency_score(1732) + 22.5)
    assert health_score(Stats(0, None, None, None)) is None


def test_status_rules():
    calm = Stats(10, 1.0, 0.0, 100)
    assert classify(Outcome(False, 5, "connection"), calm, deep=False) == "down"
    assert classify(Outcome(True, 150), calm, deep=False) == "up"
    assert classify(Outcome(True, 2001), calm, deep=False) == "degraded"
    assert classify(Outcome(True, 2001), calm, deep=True) == "up"  # deep answers may take longer
    assert classify(Outcome(True, 5001), calm, deep=True) == "degraded"
    flaky = Stats(10, 0.7, 0.3, 100)
    assert classify(Outcome(True, 100), flaky, deep=False) == "degraded"
    assert classify(Outcome(True, 100), Stats(10, 0.8, 0.2, 100), deep=False) == "up"  # not above 20%
    assert classify(Outcome(True, 100), Stats(2, 0.5, 0.5, 100), deep=False) == "up"  # too few samples


def test_transitions_fire_on_change_only():
    assert transition("p", None, "up") is None
    assert transition("p", None, "down").kind == "down"
    assert transition("p", "up", "degraded").kind == "degraded"
    assert transition("p", "down", "degraded").kind == "degraded"
    assert transition("p", "down", "up").kind == "recovered"
    assert transition("p", "degraded", "up").kind == "recovered"
    assert transition("p", "down", "down") is None
    assert transition("p", "degraded", "degraded") is None


def test_prune_drops_entries_older_than_24h_and_bounds_the_count(monkeypatch):
    now = 100 * HOUR
    samples = [Sample(now - 25 * HOUR, "down", 1, False), Sample(now - 23 * HOUR, "up", 2, True),
               Sample(now, "up", 3, True)]
    assert [s.latency_ms for s in prune(samples, now)] == [2, 3]
    many = [Sample(now - i, "up", i, True) for i in range(health.MAX_HISTORY + 50)]
    kept = prune(many, now)
    assert len(kept) == health.MAX_HISTORY and kept[-1].ts == now  # the newest are kept, in order


def test_stats_uptime_is_time_weighted_error_rate_counts_p95_nearest_rank():
    # down for the first hour, then a burst of 4 quick up probes: uptime is about half the
    # time, while 1 of 5 probes failed.
    t = 0.0
    samples = [Sample(t, "down", 10, False), Sample(t + HOUR, "up", 100, True)] + [
        Sample(t + HOUR + i, "up", 100 * (i + 1), True) for i in range(1, 4)]
    stats = stats_for(samples)
    assert stats.error_rate == pytest.approx(0.2)
    assert stats.uptime == pytest.approx((HOUR / 2 + 3) / (HOUR + 3))  # count-based would say 0.8
    assert stats.p95_ms == 400  # answered latencies 100, 200, 300, 400: nearest rank
    assert stats_for([Sample(0, "up", 5, True), Sample(0, "down", 5, False)]).uptime == 0.5
    assert stats_for([]) == Stats(0, None, None, None)


def test_history_survives_damaged_entries_and_prunes_on_record(tmp_path):
    clock = Clock(200 * HOUR)
    store = tmp_path / "health.json"
    store.write_text(json.dumps({"providers": {"p": [
        "junk", [1, 2], [clock.now - 30 * HOUR, "up", 5, True], [clock.now - HOUR, "down", 7, False]]}}))
    recorded = HealthHistory(tmp_path, clock=clock).record({"p": (Outcome(True, 50), False)})
    assert recorded["p"].status == "up" and recorded["p"].change.kind == "recovered"
    kept = json.loads(store.read_text())["providers"]["p"]
    assert [e[1] for e in kept] == ["down", "up"] and recorded["p"].stats.samples == 2


# --- probe rounds ---------------------------------------------------------------------------


def test_round_reports_statuses_feeds_breakers_and_alerts_once_per_change(tmp_path):
    w = World(tmp_path, [provider("dead"), provider("slow"), provider("fine")], {})
    w.stubs = {"dead": StubProvider(w.mono, error=refused()), "slow": StubProvider(w.mono, 2.5),
               "fine": StubProvider(w.mono, 0.04)}
    rows = w.run()
    assert {n: r.status for n, r in rows.items()} == {"dead": "down", "slow": "degraded", "fine": "up"}
    assert rows["slow"].latency_ms == 2500 and rows["fine"].latency_ms == 40
    assert "[REDACTED]" in rows["dead"].error and "sk-secret" not in rows["dead"].error
    assert rows["dead"].error.startswith("connection: ConnectError")
    assert rows["dead"].circuit == "open" and w.breaker("dead/m") == "open"
    assert w.breaker("fine/m") == "closed" and rows["fine"].key_source == "not needed"
    assert sorted(a[0] for a in w.alerts) == ["degraded", "down"]
    assert exit_code(rows.values()) == 1

    w.clock.now += 60
    w.run()  # still down, still slow: no new alert
    assert len(w.alerts) == 2

    w.stubs["dead"].error = None
    w.stubs["slow"].latency_s = 0.1
    w.clock.now += 60
    rows = w.run()
    assert sorted(a[0] for a in w.alerts[2:]) == ["recovered", "recovered"]
    assert rows["dead"].status == "up" and w.breaker("dead/m") == "closed"  # up closed the open breaker
    assert rows["dead"].stats.samples == 3 and rows["dead"].stats.error_rate == pytest.approx(2 / 3)
    assert exit_code(rows.values()) == 0
    down_alert = next(a for a in w.alerts if a[0] == "down")
    assert down_alert[2]["provider"] == "dead" and "dead is down" in down_alert[1]


def test_up_does_not_touch_a_closed_breaker(tmp_path):
    w = World(tmp_path, [provider("fine")], {})
    w.stubs = {"fine": StubProvider(w.mono)}
    w.run()
    assert not (tmp_path / "state" / "routing.json").exists()
    assert (tmp_path / "state" / "health.json").exists()


def test_missing_key_is_reported_not_probed_and_not_down(tmp_path):
    keyed = provider("cloud", "openai", key_env="CLOUD_KEY")
    stub = StubProvider(ThreadClock())
    w = World(tmp_path, [keyed], {"cloud": stub})
    rows = w.run()
    assert rows["cloud"].status == "no key" and rows["cloud"].key_source == "none"
    assert stub.calls == [] and w.alerts == [] and exit_code(rows.values()) == 0

    w2 = World(tmp_path / "b", [keyed], {"cloud": StubProvider(ThreadClock())}, env={"CLOUD_KEY": "sk-x"})
    assert w2.run()["cloud"].key_source == "env"


def test_deep_sends_one_token_and_writes_a_health_record(tmp_path):
    w = World(tmp_path, [provider("fine"), provider("dead")], {})
    w.stubs = {"fine": StubProvider(w.mono, 0.2), "dead": StubProvider(w.mono, error=refused())}
    rows = w.run(deep=True)
    assert w.stubs["fine"].calls == ["complete m max_tokens=1"] and rows["fine"].deep
    records = {r["provider"]: r for r in map(json.loads, (tmp_path / "ledger.jsonl").read_text().splitlines())}
    ok, bad = records["fine"], records["dead"]
    assert ok["kind"] == "health" and ok["status"] == "ok" and ok["target"] == "fine/m"
    assert ok["input_tokens"] == 3 and ok["output_tokens"] == 1
    assert ok["cost_usd"] == pytest.approx((3 * 1.0 + 1 * 2.0) / 1e6) and ok["price_source"] == "config"
    assert bad["status"] == "error" and bad["error"] == "connection" and bad["cost_usd"] == 0.0
    assert "sk-secret" not in (tmp_path / "ledger.jsonl").read_text()


def test_unexpected_exception_is_down_not_a_crash(tmp_path):
    class Broken(StubProvider):
        def probe(self, *, timeout):
            raise RuntimeError("boom")

    w = World(tmp_path, [provider("odd")], {})
    w.stubs = {"odd": Broken(w.mono)}
    row = w.run()["odd"]
    assert row.status == "down" and row.error == "connection: RuntimeError: boom"


def test_select_named_targets_providers_and_unknown(tmp_path):
    two = provider("p", models={"a": ModelConfig("a"), "b": ModelConfig("b")})
    w = World(tmp_path, [two, provider("off", enabled=False)], {})
    assert [s.provider for s in select(w.engine, [])] == ["p"]  # disabled skipped by default
    assert select(w.engine, ["p/b", "p/b"])[0].targets == (Target("p", "b"),)
    assert select(w.engine, ["off"])[0].provider == "off"  # named explicitly: probed
    with pytest.raises(UsageError, match="unknown provider or target 'nope'"):
        select(w.engine, ["nope"])
    with pytest.raises(UsageError):
        select(w.engine, ["p/zzz"])


def test_named_target_trips_only_that_target(tmp_path):
    two = provider("p", models={"a": ModelConfig("a"), "b": ModelConfig("b")})
    w = World(tmp_path, [two], {})
    w.stubs = {"p": StubProvider(w.mono, error=refused())}
    row = w.run(["p/a"])["p"]
    assert w.breaker("p/a") == "open" and w.breaker("p/b") == "closed" and row.circuit == "open"
    assert w.run()["p"].circuit == "open"  # both targets probed now; both tripped


def test_failing_alert_is_a_warning(tmp_path):
    w = World(tmp_path, [provider("dead")], {})
    w.stubs = {"dead": StubProvider(w.mono, error=refused())}
    warnings = []

    def explode(*args):
        raise RuntimeError("hook down")

    w.checker.alert, w.checker.warn = explode, warnings.append
    assert w.run()["dead"].status == "down"
    assert warnings and "hook down" in warnings[0]


# --- alert delivery ---------------------------------------------------------------------------


def test_default_alerts_run_the_configured_command_once_per_change(tmp_path):
    out = tmp_path / "alert.txt"
    alerts = AlertsConfig(command=f'echo "$LLMROUTE_ALERT_KIND $LLMROUTE_ALERT_PROVIDER $LLMROUTE_ALERT_PREVIOUS" >> {out}')
    w = World(tmp_path, [provider("dead")], {}, alerts=alerts)
    w.stubs = {"dead": StubProvider(w.mono, error=refused())}
    w.checker = HealthChecker(w.engine, provider_for=w.stubs.__getitem__, monotonic=w.mono)
    w.run()
    w.clock.now += 60
    w.run()
    w.stubs["dead"].error = None
    w.clock.now += 60
    w.run()
    assert out.read_text().splitlines() == ["down dead ", "recovered dead down"]


def test_failing_alert_command_is_a_warning(tmp_path):
    w = World(tmp_path, [provider("dead")], {}, alerts=AlertsConfig(command="exit 3"))
    w.stubs = {"dead": StubProvider(w.mono, error=refused())}
    warnings = []
    w.checker = HealthChecker(w.engine, provider_for=w.stubs.__getitem__, monotonic=w.mono,
                              warn=warnings.append)
    assert w.run()["dead"].status == "down" and warnings == ["alert command exited 3"]


# --- CLI --------------------------------------------------------------------------------------


MOCK = ("version: 1\nproviders:\n  demo:\n    type: mock\n    models: {m: {}}\n"
        "  cloud:\n    type: openai\n    key_env: CLOUD_KEY\n    models: {gpt-4o-mini: {}}\n"
        "routes:\n  default: [demo]\n")


def test_cli_table_json_and_exit_zero(tmp_path, monkeypatch):
    project_config(tmp_path).write_text(MOCK)
    monkeypatch.chdir(tmp_path)
    code, out, err = invoke(["health"])
    assert code == 0, err
    header = out.splitlines()[0].split()
    assert header[:3] == ["provider", "status", "latency"] and "score" in header and header[-1] == "key"
    assert "demo" in out and "no key" in out
    code, out, _ = invoke(["health", "--json", "demo"])
    data = json.loads(out)
    assert code == 0 and [d["provider"] for d in data] == ["demo"]
    assert data[0]["status"] == "up" and data[0]["samples_24h"] == 2 and data[0]["circuit"] == "closed"
    code, _, err = invoke(["health", "nope"])
    assert code == 2 and "unknown provider or target 'nope'" in err


def test_cli_watch_repeats_plain_output_when_not_a_terminal(tmp_path, monkeypatch):
    from llmroute.cli import health_cmd

    project_config(tmp_path).write_text(MOCK)
    monkeypatch.chdir(tmp_path)
    waits = []

    def sleep(seconds):
        waits.append(seconds)
        if len(waits) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(health_cmd, "_sleep", sleep)
    code, out, err = invoke(["health", "--watch", "2", "--json", "demo"])
    assert code == 130 and waits == [2.0, 2.0]
    lines = out.splitlines()
    assert len(lines) == 2 and all(json.loads(line)[0]["provider"] == "demo" for line in lines)
    assert "\x1b[" not in out
    code, _, err = invoke(["health", "--watch", "0"])
    assert code == 2


def test_probes_run_concurrently(tmp_path):
    """Each stub waits for all three to be inside their probe at once: a serial loop would
    break the barrier and report every provider down."""
    barrier = threading.Barrier(3, timeout=5)

    class Waiting(StubProvider):
        def probe(self, *, timeout):
            barrier.wait()
            return super().probe(timeout=timeout)

    w = World(tmp_path, [provider("a"), provider("b"), provider("c")], {})
    w.stubs = {name: Waiting(w.mono) for name in "abc"}
    assert {r.status for r in w.run().values()} == {"up"}


def test_watch_clears_the_screen_only_on_a_terminal_table():
    from llmroute.cli.health_cmd import clears_screen

    class Stream:
        def __init__(self, tty):
            self.tty = tty

        def isatty(self):
            return self.tty

    assert clears_screen(5, False, Stream(True))
    assert not clears_screen(5, False, Stream(False))
    assert not clears_screen(5, True, Stream(True))
    assert not clears_screen(None, False, Stream(True))
