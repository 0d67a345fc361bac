"""Assembling the prompt from the argument, piped stdin and `--context` files (SPEC §4), and
reading prompt files: the one reader of `batch`, `abtest run --prompts` and `route --each-line`.

Rules: the argument alone; stdin alone; or both as `PROMPT\\n\\nSTDIN`. No prompt while stdin is a
terminal, an empty prompt, or stdin or an argument that is not UTF-8 are usage errors (exit 2).
Context files come first, each under its own name, so the model reads the material before the
question.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterable, Sequence

from .errors import UsageError


def read_stdin(stream: BinaryIO | None, is_tty: bool) -> str | None:
    """The piped input as text, or None when stdin is a terminal or absent."""
    if stream is None or is_tty:
        return None
    data = stream.read()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise UsageError(
            f"stdin is not valid UTF-8 (bad byte at offset {error.start})",
            "convert it first, e.g. iconv -f latin1 -t utf-8",
        ) from None


def check_arguments(arguments: Iterable[tuple[str, str | Sequence[str] | None]]) -> None:
    """Refuse command-line text that was not valid UTF-8 (SPEC §4), naming the argument.

    On POSIX Python decodes argv with `surrogateescape`: each byte that is not UTF-8 becomes a
    lone surrogate (U+DC80-U+DCFF), which no encoder accepts later (the request body, the
    ledger), so it is caught here, before anything is planned or sent."""
    for name, value in arguments:
        for text in (value,) if isinstance(value, str) else value or ():
            bad = next((i for i, ch in enumerate(text) if "\ud800" <= ch <= "\udfff"), None)
            if bad is None:
                continue
            offset = len(text[:bad].encode("utf-8", "surrogateescape"))
            code = ord(text[bad])
            byte = f"byte 0x{code - 0xDC00:02x}" if 0xDC80 <= code <= 0xDCFF else "character"
            raise UsageError(
                f"{name} is not valid UTF-8 (bad {byte} at offset {offset})",
                "pass UTF-8 text; convert it first, e.g. with iconv -f latin1 -t utf-8",
            )


def assemble_prompt(argument: str | None, stdin_text: str | None, stdin_is_tty: bool,
                    context_files: Sequence[str] = ()) -> str:
    if argument is None and stdin_text is None:
        if stdin_is_tty:
            raise UsageError("no prompt given", "usage: llmroute [OPTIONS] PROMPT, or pipe text: echo 'hi' | llmroute")
        raise UsageError("empty prompt", "give a prompt argument or pipe some text")
    if argument is not None and stdin_text:
        prompt = f"{argument}\n\n{stdin_text}"
    else:
        prompt = argument if argument is not None else stdin_text or ""
    if not prompt.strip():
        raise UsageError("empty prompt", "give a prompt argument or pipe some text")
    context = [_read_context(name) for name in context_files]
    return "\n\n".join([*context, prompt])


def _read_context(name: str) -> str:
    path = Path(name).expanduser()
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise UsageError(f"context file not found: {name}") from None
    except IsADirectoryError:
        raise UsageError(f"context file is a directory: {name}") from None
    except UnicodeDecodeError:
        raise UsageError(f"context file is not UTF-8 text: {name}") from None
    except OSError as error:
        raise UsageError(f"cannot read context file {name}: {error.strerror}") from None
    return f"--- {path.name} ---\n{text.rstrip()}\n--- end of {path.name} ---"


# --- prompt files ------------------------------------------------------------------------------

PROMPT_FIELDS = ("id", "prompt", "system", "model")


@dataclass(frozen=True)
class PromptLine:
    """One prompt of a prompt file. `id` is the JSONL `id`, or the 1-based line number."""

    id: object
    prompt: str
    system: str | None = None
    model: str | None = None


def read_prompt_source(source: str, stdin: BinaryIO | None) -> str:
    """The text of a prompt file, or of piped stdin for `-`."""
    name = "stdin" if source == "-" else source
    try:
        if source == "-":
            if stdin is None or stdin.isatty():
                raise UsageError("no prompts: pipe them in or name a file")
            data = stdin.read()
        else:
            with open(source, "rb") as handle:
                data = handle.read()
    except OSError as exc:
        raise UsageError(f"cannot read {source}: {exc.strerror}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"{name} is not valid UTF-8", "convert it first, e.g. iconv -f latin1 -t utf-8") from None


def parse_prompt_lines(text: str) -> list[PromptLine]:
    """Text lines (id = line number, blank lines skipped) or JSONL objects with `prompt` and
    optional `id`, `system`, `model`; JSONL when the first non-blank line starts with `{`.
    Problems are usage errors naming the line."""
    lines = text.splitlines()
    first = next((line for line in lines if line.strip()), None)
    if first is None:
        raise UsageError("the input holds no prompts", "give one prompt per line, or JSONL with a \"prompt\" field")
    jsonl = first.lstrip().startswith("{")
    items: list[PromptLine] = []
    seen: set[str] = set()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        item = _json_line(line, number) if jsonl else PromptLine(id=number, prompt=line)
        key = json.dumps(item.id)
        if key in seen:
            raise UsageError(f"line {number}: duplicate id {item.id!r}", "every prompt needs its own id")
        seen.add(key)
        items.append(item)
    return items


def _json_line(line: str, number: int) -> PromptLine:
    try:
        data = json.loads(line)
    except ValueError as exc:
        raise UsageError(f"line {number}: not valid JSON ({exc.msg})", "JSONL input needs one object per line") from None
    if not isinstance(data, dict):
        raise UsageError(f"line {number}: expected a JSON object", "e.g. {\"id\": \"a\", \"prompt\": \"hello\"}")
    prompt = data.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise UsageError(f"line {number}: \"prompt\" must be a non-empty string")
    item_id = data.get("id", number)
    if not isinstance(item_id, (str, int)) or isinstance(item_id, bool):
        raise UsageError(f"line {number}: \"id\" must be a string or an integer")
    for name in ("system", "model"):
        if data.get(name) is not None and not isinstance(data[name], str):
            raise UsageError(f"line {number}: \"{name}\" must be a string")
    unknown = sorted(set(data) - set(PROMPT_FIELDS))
    if unknown:
        raise UsageError(f"line {number}: unknown field(s) {', '.join(unknown)}", "fields: " + ", ".join(PROMPT_FIELDS))
    return PromptLine(id=item_id, prompt=prompt, system=data.get("system"), model=data.get("model"))
