"""`llmroute batch FILE|- [-P N] [--out FILE] [--resume] ...` (SPEC §11).

Parses the options, reads the input, and runs `llmroute.batch.BatchRunner` on one event loop
with one shared `httpx.AsyncClient`. Results go to stdout or `--out` as JSONL in input order;
the progress bar goes to stderr, and only when stderr is a terminal.
"""

from __future__ import annotations

import sys

import click

from .completers import complete_model, complete_route
from .context import AppContext


@click.command("batch")
@click.argument("source", metavar="FILE|-")
@click.option("-P", "--parallel", "concurrency", type=click.IntRange(1, 256), default=4, show_default=True,
              help="Prompts in flight at once.")
@click.option("--out", "out_path", metavar="FILE", help="Write results here (JSONL) instead of stdout.")
@click.option("--resume", is_flag=True, help="Skip ids already answered in --out and append the rest.")
@click.option("-m", "--model", metavar="TARGET|ROUTE", shell_complete=complete_model, help="Pin a target or name a route.")
@click.option("-r", "--route", metavar="NAME", shell_complete=complete_route, help="Use a route.")
@click.option("-s", "--system", metavar="TEXT", help="System prompt (a JSONL line's \"system\" wins).")
@click.option("--max-tokens", type=click.IntRange(min=1), help="Max output tokens per prompt.")
@click.option("--temperature", type=click.FloatRange(0, 2), help="Sampling temperature.")
@click.option("--timeout", type=click.FloatRange(min=0.1), metavar="S", help="Seconds per attempt.")
@click.option("--tag", "tags", multiple=True, help="Label for the ledger (repeatable).")
@click.option("--cache/--no-cache", default=None, help="Answer repeated prompts from the response cache.")
@click.option("--config", "config_path", metavar="PATH", help="Config file.")
@click.pass_context
def batch_command(ctx: click.Context, source: str, concurrency: int, out_path: str | None, resume: bool,
                  config_path: str | None, **options) -> None:
    """Answer many prompts: one per line, or JSONL with id, prompt, system, model.

    Results are JSONL in input order: id, text, target, usage, cost_usd, error. Exit 0 when
    every prompt was answered, 1 when any failed, 4 when the budget stopped the batch,
    130 when interrupted."""
    from ..prompt_input import parse_prompt_lines, read_prompt_source

    app: AppContext = ctx.obj
    if resume and not out_path:
        raise click.UsageError("--resume needs --out FILE (the results of the earlier run)")
    if config_path:
        app.config_path_option = config_path
    items = parse_prompt_lines(read_prompt_source(source, getattr(sys.stdin, "buffer", None)))
    ctx.exit(_run(app, items, concurrency, out_path, resume, options))


def _run(app: AppContext, items, concurrency: int, out_path: str | None, resume: bool, options: dict) -> int:
    from ..batch import BatchSettings, done_ids, pending_items

    config = app.load_config()
    engine = app.engine(config)
    settings = BatchSettings(
        options=_ask_options(options), system=options["system"],
        max_tokens=options["max_tokens"] or config.defaults.max_tokens,
        temperature=options["temperature"] if options["temperature"] is not None else config.defaults.temperature,
        concurrency=concurrency,
    )
    skipped = 0
    if resume:
        before = len(items)
        items = pending_items(items, done_ids(_read_existing(out_path)))
        skipped = before - len(items)
    _check_options(engine, items, settings)
    stream = _open_out(out_path, append=resume) if out_path else sys.stdout
    try:
        summary = _drive(engine, items, settings, stream, concurrency)
    finally:
        engine.close()
        if stream is not sys.stdout:
            stream.close()
    summary.skipped = skipped
    _report(summary)
    return summary.exit_code


def _ask_options(options: dict):
    from ..engine import AskOptions

    return AskOptions(model=options["model"], route=options["route"], tags=tuple(options["tags"]),
                      timeout=options["timeout"], cache=options["cache"], kind="batch")


def _check_options(engine, items, settings) -> None:
    """A wrong -m/-r would fail every prompt: plan the first one now so it exits 2 at once."""
    if not items:
        return
    from ..types import Message, Request

    engine.plan(Request(messages=(Message("user", items[0].prompt),), max_tokens=settings.max_tokens),
                settings.options)


def _drive(engine, items, settings, stream, concurrency: int):
    import asyncio

    from .. import __version__
    from ..batch import BatchRunner, OrderedWriter, Progress
    from ..engine_async import AsyncEngine
    from ..http_pool import async_client
    from ..routing.buffered_memory import BufferedMemory

    progress = Progress(sys.stderr if sys.stderr.isatty() else None, len(items), engine.monotonic)
    memory = engine.memory = BufferedMemory(engine.memory)

    async def go():
        async with async_client(concurrency, {"User-Agent": f"llmroute/{__version__}"}) as aclient:
            runner = BatchRunner(AsyncEngine(engine, aclient), items, settings,
                                 OrderedWriter(stream, len(items)), progress)
            return await runner.run()

    try:
        return asyncio.run(go())
    finally:
        memory.flush()


def _read_existing(path: str) -> str:
    try:
        with open(path, "rb") as handle:
            return handle.read().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return ""
    except OSError as exc:
        from ..errors import UsageError

        raise UsageError(f"cannot read {path}: {exc.strerror}") from None


def _open_out(path: str, *, append: bool):
    """Open --out, created 0600 (it holds the prompts' answers); when appending after a crash,
    end a torn last line first."""
    from ..errors import UsageError
    from ..paths import open_private

    try:
        handle = open_private(path, "a" if append else "w")
        if append and handle.tell() > 0:
            with open(path, "rb") as existing:
                existing.seek(-1, 2)
                if existing.read(1) != b"\n":
                    handle.write("\n")
        return handle
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror}") from None


def _report(summary) -> None:
    """One summary line on stderr when something needs the user's attention."""
    if summary.interrupted:
        click.echo(f"llmroute: interrupted: {summary.ok} answered, {summary.failed} failed; "
                   "finished results were written (use --resume to continue)", err=True)
    elif summary.budget_stopped:
        click.echo(f"llmroute: the budget stopped the batch: {summary.not_run} prompt(s) not run "
                   "(see `llmroute budget`)", err=True)
    elif summary.failed:
        click.echo(f"llmroute: {summary.failed} of {summary.total} prompt(s) failed (see the \"error\" field)", err=True)
