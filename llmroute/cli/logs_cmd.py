"""`llmroute logs`: recent requests, newest first, with their text where it is kept (SPEC §14)."""

from __future__ import annotations

import click

from .completers import complete_model


@click.command("logs")
@click.option("-n", "--count", "count", type=click.IntRange(min=1), default=10, show_default=True,
              help="How many requests to show.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead of text.")
@click.option("--cid", metavar="ID", help="Only the requests of this conversation.")
@click.option("-q", "--query", metavar="TEXT", help="Only requests whose prompt or answer contains TEXT (any case).")
@click.option("--target", metavar="TARGET", shell_complete=complete_model,
              help="Only requests answered by (or, when all failed, last tried on) this target or provider.")
@click.option("--config", "config_path", metavar="PATH", help="Config file.")
@click.pass_context
def logs_command(ctx: click.Context, count: int, as_json: bool, cid: str | None, query: str | None,
                 target: str | None, config_path: str | None) -> None:
    """Recent requests, newest first: time, target, tokens, cost, latency, status, and the
    prompt and answer where they are kept (conversations, or ledger.log_prompts).

    \b
    llmroute logs -n 3
    llmroute logs -q "regex" --target openai --json
    llmroute logs --cid 3f2a9c01b7de      one conversation's turns
    """
    import json

    from ..conversations import store_for
    from ..ledger import ledger_path
    from ..logs import LogFilter, recent_requests

    app = ctx.obj
    if config_path:
        app.config_path_option = config_path
    config = app.load_config()
    store = store_for(config, app.paths)
    try:
        entries = recent_requests(ledger_path(config, app.paths), store, limit=count,
                                  keep=LogFilter(cid=cid, query=query, target=target))
    finally:
        store.close()
    if as_json:
        click.echo(json.dumps([e.to_json() for e in entries], ensure_ascii=False))
        return
    for index, entry in enumerate(entries):
        if index:
            click.echo()
        click.echo(_head(entry))
        for mark, text in (("> ", entry.prompt), ("< ", entry.answer)):
            if text:
                click.echo(_indented(mark, text))
        if not entry.prompt and not entry.answer:
            click.echo("  (text not kept)")


def _head(entry) -> str:
    from ..render import money

    tokens = (f"{entry.input_tokens}+{entry.output_tokens} tokens"
              if entry.input_tokens is not None and entry.output_tokens is not None else "tokens unknown")
    cost = money(entry.cost_usd) if entry.cost_usd is not None else "cost unknown"
    status = entry.status if entry.status == "ok" else f"{entry.status}: {entry.error or 'unknown'}"
    if entry.cached:
        status += " (cached)"
    parts = [_local_time(entry.ts), entry.target or "-", tokens, cost, f"{int(entry.latency_ms)} ms", status]
    if entry.attempts > 1:
        parts.append(f"{entry.attempts} attempts")
    if entry.conversation_id:
        parts.append(f"conversation {entry.conversation_id}")
    return "  ".join(parts)


def _indented(mark: str, text: str) -> str:
    lines = text.rstrip("\n").split("\n")
    return "\n".join(("  " + mark if i == 0 else "    ") + line for i, line in enumerate(lines))


def _local_time(ts: str) -> str:
    from datetime import datetime

    try:
        return datetime.fromisoformat(ts.replace("Z", "+00:00")).astimezone().strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return ts
