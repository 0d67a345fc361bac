"""Assembling the prompt from the argument, piped stdin and `--context` files (SPEC §4).

Rules: the argument alone; stdin alone; or both as `PROMPT\\n\\nSTDIN`. No prompt while stdin is a
terminal, an empty prompt, or stdin or an argument that is not UTF-8 are usage errors (exit 2).
Context files come first, each under its own name, so the model reads the material before the
question.
"""

from __future__ import annotations

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
