"""Conversations (SPEC §14): `-c/--continue` and `--cid` send the earlier turns to whichever
target answers, the last `conversations.keep` are kept, concurrent continuations never corrupt
one, and a damaged file is set aside."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess

import pytest

from llmroute.config.load import parse_config
from llmroute.conversations import ConversationStore
from llmroute.errors import ConfigError

from .support import fake_server, invoke, llmroute_binary, project_config, read_ledger, run_cli

MOCK = """\
version: 1
providers:
  demo:
    type: mock
    reply: "echo: {prompt}"
    models: {small: {}}
"""


def ask_json(*args: str) -> dict:
    code, out, err = invoke(["--json", *args])
    assert code == 0, err
    return json.loads(out)


def store(home) -> ConversationStore:
    return ConversationStore(home / "conversations.sqlite3")


@pytest.mark.e2e
def test_a_conversation_continues_on_a_provider_of_another_format(tmp_path, isolated_env):
    log_a, log_b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    with fake_server("openai", reply="first answer", log=log_a) as a, \
            fake_server("anthropic", reply="second answer", log=log_b) as b:
        project_config(tmp_path).write_text(
            "version: 1\ndefaults: {strategy: priority, retries: 0}\nproviders:\n"
            f"  one:\n    type: openai\n    base_url: {a}/v1\n    models: {{fake-model: {{input: 1.0, output: 2.0}}}}\n"
            f"  two:\n    type: anthropic\n    base_url: {b}\n    models: {{fake-model: {{input: 1.0, output: 2.0}}}}\n"
            "routes:\n  default: [one, two]\n")
        env = {"ONE_API_KEY": "k1", "TWO_API_KEY": "k2"}
        first = run_cli(["--json", "-m", "one", "--no-fallback", "-s", "be brief", "what is a monad?"],
                        cwd=tmp_path, env=env)
        second = run_cli(["--json", "-c", "-m", "two", "--no-fallback", "and a functor?"], cwd=tmp_path, env=env)
    assert first.returncode == 0, first.stderr.decode()
    assert second.returncode == 0, second.stderr.decode()
    one, two = json.loads(first.stdout), json.loads(second.stdout)
    assert one["conversation_id"] and two["conversation_id"] == one["conversation_id"]
    assert two["target"] == "two/fake-model"
    body = json.loads(log_b.read_text().splitlines()[-1])["body"]
    assert body["system"] == "be brief"  # the conversation's system prompt goes on too
    assert [(m["role"], m["content"] if isinstance(m["content"], str) else m["content"][0]["text"])
            for m in body["messages"]] == [
        ("user", "what is a monad?"), ("assistant", "first answer"), ("user", "and a functor?")]
    records = read_ledger(isolated_env)
    assert {r["conversation_id"] for r in records} == {one["conversation_id"]}


def test_each_new_ask_starts_a_conversation_and_cid_picks_one(tmp_path, isolated_env):
    project_config(tmp_path).write_text(MOCK)
    code, out, err = invoke(["hello"])
    assert (code, out, err) == (0, "echo: hello\n", "")  # nothing extra is printed
    first = ask_json("first topic")
    second = ask_json("second topic")
    assert len({first["conversation_id"], second["conversation_id"]}) == 2
    ask_json("--cid", first["conversation_id"], "more on the first")
    latest = ask_json("-c", "more on the latest")
    assert latest["conversation_id"] == first["conversation_id"]  # the most recently used one
    turns = store(isolated_env).turns(first["conversation_id"])
    assert [t.prompt for t in turns] == ["first topic", "more on the first", "more on the latest"]
    assert [t.request_id for t in turns][0] == first["request_id"]
    assert [t.prompt for t in store(isolated_env).turns(second["conversation_id"])] == ["second topic"]


def test_an_unknown_cid_exits_2_listing_recent_ids(tmp_path, isolated_env):
    project_config(tmp_path).write_text(MOCK)
    known = ask_json("a prompt")["conversation_id"]
    code, out, err = invoke(["--cid", "nosuchid", "hi"])
    assert code == 2 and out == ""
    assert "no conversation 'nosuchid'" in err and known in err
    assert len(read_ledger(isolated_env)) == 1  # nothing was sent


def test_continue_with_no_conversation_exits_2(tmp_path, isolated_env):
    project_config(tmp_path).write_text(MOCK)
    code, _, err = invoke(["-c", "hi"])
    assert code == 2 and "no conversation to continue" in err


def test_only_the_last_keep_conversations_are_kept(tmp_path, isolated_env):
    project_config(tmp_path).write_text(MOCK + "conversations: {keep: 2}\n")
    ids = [ask_json(f"topic {n}")["conversation_id"] for n in range(3)]
    assert [s.id for s in store(isolated_env).recent()] == [ids[2], ids[1]]
    code, _, err = invoke(["--cid", ids[0], "hi"])
    assert code == 2 and ids[1] in err and ids[2] in err


def test_keep_0_stores_nothing(tmp_path, isolated_env):
    project_config(tmp_path).write_text(MOCK + "conversations: {keep: 0}\n")
    assert ask_json("hello")["conversation_id"] is None
    assert not (isolated_env / "conversations.sqlite3").exists()
    code, _, err = invoke(["-c", "hi"])
    assert code == 2 and "conversations.keep: 0" in err


def test_keep_is_validated():
    assert parse_config("version: 1\n").conversations.keep == 100
    with pytest.raises(ConfigError) as raised:
        parse_config("version: 1\nconversations: {keep: -1}\n")
    assert "conversations.keep must be at least 0" in "\n".join(raised.value.lines())


def test_the_file_is_private(tmp_path, isolated_env):
    project_config(tmp_path).write_text(MOCK)
    ask_json("hello")
    assert stat.S_IMODE(os.stat(isolated_env / "conversations.sqlite3").st_mode) == 0o600


@pytest.mark.e2e
def test_ten_processes_continuing_one_conversation(tmp_path, isolated_env):
    project_config(tmp_path).write_text(MOCK)
    first = run_cli(["--json", "the start"], cwd=tmp_path)
    cid = json.loads(first.stdout)["conversation_id"]
    env = {**os.environ}
    processes = [subprocess.Popen([llmroute_binary(), "--cid", cid, f"turn {n}"], cwd=tmp_path, env=env,
                                  stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                 for n in range(10)]
    for process in processes:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err.decode()
    db = sqlite3.connect(isolated_env / "conversations.sqlite3")
    assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    rows = db.execute("SELECT seq, prompt FROM turns WHERE conversation = ? ORDER BY seq", (cid,)).fetchall()
    db.close()
    assert [seq for seq, _ in rows] == list(range(1, 12))  # one turn each, numbered without gaps
    assert rows[0][1] == "the start"
    assert sorted(prompt for _, prompt in rows[1:]) == sorted(f"turn {n}" for n in range(10))
    # every continuation went out with the turn before it
    turns = store(isolated_env).turns(cid)
    assert len({t.request_id for t in turns}) == 11


def test_a_damaged_file_is_set_aside_with_a_warning(tmp_path, isolated_env):
    project_config(tmp_path).write_text(MOCK)
    isolated_env.mkdir(parents=True, exist_ok=True)
    (isolated_env / "conversations.sqlite3").write_bytes(b"this is not a database" * 200)
    code, out, err = invoke(["--json", "hello"])
    assert code == 0, err
    assert "conversations file" in err and "damaged" in err
    aside = [p.name for p in isolated_env.iterdir() if p.name.startswith("conversations.sqlite3.corrupt-")]
    assert len(aside) == 1
    cid = json.loads(out)["conversation_id"]
    assert ask_json("-c", "again")["conversation_id"] == cid  # the fresh file holds the turn


def test_the_whole_conversation_counts_toward_the_request(tmp_path, isolated_env):
    """Budget estimates and context filters read `Request.prompt_text`: it holds every turn."""
    project_config(tmp_path).write_text(MOCK)
    ask_json("alpha " * 50)
    code, out, err = invoke(["--explain", "--json", "-c", "beta"])
    assert code == 0, err
    long = json.loads(out)["input_tokens"]["estimate"]
    code, out, err = invoke(["--explain", "--json", "beta"])
    assert long > json.loads(out)["input_tokens"]["estimate"] + 40
