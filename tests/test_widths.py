"""Tables fit the terminal (SPEC §10, §11): on a terminal `report`, `health`, `models` and
`compare` fit its width (shorter headers, long text cut with `…`, the least useful columns
dropped); `--wide` and piped output keep every column and every character."""

from __future__ import annotations

import json
import os
import re
import select
import subprocess
import time

import pytest

from llmroute import render
from llmroute.render import Column, display_width, elide, fit_table, format_table, table, table_width

from .support import invoke, llmroute_binary, project_config, refused_url

ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
LONG_ERROR_PROVIDER = "downstairs"

CONFIG = """\
version: 1
budget:
  daily: 2000
  tokens_daily: 900000000
providers:
  demo:
    type: mock
    reply: "{{prompt}}"
    models:
      m: {{input: 0.15, output: 0.6}}
      claude-sonnet-4-5-20250929-extended-thinking: {{input: 3, output: 15, tier: large, context: 200000}}
  anthropic-enterprise-europe:
    type: mock
    reply: "{{prompt}}"
    models: {{claude-haiku-4-5-20251001: {{input: 1, output: 5}}}}
  downstairs:
    type: openai
    key_env: DOWN_KEY
    base_url: {down}/v1
    models: {{gpt-4o-mini: {{input: 0.15, output: 0.6}}}}
  cloud:
    type: openai
    key_env: CLOUD_KEY
    models: {{gpt-4o-mini: {{}}}}
routes:
  default: [demo/m]
"""

REPORT_HEADERS = ["requests", "ok", "failed", "success %", "attempts", "input tokens",
                  "output tokens", "cost USD", "mean latency ms", "p95 latency ms", "fallbacks",
                  "cache hits"]
HEALTH_HEADERS = ["provider", "status", "latency", "error", "uptime 24h", "errors 24h", "p95 24h",
                  "score", "circuit", "key"]
MODELS_HEADERS = ["target", "in $/1M", "out $/1M", "context", "tier", "quality", "key", "circuit"]
COMPARE_HEADERS = ["target", "status", "latency", "tokens in/out", "cost", "answer"]
PROMPT = "a fairly long prompt of many words so that the excerpt must be cut short"


def ledger_lines() -> list[str]:
    now = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
    lines = []
    for number, (provider, model, cost) in enumerate([
            ("anthropic-enterprise-europe", "claude-sonnet-4-5-20250929", 1234.5678),
            ("demo", "m", 0.0000258), ("openai", "gpt-4o-mini", 0.5)]):
        for attempt in (1, 2):
            lines.append(json.dumps({
                "v": 1, "ts": now, "request_id": f"r{number}", "kind": "ask",
                "target": f"{provider}/{model}", "provider": provider, "model": model,
                "route": "default", "attempt": attempt, "status": "ok" if attempt == 2 else "error",
                "latency_ms": 12345, "input_tokens": 123456789, "output_tokens": 98765432,
                "cost_usd": cost if attempt == 2 else 0.0, "price_source": "config",
                "cached": False, "tags": ["a-rather-long-tag-name"]}))
    return lines


@pytest.fixture
def setup(tmp_path, monkeypatch, isolated_env):
    project_config(tmp_path).write_text(CONFIG.format(down=refused_url()))
    isolated_env.mkdir(parents=True, exist_ok=True)
    (isolated_env / "ledger.jsonl").write_text("\n".join(ledger_lines()) + "\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DOWN_KEY", "sk-test")
    return tmp_path


@pytest.fixture
def terminal(monkeypatch):
    """stdout is an 80-column terminal."""
    monkeypatch.setattr(render, "is_terminal", lambda stream: True)
    monkeypatch.setenv("COLUMNS", "80")


def widest(text: str) -> int:
    return max(display_width(ANSI.sub("", line)) for line in text.splitlines())


def table_lines(out: str) -> list[str]:
    """The lines of the table in `out`: from its header to the first blank line."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.lstrip("|* ").startswith(
        ("provider", "target", "Report")))
    end = next((i for i in range(start + 2, len(lines)) if not lines[i].strip()), len(lines))
    return lines[start:end]


def header_words(out: str, headers: list[str]) -> list[str]:
    head = next(line for line in out.splitlines() if line.lstrip("| ").startswith(("provider", "target", "tag")))
    return [h for h in headers if h in head]


COMMANDS = {
    "report": (["report", "--today", "--by", "target"], REPORT_HEADERS),
    "report-markdown": (["report", "--today", "--format", "markdown", "--by", "tag"], REPORT_HEADERS),
    "health": (["health"], HEALTH_HEADERS),
    "models": (["models"], MODELS_HEADERS),
    "compare": (["compare", "-t", "demo/m", "-t", "anthropic-enterprise-europe/claude-haiku-4-5-20251001",
                 "-t", "downstairs/gpt-4o-mini", PROMPT], COMPARE_HEADERS),
}


@pytest.mark.parametrize("name", list(COMMANDS))
def test_on_an_80_column_terminal_no_line_is_wider(setup, terminal, name):
    args, headers = COMMANDS[name]
    _, out, err = invoke(args)
    assert out, err
    assert widest(out) <= 80, out
    shown = header_words(out, headers)
    assert len(shown) < len(headers)  # something had to give


@pytest.mark.parametrize("name", list(COMMANDS))
def test_piped_output_and_wide_keep_every_column(setup, monkeypatch, name):
    args, headers = COMMANDS[name]
    monkeypatch.setenv("COLUMNS", "80")
    _, piped, err = invoke(args)
    assert header_words(piped, headers) == headers, piped
    assert "…" not in "\n".join(table_lines(piped)) or name == "compare"  # compare's excerpts are 48 chars
    monkeypatch.setattr(render, "is_terminal", lambda stream: True)
    _, wide, _ = invoke([args[0], "--wide", *args[1:]])
    assert header_words(wide, headers) == headers, wide


def test_health_cuts_a_long_error_on_a_terminal_and_keeps_it_whole_when_piped(setup, monkeypatch):
    _, piped, _ = invoke(["health"])
    error = next(line for line in piped.splitlines() if line.startswith(LONG_ERROR_PROVIDER))
    assert "Connection refused" in error
    monkeypatch.setattr(render, "is_terminal", lambda stream: True)
    monkeypatch.setenv("COLUMNS", "80")
    _, fitted, _ = invoke(["health"])
    line = next(line for line in fitted.splitlines() if line.startswith(LONG_ERROR_PROVIDER))
    assert "…" in line and "Connection refused" not in line


def test_report_keeps_its_most_useful_columns_at_80(setup, terminal):
    _, out, _ = invoke(["report", "--today"])
    head = table_lines(out)[1]
    for short in ("provider", "reqs", "ok %", "cost"):
        assert short in head
    assert "TOTAL" in out and "$1,235.07" in out and "Daily budget:" in out


# --- the helper -------------------------------------------------------------------------------


COLUMNS = [Column("name", 100, elide=6), Column("count", 50, "right", "n"),
           Column("note", 80, elide=5), Column("extra", 10, "right")]
ROWS = [["a-long-name-here", 12, "something long to say", "x" * 8], ["b", 3, "", "y"]]


def test_nothing_changes_without_a_width_or_when_it_fits():
    assert fit_table(COLUMNS, ROWS, None) == (COLUMNS, [[str(c) for c in row] for row in ROWS])
    shown, _ = fit_table(COLUMNS, ROWS, 200)
    assert [c.header for c in shown] == ["name", "count", "note", "extra"]


@pytest.mark.parametrize("width", range(6, 70))
@pytest.mark.parametrize("style", ["simple", "markdown"])
def test_any_width_is_kept_and_columns_go_lowest_priority_first(width, style):
    text = table(COLUMNS, ROWS, width, style)
    assert widest(text) <= max(width, 7), text
    headers = text.splitlines()[0]
    order = ["extra", "count", "note"]  # priorities 10, 50, 80: dropped in this order
    gone = [h for h, short in (("extra", "extra"), ("count", "n"), ("note", "note"))
            if not re.search(rf"\b({h}|{short})\b", headers)]
    assert gone == order[:len(gone)]


def test_short_headers_come_before_dropping_and_cells_are_cut_with_an_ellipsis():
    shown, body = fit_table(COLUMNS, ROWS, 49)
    assert [c.header for c in shown] == ["name", "n", "note", "extra"]
    assert body[0][0] == "a-long-name-here" and body[0][2].endswith("…")
    text = format_table(shown, body)
    assert widest(text) <= 49


def test_display_width_and_elide_count_wide_characters_and_colour_codes():
    assert display_width("日本語") == 6 and display_width("\x1b[32mup\x1b[0m") == 2
    assert elide("日本語テキスト", 7) == "日本語…" and display_width(elide("日本語テキスト", 7)) <= 7
    assert elide("short", 5) == "short" and elide("longer", 5) == "long…"
    text = table([Column("t", 1), Column("v", 1, "right")], [["日本語", 1], ["ab", 22]])
    assert len({display_width(line) for line in text.splitlines()}) == 1  # padded by display width


def test_markdown_cells_escape_pipes_and_newlines_never_break_a_row():
    text = table([Column("a", 1), Column("b", 1)], [["x|y", "two\nlines"]], None, "markdown")
    assert text.splitlines()[2] == "| x\\|y | two lines |"


def test_table_width_is_none_when_piped_or_wide_and_follows_columns_on_a_terminal():
    class Stream:
        def __init__(self, tty):
            self.tty = tty

        def isatty(self):
            return self.tty

        def fileno(self):
            raise OSError("not a real terminal")

    assert table_width({"COLUMNS": "80"}, stream=Stream(False)) is None
    assert table_width({"COLUMNS": "80"}, wide=True, stream=Stream(True)) is None
    assert table_width({"COLUMNS": "120"}, stream=Stream(True)) == 120
    assert table_width({}, stream=Stream(True)) == 80  # the terminal cannot say: 80


# --- the real binary on a real terminal ---------------------------------------------------------


def on_terminal(args: list[str], cwd, columns: int = 80, timeout: float = 60.0) -> tuple[int, str]:
    """Run the installed binary with stdout on a pseudo-terminal `columns` wide (no COLUMNS
    variable: the width comes from the terminal itself); (exit code, output)."""
    import fcntl
    import pty
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    process = subprocess.Popen([llmroute_binary(), *args], stdin=subprocess.DEVNULL, stdout=slave,
                               stderr=subprocess.DEVNULL, cwd=cwd, env=env)
    os.close(slave)
    chunks, deadline = [], time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:  # the child closed the terminal
                    break
                if not data:
                    break
                chunks.append(data)
            elif process.poll() is not None:
                break
    finally:
        os.close(master)
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)
    return process.returncode, b"".join(chunks).decode().replace("\r\n", "\n")


@pytest.mark.e2e
def test_the_binary_fits_report_and_models_to_a_real_80_column_terminal(setup):
    code, out = on_terminal(["report", "--today", "--by", "target"], setup)
    assert code == 0 and "TOTAL" in out and widest(out) <= 80, out
    code, out = on_terminal(["models"], setup)
    assert code == 0 and "demo/m" in out and widest(out) <= 80, out
    piped = subprocess.run([llmroute_binary(), "report", "--today", "--by", "target"], cwd=setup,
                           capture_output=True, env={**os.environ, "COLUMNS": "80"})
    assert header_words(piped.stdout.decode(), REPORT_HEADERS) == REPORT_HEADERS
