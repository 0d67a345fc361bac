"""Unwritable files (issue 13, SPEC §5): a ledger that cannot be written after a paid call keeps
the answer (exit 0 unless `ledger.required`), leaves no torn line and no open reservation; a data
directory or ledger that cannot be written at all is refused before any provider is called.

Tests run as root, where `chmod 0500` does not stop a write, so unwritable places are made the
ways that stop root too: a path whose parent is a file (ENOTDIR), an injected `os.write` that fails
like a full disk, and — when this machine lets the test mount one — a real read-only or full
tmpfs (those tests skip cleanly otherwise)."""

from __future__ import annotations

import errno
import functools
import json
import os
import subprocess
from contextlib import contextmanager
from pathlib import Path

import pytest

import llmroute.engine as engine_module
from llmroute.budget.guard import BudgetGuard
from llmroute.config.load import parse_config
from llmroute.engine import AskOptions, Engine
from llmroute.keys import KeyStore
from llmroute.ledger import Ledger, LedgerWriteError
from llmroute.paths import Paths
from llmroute.types import Message, Request

from .support import fake_server, run_cli, invoke

CONFIG = """\
version: 1
defaults: {strategy: priority, retries: 0}
providers:
  demo:
    type: mock
    reply: "echo: {prompt}"
    models:
      small: {input: 1.0, output: 2.0}
routes:
  default: [demo/small]
budget:
  daily: 5
"""


def disk_full(fd, data):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def half_then_full():
    """Writes part of the first record, then fails: the torn-line case."""
    calls = [0]

    def write(fd, data):
        calls[0] += 1
        if calls[0] == 1:
            return os.write(fd, bytes(data[: max(1, len(data) // 2)]))
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    return write


def open_reservations(home: Path) -> dict:
    path = home / "state" / "budget.json"
    return json.loads(path.read_text()).get("reservations", {}) if path.exists() else {}


@pytest.fixture
def config_file(tmp_path):
    def write(extra: str = "") -> str:
        path = tmp_path / "cfg.yaml"
        path.write_text(CONFIG + extra)
        return str(path)

    return write


@pytest.fixture
def full_ledger(monkeypatch):
    """From now on the engine's ledger writes fail like a full disk (after half a line)."""
    monkeypatch.setattr(engine_module, "Ledger", functools.partial(Ledger, write=half_then_full()))


# --- the ledger fails after a paid call (disk full) -----------------------------------------------


def test_engine_keeps_the_answer_and_settles_when_the_ledger_cannot_be_written(isolated_env, full_ledger):
    config = parse_config(CONFIG)
    paths = Paths(isolated_env, isolated_env)
    warnings: list[str] = []
    guard = BudgetGuard(config, paths)
    engine = Engine(config, paths=paths, keys=KeyStore({}), budget=guard, warn=warnings.append)
    request = Request(messages=(Message("user", "hello"),), max_tokens=16)
    answer = engine.ask(request, AskOptions())
    assert answer.text == "echo: hello" and answer.cost_usd > 0
    assert len(warnings) == 1 and "No space left on device" in warnings[0]
    assert isinstance(engine.ledger_error, OSError)
    assert guard.store.read()["reservations"] == {}  # settled: nothing half-reserved
    assert (isolated_env / "ledger.jsonl").read_bytes() == b""  # the half line was taken back
    engine.check_ledger()  # not required: not an error


def test_with_ledger_required_the_engine_reports_it_after_the_answer(isolated_env, full_ledger):
    config = parse_config(CONFIG + "ledger: {required: true}\n")
    warnings: list[str] = []
    engine = Engine(config, paths=Paths(isolated_env, isolated_env), keys=KeyStore({}), warn=warnings.append)
    answer = engine.ask(Request(messages=(Message("user", "hello"),), max_tokens=16), AskOptions())
    assert answer.text == "echo: hello" and warnings == []
    with pytest.raises(LedgerWriteError) as failure:
        engine.check_ledger()
    assert int(failure.value.exit_code) == 1 and "ledger.required" in failure.value.hint


@pytest.mark.parametrize("args, expected", [
    (["hello"], "echo: hello\n"),
    (["--stream", "hello"], "echo: hello\n"),
])
def test_disk_full_after_a_paid_call_still_prints_the_answer(config_file, isolated_env, args, expected):
    code, out, err = invoke(["--config", config_file(), "warm up"])
    assert code == 0, err
    before = (isolated_env / "ledger.jsonl").read_bytes()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(engine_module, "Ledger", functools.partial(Ledger, write=half_then_full()))
        code, out, err = invoke(["--config", config_file(), *args])
    assert code == 0, err
    assert out == expected
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "could not write the ledger" in lines[0] and "No space left on device" in lines[0]
    assert "internal error" not in err
    assert (isolated_env / "ledger.jsonl").read_bytes() == before  # no torn line
    assert open_reservations(isolated_env) == {}


def test_disk_full_with_ledger_required_prints_the_answer_and_exits_1(config_file, isolated_env, full_ledger):
    code, out, err = invoke(["--config", config_file("ledger: {required: true}\n"), "--json", "hello"])
    assert code == 1
    assert json.loads(out)["text"] == "echo: hello"
    lines = err.strip().splitlines()
    assert len(lines) == 2 and "could not write the ledger" in lines[0] and "ledger.required" in lines[1]
    assert open_reservations(isolated_env) == {}


def test_ledger_required_must_be_a_boolean(tmp_path):
    path = tmp_path / "cfg.yaml"
    path.write_text(CONFIG + "ledger: {required: sometimes}\n")
    code, out, err = invoke(["--config", str(path), "hello"])
    assert code == 3 and "ledger.required must be true or false" in err


# --- unwritable before any call: refused up front ------------------------------------------------

FAKE = """\
version: 1
defaults: {{retries: 0}}
providers:
  fake:
    type: openai
    base_url: {url}/v1
    models:
      m: {{input: 1.0, output: 2.0}}  # a local URL is no proof of a free model: priced
routes:
  default: [fake/m]
{extra}"""


def _requests(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


@pytest.mark.e2e
@pytest.mark.parametrize("command", [["hello"], ["health"], ["health", "--deep"]])
def test_a_data_dir_under_a_file_is_refused_before_any_call(tmp_path, command):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where a directory should be")
    log = tmp_path / "requests.jsonl"
    with fake_server("openai", log=log) as url:
        config = tmp_path / "cfg.yaml"
        config.write_text(FAKE.format(url=url, extra=""))
        done = run_cli(["--config", str(config), *command], env={"LLMROUTE_HOME": str(blocker / "home")})
    err = done.stderr.decode()
    assert done.returncode == 1, err
    assert f"cannot write llmroute's data directory {blocker / 'home'}" in err and "Not a directory" in err
    assert "LLMROUTE_HOME" in err and "internal error" not in err and len(err.strip().splitlines()) == 2
    assert _requests(log) == []  # the provider was never called


@pytest.mark.e2e
def test_a_ledger_path_under_a_file_is_refused_before_any_call(tmp_path, isolated_env):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    log = tmp_path / "requests.jsonl"
    with fake_server("openai", log=log) as url:
        config = tmp_path / "cfg.yaml"
        config.write_text(FAKE.format(url=url, extra=f"ledger: {{path: {blocker}/ledger.jsonl}}\n"))
        done = run_cli(["--config", str(config), "hello"])
        plain_health = run_cli(["--config", str(config), "health"])  # writes no ledger: goes on
    err = done.stderr.decode()
    assert done.returncode == 1, err
    assert f"cannot write the ledger {blocker}/ledger.jsonl" in err and "ledger.path" in err
    assert "internal error" not in err
    assert plain_health.returncode == 0, plain_health.stderr.decode()
    assert [r["path"] for r in _requests(log)] == ["/v1/models"]  # only the health probe


def test_the_check_creates_nothing_and_runs_once(isolated_env):
    config = parse_config(CONFIG)
    engine = Engine(config, paths=Paths(isolated_env, isolated_env), keys=KeyStore({}))
    engine.check_writable()
    assert not (isolated_env / "ledger.jsonl").exists()
    (isolated_env / "state").rmdir()
    (isolated_env / "state").write_text("now a file")
    engine.check_writable()  # checked once per engine: no second look


# --- real file systems, when this machine lets the test mount them ------------------------------


@contextmanager
def tmpfs(path: Path, options: str):
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


@pytest.mark.e2e
def test_a_read_only_data_dir_is_refused_with_a_clear_message(tmp_path):
    home = tmp_path / "ro-home"
    log = tmp_path / "requests.jsonl"
    with tmpfs(home, "size=1m"), fake_server("openai", log=log) as url:
        config = tmp_path / "cfg.yaml"
        config.write_text(FAKE.format(url=url, extra="budget: {daily: 5}\ncache: {enabled: true}\n"))
        env = {"LLMROUTE_HOME": str(home)}
        assert run_cli(["--config", str(config), "warm up"], env=env).returncode == 0
        requests_before = len(_requests(log))
        remount = subprocess.run(["mount", "-o", "remount,ro", str(home)], capture_output=True, text=True)
        if remount.returncode != 0:
            pytest.skip(f"cannot remount read-only: {remount.stderr.strip()}")
        runs = {name: run_cli(["--config", str(config), *args], env=env)
                for name, args in {"ask": ["hello"], "health": ["health"], "budget": ["budget"],
                                   "cache": ["cache", "stats"], "explain": ["--explain", "hello"]}.items()}
        requests_after = len(_requests(log))
    for name, done in runs.items():
        err = done.stderr.decode()
        assert done.returncode == 1, (name, err)
        assert "Read-only file system" in err and str(home) in err, (name, err)
        assert "internal error" not in err and len(err.strip().splitlines()) == 2, (name, err)
    assert requests_after == requests_before  # neither the ask nor the health probe was sent


@pytest.mark.e2e
def test_a_really_full_disk_after_the_call_keeps_the_answer(tmp_path, isolated_env):
    disk = tmp_path / "small-disk"
    with tmpfs(disk, "size=64k"):
        ledger = disk / "ledger.jsonl"
        head = '{"v": 1, "kind": "ask", "status": "ok", "pad": "'
        line = (head + "x" * (4096 - len(head) - 3) + '"}\n').encode()
        ledger.write_bytes(line)  # one whole page: an append needs a new one
        fd = os.open(disk / "filler", os.O_WRONLY | os.O_CREAT)
        try:  # fill the disk to the last byte
            while True:
                os.write(fd, b"\0" * 512)
        except OSError as error:
            assert error.errno == errno.ENOSPC
        finally:
            os.close(fd)
        config = tmp_path / "cfg.yaml"
        config.write_text(CONFIG + f"ledger: {{path: {ledger}}}\n")
        done = run_cli(["--config", str(config), "hello"])
        kept = ledger.read_bytes()
    err = done.stderr.decode()
    assert done.returncode == 0, err
    assert done.stdout.decode() == "echo: hello\n"
    assert "could not write the ledger" in err and "No space left on device" in err
    assert len(err.strip().splitlines()) == 1
    assert kept == line  # no torn line
    assert open_reservations(isolated_env) == {}


# --- main(): the machine's faults are messages, bugs are "internal error" --------------------------


@pytest.mark.parametrize("args", [["hello"], ["health"], ["budget"], ["--explain", "hello"],
                                  ["compare", "-t", "demo/small", "hello"]],
                         ids=["ask", "health", "budget", "explain", "compare"])
def test_a_file_where_the_state_directory_should_be(config_file, isolated_env, args):
    isolated_env.mkdir(parents=True, exist_ok=True)
    (isolated_env / "state").write_text("a file in the way")
    code, out, err = invoke(["--config", config_file(), *args])
    assert code == 1 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 2 and "internal error" not in err
    assert "Not a directory" in lines[0] and str(isolated_env / "state") in err
    assert "is a file, not a directory" in lines[1]


def _failing_budget(monkeypatch, error: Exception) -> None:
    from llmroute.cli import budget_cmd

    def fail(app, clock=None):
        raise error

    monkeypatch.setattr(budget_cmd, "budget_status", fail)


@pytest.mark.parametrize("error, first, hint", [
    (OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "/data/state/budget.json"),
     "No space left on device: /data/state/budget.json", "free some disk space"),
    (OSError(errno.EROFS, os.strerror(errno.EROFS), "/data/state/budget.json.lock"),
     "Read-only file system: /data/state/budget.json.lock", "LLMROUTE_HOME"),
    (PermissionError(errno.EACCES, os.strerror(errno.EACCES), "/data/ledger.jsonl"),
     "Permission denied: /data/ledger.jsonl", "permissions"),
    (IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), "/data/ledger.jsonl"),
     "Is a directory: /data/ledger.jsonl", "is a directory where a file is expected"),
], ids=["ENOSPC", "EROFS", "EACCES", "EISDIR"])
def test_an_os_error_says_which_file_and_what_to_do(config_file, monkeypatch, error, first, hint):
    _failing_budget(monkeypatch, error)
    code, out, err = invoke(["--config", config_file(), "budget"])
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 2 and lines[0] == f"llmroute: {first}" and hint in lines[1]


def test_an_sqlite_error_names_the_data_directory(config_file, isolated_env, monkeypatch):
    import sqlite3

    _failing_budget(monkeypatch, sqlite3.OperationalError("disk I/O error"))
    code, out, err = invoke(["--config", config_file(), "budget"])
    assert code == 1 and "internal error" not in err
    assert f"a database in {isolated_env} could not be used: disk I/O error" in err


def test_a_real_bug_is_still_an_internal_error(config_file, monkeypatch):
    _failing_budget(monkeypatch, KeyError("oops"))
    code, out, err = invoke(["--config", config_file(), "budget"])
    assert code == 1 and "internal error: KeyError" in err and "please report it" in err
