"""`llmroute tokens [--model TARGET_OR_MODEL] [--json] [TEXT]`: how many tokens a text is.

The text comes from the argument and/or piped stdin, joined as `ask` joins them
(`TEXT\\n\\nSTDIN`), under the same rules: stdin or an argument that is not valid UTF-8 exits 2.
Prints tiktoken's exact count, the encoding and where the count came from, and the fast
estimate the router uses where no decision hangs on the count. No config, key or network is
needed: the encoding follows from the model name (`tokens.encoding_for_model`).
"""

from __future__ import annotations

import sys

import click

from .completers import complete_model


@click.command("tokens")
@click.argument("text", nargs=-1)
@click.option("-m", "--model", metavar="TARGET_OR_MODEL", shell_complete=complete_model,
              help="Count for this target (provider/model) or model name (default: o200k_base).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def tokens_command(text: tuple[str, ...], model: str | None, as_json: bool) -> None:
    """Count a text's tokens exactly (tiktoken), with the encoding and the fast estimate.

    TEXT and piped stdin are joined as for ask. Models other than OpenAI's are counted with
    o200k_base, standing in for their own tokenizers."""
    from ..tokens import count_tokens, estimate_tokens

    content = _text(text)
    count = count_tokens(content, model)
    estimate = estimate_tokens(content)
    if not count.exact and count.note:
        click.echo(f"llmroute: warning: no exact count ({count.note}); showing the fast estimate", err=True)
    if as_json:
        import json

        click.echo(json.dumps({
            "tokens": count.count, "source": count.source, "encoding": count.encoding,
            "model": model, "approximate": count.approximate, "estimate": estimate, "note": count.note,
        }, ensure_ascii=False))
        return
    encoding = count.encoding
    if count.approximate:
        encoding += f" (standing in for {model}'s own tokenizer)"
    for name, value in (("tokens", count.label), ("source", count.source), ("encoding", encoding),
                        ("estimate", f"~{estimate}")):
        click.echo(f"{name:<9} {value}")


def _text(arguments: tuple[str, ...]) -> str:
    from ..errors import UsageError
    from ..prompt_input import read_stdin

    argument = " ".join(arguments) if arguments else None
    if argument is not None:
        try:
            argument.encode("utf-8")
        except UnicodeEncodeError:  # undecodable argv bytes arrive as lone surrogates
            raise UsageError("the TEXT argument is not valid UTF-8",
                             "convert it first, e.g. iconv -f latin1 -t utf-8") from None
    stdin = getattr(sys.stdin, "buffer", None)
    is_tty = stdin is not None and stdin.isatty()
    piped = read_stdin(stdin, is_tty)
    if argument is None and piped is None:
        raise UsageError("no text given", "usage: llmroute tokens [-m MODEL] TEXT, or pipe it: llmroute tokens < FILE")
    if argument is not None and piped:
        return f"{argument}\n\n{piped}"
    return argument if argument is not None else piped or ""
