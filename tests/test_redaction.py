"""An answer that contains one of the user's keys (a provider echoing it) is redacted like an
echoed error body: on stdout, in the ledger and in the cache, buffered or streamed (SPEC §3)."""

from __future__ import annotations

import json
import random
import sqlite3

import pytest
from click.testing import CliRunner

from llmroute.calls import Call, CallSite
from llmroute.cli.main import main
from llmroute.config.load import parse_config
from llmroute.engine import Engine
from llmroute.keys import KeyStore
from llmroute.paths import Paths
from llmroute.redact import MASK, StreamRedactor, redact
from llmroute.types import Chunk, Message, Request, Target

KEY = "hunter2-0123456789abcdefXYZ"
OTHER = "zebra-9876543210"

CONFIG = """\
version: 1
defaults: {strategy: priority, retries: 0}
providers:
  echo:
    type: mock
    key_env: ECHO_KEY
    reply: "you said: {prompt}"
    models:
      m: {}
routes:
  default: [echo/m]
cache: {enabled: true}
ledger: {log_prompts: true}
"""


# --- the stream redactor ----------------------------------------------------------------------


def _through(redactor: StreamRedactor, pieces: list[str]) -> str:
    return "".join(redactor.feed(piece) for piece in pieces) + redactor.flush()


def test_a_key_split_across_chunks_never_reaches_the_output():
    redactor = StreamRedactor([KEY])
    shown = [redactor.feed(piece) for piece in ("my key: hun", "ter2-01234", "56789abcdefXYZ, ok")]
    assert shown == ["my key: ", "", f"{MASK}, ok"]
    assert redactor.flush() == ""


def test_text_that_only_starts_like_a_key_is_held_back_then_released():
    redactor = StreamRedactor([KEY])
    assert redactor.feed("say hunter") == "say "  # could still become the key
    assert redactor.feed("2-0 is a password") == "hunter2-0 is a password"
    assert redactor.feed("end hunt") == "end "
    assert redactor.flush() == "hunt"  # the stream ended: it was not a key


def test_without_keys_text_passes_through_unchanged():
    redactor = StreamRedactor([None, "", "abc"])  # nothing long enough to be a key
    assert [redactor.feed(p) for p in ("abc", "de")] == ["abc", "de"] and redactor.flush() == ""


def test_any_cut_of_any_text_gives_the_same_result_as_redacting_it_whole():
    rng = random.Random(7)
    words = ["hello ", "hun", "hunter2-", KEY, OTHER, "zeb", " ", "X", "ra-98"]
    for _ in range(500):
        text = "".join(rng.choice(words) for _ in range(12))
        cuts = sorted(rng.sample(range(1, len(text)), min(6, len(text) - 1)))
        pieces = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)])]
        out = _through(StreamRedactor([KEY, OTHER]), pieces)
        assert out == redact(text, [KEY, OTHER])
        assert KEY not in out and OTHER not in out


def test_known_values_are_the_keys_resolved_so_far():
    config = parse_config(CONFIG)
    keys = KeyStore({"ECHO_KEY": KEY})
    assert keys.known_values() == ()
    keys.resolve(config.providers["echo"])
    assert keys.known_values() == (KEY,)


# --- through the engine -------------------------------------------------------------------------


class _Streaming:
    """A provider double that streams the key cut in three."""

    supports_stream = True

    def stream(self, request, model, *, timeout):
        for piece in ("here it is: hunt", "er2-0123456789", "abcdefXYZ (keep it safe)"):
            yield Chunk(text=piece)
        yield Chunk(finish_reason="stop")


def test_a_streamed_answer_is_redacted_on_screen_and_in_the_ledger(isolated_env):
    config = parse_config(CONFIG)
    engine = Engine(config, paths=Paths(isolated_env, isolated_env), keys=KeyStore({"ECHO_KEY": KEY}))
    engine.key_for(config.providers["echo"])  # resolved, as building the provider does
    shown: list[str] = []
    call = Call(engine, CallSite(Request(messages=(Message("user", "show it"),), max_tokens=20)),
                Target("echo", "m"))
    result = call.send(_Streaming(), 5.0, on_text=shown.append)
    assert "".join(shown) == f"here it is: {MASK} (keep it safe)"
    assert all(KEY[:6] not in piece for piece in shown)
    assert result.text == "".join(shown)
    record = json.loads((isolated_env / "ledger.jsonl").read_text())
    assert record["answer"] == result.text


@pytest.mark.parametrize("stream", [[], ["--stream"]])
def test_an_echoed_key_is_redacted_on_stdout_in_the_ledger_and_in_the_cache(tmp_path, isolated_env,
                                                                            monkeypatch, stream):
    config = tmp_path / "cfg.yaml"
    config.write_text(CONFIG)
    monkeypatch.setenv("ECHO_KEY", KEY)
    runner = CliRunner()
    outputs = []
    for _ in range(2):  # the second answer comes from the cache
        with runner.isolation() as streams:
            try:
                main(["--config", str(config), *stream, f"my key is {KEY}"])
            except SystemExit as done:
                assert done.code in (0, None)
        outputs.append((streams[0].getvalue().decode(), streams[1].getvalue().decode()))
    for out, err in outputs:
        assert out == f"you said: my key is {MASK}\n" and err == ""
    records = [json.loads(line) for line in (isolated_env / "ledger.jsonl").read_text().splitlines()]
    assert [r["cached"] for r in records] == [False, True]
    assert all(r["answer"] == f"you said: my key is {MASK}" for r in records)
    with sqlite3.connect(isolated_env / "cache.sqlite3") as db:
        assert [row[0] for row in db.execute("SELECT text FROM entries")] == [f"you said: my key is {MASK}"]
