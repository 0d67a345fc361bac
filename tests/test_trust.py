"""SPEC §1.1: a project `./llmroute.yaml` is inert until trusted.

The hostile config below names a listener on 127.0.0.1 (provider base URL and alert webhook), a
`key_cmd` and an `alerts.command` that each leave a marker file, and a ledger path of its own
with `log_prompts`. Untrusted, every command that discovers config must leave no marker, send
nothing and write nothing there; trusted, the same file works; an edit or unsafe permissions
make it inert again.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from llmroute.config.trust import TrustStore

from .support import fake_server, refused_url, run_cli

SECRET = "s3cret-token-value-123"


def hostile_config(tmp_path: Path, url: str) -> str:
    return f"""version: 1
providers:
  evil:
    type: openai
    base_url: {url}/v1
    key_env: SECRET_TOKEN
    models:
      m: {{input: 1.0, output: 1.0}}
  evilcmd:
    type: openai
    base_url: {url}/v1
    key_cmd: "touch {tmp_path}/key_cmd_ran; echo sk-from-cmd"
    models:
      m: {{input: 1.0, output: 1.0}}
  down:
    type: openai
    base_url: {refused_url()}/v1
    key_env: SECRET_TOKEN
    models:
      m: {{input: 1.0, output: 1.0}}
routes:
  default: [evilcmd/m, evil/m]
alerts:
  command: "touch {tmp_path}/alert_ran"
  webhook: {url}/hook
ledger:
  path: {tmp_path}/evil-ledger.jsonl
  log_prompts: true
"""


USER_CONFIG = """version: 1
providers:
  mine:
    type: mock
    models:
      echo: {}
routes:
  default: [mine/echo]
"""


@pytest.fixture
def hostile(tmp_path, isolated_env):
    """A hostile ./llmroute.yaml in the working directory, the user's own config in the data
    dir, and the listener's request log."""
    log = tmp_path / "server.jsonl"
    with fake_server("openai", log=log) as url:
        project = tmp_path / "project"
        project.mkdir()
        (project / "llmroute.yaml").write_text(hostile_config(tmp_path, url))
        isolated_env.mkdir(exist_ok=True)
        (isolated_env / "config.yaml").write_text(USER_CONFIG)
        yield project, log


def run_in(project: Path, args: list[str], **kw):
    return run_cli(args, cwd=project, env={"SECRET_TOKEN": SECRET, **kw.pop("env", {})}, **kw)


def nothing_happened(tmp_path: Path, log: Path) -> None:
    assert not (tmp_path / "key_cmd_ran").exists(), "key_cmd ran"
    assert not (tmp_path / "alert_ran").exists(), "alerts.command ran"
    assert not (tmp_path / "evil-ledger.jsonl").exists(), "the project's ledger path was written"
    assert not log.exists() or log.read_text() == "", "the project's host was contacted"


COMMANDS = [
    ["ask", "hello there"],
    ["hello there"],
    ["--explain", "hello there"],
    ["models"],
    ["health"],
    ["health", "--deep"],
    ["keys", "list"],
]


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: " ".join(a))
def test_untrusted_project_config_is_inert(hostile, tmp_path, args):
    project, log = hostile
    done = run_in(project, args)
    nothing_happened(tmp_path, log)
    err = done.stderr.decode()
    assert err.count("llmroute config trust") == 1, err
    assert SECRET not in done.stdout.decode() + err
    if args[-1] == "hello there" and "--explain" not in args:
        # llmroute goes on with the user's own config
        assert done.returncode == 0, err
        assert "hello there" in done.stdout.decode()


def test_completion_never_reads_an_untrusted_config_nor_runs_key_cmd(hostile, tmp_path):
    project, log = hostile
    env = {"_LLMROUTE_COMPLETE": "bash_complete", "COMP_WORDS": "llmroute -m ", "COMP_CWORD": "2"}
    done = run_in(project, [], env=env)
    values = [line.split(",", 1)[1] for line in done.stdout.decode().splitlines() if line]
    assert "mine/echo" in values and not any(v.startswith("evil") for v in values)
    assert done.stderr.decode() == ""  # nothing reaches the user's prompt
    nothing_happened(tmp_path, log)

    assert run_in(project, ["config", "trust"]).returncode == 0
    done = run_in(project, [], env=env)
    values = [line.split(",", 1)[1] for line in done.stdout.decode().splitlines() if line]
    assert "evilcmd/m" in values
    assert not (tmp_path / "key_cmd_ran").exists(), "completion must never run a key_cmd"


def test_trust_makes_it_work_and_an_edit_makes_it_inert_again(hostile, tmp_path, isolated_env):
    project, log = hostile
    done = run_in(project, ["config", "trust"])
    assert done.returncode == 0, done.stderr
    assert str(project / "llmroute.yaml") in done.stdout.decode()
    trust = json.loads((isolated_env / "trust.json").read_text())
    assert list(trust["files"]) == [str((project / "llmroute.yaml").resolve())]
    assert oct((isolated_env / "trust.json").stat().st_mode & 0o777) == "0o600"

    answered = run_in(project, ["hello there"])
    assert answered.returncode == 0, answered.stderr
    assert "llmroute config trust" not in answered.stderr.decode()
    assert (tmp_path / "key_cmd_ran").exists()
    assert (tmp_path / "evil-ledger.jsonl").exists()
    requests = log.read_text().splitlines()
    assert len(requests) == 1 and json.loads(requests[0])["path"] == "/v1/chat/completions"

    with open(project / "llmroute.yaml", "a") as handle:
        handle.write("# an innocent-looking edit\n")
    (tmp_path / "key_cmd_ran").unlink()
    again = run_in(project, ["hello there"])
    assert again.returncode == 0
    assert "changed since it was trusted" in again.stderr.decode()
    assert "llmroute config trust" in again.stderr.decode()
    assert not (tmp_path / "key_cmd_ran").exists()
    assert len(log.read_text().splitlines()) == 1  # nothing more was sent
    path = run_in(project, ["config", "path"])
    assert path.stdout.decode().strip() == str(isolated_env / "config.yaml")
    assert "changed since it was trusted" in path.stderr.decode()


def test_a_world_writable_trusted_file_is_refused(hostile, tmp_path):
    project, log = hostile
    assert run_in(project, ["config", "trust"]).returncode == 0
    os.chmod(project / "llmroute.yaml", 0o666)
    done = run_in(project, ["hello there"])
    assert "writable by group or others" in done.stderr.decode()
    nothing_happened(tmp_path, log)
    refused = run_in(project, ["config", "trust"])
    assert refused.returncode == 3 and "writable by group or others" in refused.stderr.decode()


def test_untrust_forgets_the_file(hostile, tmp_path):
    project, log = hostile
    assert run_in(project, ["config", "trust"]).returncode == 0
    done = run_in(project, ["config", "untrust"])
    assert done.returncode == 0 and "untrusted" in done.stdout.decode()
    run_in(project, ["hello there"])
    nothing_happened(tmp_path, log)


def test_explicit_config_and_environment_need_no_trust(hostile, tmp_path):
    project, log = hostile
    config = str(project / "llmroute.yaml")
    for args, env in ((["--config", config, "config", "path"], {}),
                      (["config", "path"], {"LLMROUTE_CONFIG": config})):
        done = run_in(project, args, env=env)
        assert done.stdout.decode().strip() == config
        assert "no trust needed" in done.stderr.decode()
    done = run_in(project, ["--config", config, "hello there"])
    assert done.returncode == 0, done.stderr
    assert len(log.read_text().splitlines()) == 1


def test_trust_store_resolves_links_and_ownership(tmp_path):
    store = TrustStore(tmp_path / "data")
    real = tmp_path / "real.yaml"
    real.write_text("version: 1\n")
    real.chmod(0o644)
    link = tmp_path / "link.yaml"
    link.symlink_to(real)
    assert store.trust(link).trusted
    assert store.check(real).trusted and store.check(real).content == b"version: 1\n"
    other = tmp_path / "other.yaml"
    other.write_text("version: 1\n")
    assert store.check(other).state == "untrusted"
    if os.getuid() == 0:  # only root can give a file away
        os.chown(real, 1, -1)
        check = store.check(real)
        assert check.state == "unsafe" and check.reason == "owned by another user"
        assert not store.trust(real).trusted


def test_a_damaged_trust_file_trusts_nothing(tmp_path):
    store = TrustStore(tmp_path / "data")
    (tmp_path / "data").mkdir()
    config = tmp_path / "c.yaml"
    config.write_text("version: 1\n")
    for damage in (b"not json", b"[1, 2]", b'{"files": [1]}'):
        store.path.write_bytes(damage)
        assert store.check(config).state == "untrusted"
    assert store.trust(config).trusted  # and trusting again repairs it
    assert store.check(config).trusted
