"""`llmroute chat` through a pseudo-terminal: the real binary, a fake server, keys typed as a
user types them (Ctrl-C is the terminal's interrupt character, Ctrl-D its end of file)."""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import time

import pytest

from .support import fake_server, llmroute_binary, project_config, read_ledger

pytestmark = pytest.mark.e2e


class Terminal:
    def __init__(self, args: list[str], cwd, env: dict):
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: a new session whose controlling terminal is the pty
            try:
                os.chdir(cwd)
                os.execve(args[0], args, env)
            finally:
                os._exit(127)
        self.seen = ""

    def read_until(self, text: str, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        while text not in self.seen:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"did not see {text!r}; saw {self.seen!r}")
            ready, _, _ = select.select([self.fd], [], [], left)
            if ready:
                try:
                    chunk = os.read(self.fd, 4096)
                except OSError:  # the child closed the terminal
                    chunk = b""
                if not chunk:
                    raise AssertionError(f"terminal closed before {text!r}; saw {self.seen!r}")
                self.seen += chunk.decode(errors="replace")
        return self.seen

    def type(self, text: str) -> None:
        os.write(self.fd, text.encode())

    def wait(self, timeout: float = 30.0) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                return os.waitstatus_to_exitcode(status)
            try:  # keep draining so the child never blocks writing
                if select.select([self.fd], [], [], 0.05)[0]:
                    self.seen += os.read(self.fd, 4096).decode(errors="replace")
            except OSError:
                pass
        os.kill(self.pid, signal.SIGKILL)
        raise AssertionError(f"chat did not exit; saw {self.seen!r}")

    def close(self) -> None:
        try:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        os.close(self.fd)


def config(tmp_path, url: str) -> None:
    project_config(tmp_path).write_text(
        "version: 1\ndefaults: {retries: 0}\nproviders:\n"
        f"  fake:\n    type: openai\n    base_url: {url}/v1\n"
        "    models: {fake-model: {input: 1.0, output: 2.0}}\n")


def test_a_turn_then_ctrl_c_cancels_a_slow_answer_and_ctrl_d_leaves(tmp_path, isolated_env):
    log = tmp_path / "requests.jsonl"
    env = {**os.environ, "FAKE_API_KEY": "k", "TERM": "dumb"}
    with fake_server("openai", reply="answer to: {prompt}", log=log) as fast:
        config(tmp_path, fast)
        term = Terminal([llmroute_binary(), "chat", "-s", "be brief"], tmp_path, env)
        try:
            term.read_until("> ")
            term.type("hello there\n")
            term.read_until("answer to: hello there")
            term.read_until("> ")
            term.type("\x04")  # Ctrl-D at the prompt leaves
            assert term.wait() == 0
        finally:
            term.close()
    cid = read_ledger(isolated_env)[-1]["conversation_id"]
    with fake_server("openai", mode="slow:60000", log=log) as slow:
        config(tmp_path, slow)
        term = Terminal([llmroute_binary(), "chat", "--cid", cid], tmp_path, env)
        try:
            term.read_until("> ")
            term.type("take your time\n")
            deadline = time.monotonic() + 30
            while len(log.read_text().splitlines()) < 2:  # the slow request has arrived
                assert time.monotonic() < deadline, term.seen
                time.sleep(0.05)
            term.type("\x03")  # Ctrl-C
            term.read_until("answer cancelled")
            term.read_until("> ")
            term.type("quit\n")
            assert term.wait() == 0
        finally:
            term.close()
    records = read_ledger(isolated_env)
    assert [r["status"] for r in records] == ["ok", "error"]
    assert records[1]["error"] == "interrupted" and records[1]["conversation_id"] == cid
    bodies = [json.loads(line)["body"] for line in log.read_text().splitlines()]
    # the --cid session sent the first turn (and its system prompt) with the new prompt
    assert [m["content"] for m in bodies[1]["messages"]] == [
        "be brief", "hello there", "answer to: hello there", "take your time"]


def test_exit_leaves_and_turns_are_kept(tmp_path, isolated_env):
    env = {**os.environ, "FAKE_API_KEY": "k", "TERM": "dumb"}
    with fake_server("openai", reply="answer to: {prompt}") as url:
        config(tmp_path, url)
        term = Terminal([llmroute_binary(), "chat"], tmp_path, env)
        try:
            term.read_until("> ")
            term.type("one\n")
            term.read_until("answer to: one")
            term.type("two\n")
            term.read_until("answer to: two")
            term.read_until("> ")
            term.type("exit\n")
            assert term.wait() == 0
        finally:
            term.close()
    from llmroute.conversations import ConversationStore

    store = ConversationStore(isolated_env / "conversations.sqlite3")
    (latest,) = [s.id for s in store.recent()]
    assert [(t.prompt, t.answer) for t in store.turns(latest)] == [("one", "answer to: one"), ("two", "answer to: two")]
