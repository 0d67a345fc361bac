"""The console script's first stop: `llmroute --version` and `llmroute --help` without click.

Importing click is a large share of the 100 ms start-up budget (bench/startup.py measures it),
and these two are the invocations people and tools run to see whether llmroute is there and what
it offers. They are answered here from `commands.py` (the same table and text the click group
uses; a test renders both and compares them byte for byte); everything else goes to
`main.main`, unchanged.
"""

from __future__ import annotations

import shutil
import sys
import textwrap


def main() -> None:
    args = sys.argv[1:]
    if args == ["--version"]:
        from .. import __version__

        sys.stdout.write(f"llmroute, version {__version__}\n")
        return
    if len(args) == 1 and args[0] in ("--help", "-h"):
        sys.stdout.write(top_level_help())
        return
    from .main import main as full_main

    full_main()


def top_level_help(width: int | None = None) -> str:
    """The group's help exactly as click formats it (usage, text, options, commands)."""
    import importlib.util

    from .commands import COMMANDS, GROUP_HELP, OPTION_HELP

    if width is None:
        width = max(min(shutil.get_terminal_size().columns, 80) - 2, 50)
    out = ["Usage: llmroute [OPTIONS] COMMAND [ARGS]...\n", "\n"]
    out += _paragraphs(GROUP_HELP, width)
    out += ["\n", "Options:\n"]
    out += _definitions(list(OPTION_HELP.items()), width)
    available = sorted(n for n, (module, _, _) in COMMANDS.items()
                       if importlib.util.find_spec(f"llmroute.cli.{module}") is not None)
    out += ["\n", "Commands:\n"]
    out += _definitions([(name, COMMANDS[name][2]) for name in available], width)
    return "".join(out)


def _paragraphs(text: str, width: int) -> list[str]:
    """click's `write_text`: paragraphs re-wrapped at `width`, `\\b` paragraphs kept verbatim."""
    lines: list[str] = []
    for index, paragraph in enumerate(textwrap.dedent(text).strip().split("\n\n")):
        if index:
            lines.append("\n")
        if paragraph.startswith("\b"):
            lines += [f"  {line}\n" for line in paragraph.splitlines()[1:]]
        else:
            lines += [line + "\n" for line in textwrap.wrap(" ".join(paragraph.split()), width,
                                                             initial_indent="  ", subsequent_indent="  ")]
    return lines


def _definitions(rows: list[tuple[str, str]], width: int) -> list[str]:
    """click's `write_dl`: a 2-space indent, the first column padded, the second wrapped."""
    first = min(max(len(term) for term, _ in rows), 30) + 2
    text_width = max(width - first - 2, 10)
    lines = []
    for term, text in rows:
        wrapped = textwrap.wrap(text, text_width) or [""]
        lines.append(f"  {term:<{first}}{wrapped[0]}\n")
        lines += [f"{'':>{first + 2}}{line}\n" for line in wrapped[1:]]
    return lines
