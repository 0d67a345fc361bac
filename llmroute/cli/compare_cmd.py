"""`llmroute compare [PROMPT] [-t TARGET]... [--route R | --all]` (SPEC §7).

The identical request goes to every target at once; the table comes first, then each full
answer. Exit 0 when any target answered, else 1.
"""

from __future__ import annotations


import click

from .completers import complete_route, complete_target
from .context import AppContext

EXCERPT = 48


@click.command("compare")
@click.argument("prompt", nargs=-1)
@click.option("-t", "--target", "targets", multiple=True, metavar="TARGET", shell_complete=complete_target,
              help="A target to compare (repeatable).")
@click.option("--route", metavar="R", shell_complete=complete_route, help="Compare every target of this route.")
@click.option("--all", "all_targets", is_flag=True, help="Compare every enabled target.")
@click.option("-s", "--system", metavar="TEXT", help="System prompt (shared by all targets).")
@click.option("--context", "context_files", multiple=True, metavar="FILE", help="Shared context file placed before the prompt (repeatable).")
@click.option("--max-tokens", type=click.IntRange(min=1), help="Max output tokens per call.")
@click.option("--temperature", type=click.FloatRange(0, 2), help="Sampling temperature.")
@click.option("--timeout", type=click.FloatRange(min=0.1), metavar="S", help="Seconds per call.")
@click.option("--format", "fmt", type=click.Choice(["table", "markdown", "json"]), default="table", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON line per target.")
@click.option("--judge", metavar="TARGET", shell_complete=complete_target,
              help="Rank the answers pairwise with this judge.")
@click.option("--wide", is_flag=True,
              help="Every column and longer excerpts on a terminal too (piped output has them all).")
@click.option("--config", "config_path", metavar="PATH", help="Config file.")
@click.pass_context
def compare_command(ctx: click.Context, prompt, targets, route, all_targets, system, context_files, max_tokens,
                    temperature, timeout, fmt, as_json, judge, wide, config_path) -> None:
    """Send one prompt to several targets side by side, concurrently."""
    from ..compare import run_compare
    from ..types import Message, Request
    from .ask import _prompt_from

    app: AppContext = ctx.obj
    if config_path:
        app.config_path_option = config_path
    text = _prompt_from({"prompt": prompt, "context_files": context_files})
    config = app.load_config()
    chosen = choose_targets(config, targets, route, all_targets)
    judge_target = resolve_or_fail(config, judge, "--judge") if judge else None
    request = Request(messages=(Message("user", text),), system=system,
                      max_tokens=max_tokens or config.defaults.max_tokens,
                      temperature=temperature if temperature is not None else config.defaults.temperature)
    engine = app.engine(config)
    try:
        outcome = run_compare(engine, request, chosen, timeout=timeout, route=route, judge=judge_target)
    finally:
        engine.close()
    from ..render import table_width

    click.echo(render(outcome, "jsonl" if as_json else fmt, width=table_width(app.env, wide=wide)))
    if not outcome.any_ok:
        ctx.exit(1)


def resolve_or_fail(config, text: str, what: str):
    from ..errors import UsageError

    target = config.resolve_target(text)
    if target is None:
        known = ", ".join(t.id for t in config.all_targets()) or "(none)"
        raise UsageError(f"{what}: unknown target {text!r}", f"known targets: {known}")
    return target


def choose_targets(config, targets, route, all_targets):
    """-t targets, a route's targets, or every enabled target; the default route when none."""
    from ..errors import UsageError

    if sum(bool(x) for x in (targets, route, all_targets)) > 1:
        raise UsageError("use only one of -t, --route and --all")
    if targets:
        chosen = [resolve_or_fail(config, t, "-t") for t in targets]
    elif route or not all_targets and config.defaults.route in config.routes:
        name = route or config.defaults.route
        if name not in config.routes:
            raise UsageError(f"unknown route {name!r}", f"routes: {', '.join(config.routes) or '(none)'}")
        chosen = list(config.routes[name])
    else:
        chosen = [t for t in config.all_targets() if config.providers[t.provider].enabled
                  and config.model(t).mode == "chat"]
    chosen = list(dict.fromkeys(chosen))
    if not chosen:
        raise UsageError("nothing to compare", "name targets with -t, or use --route / --all")
    return chosen


def render(outcome, fmt: str, width: int | None = None) -> str:
    """`fmt` table, markdown, json or jsonl; `width` fits the table to a terminal (None: every
    column, excerpts of `EXCERPT` characters)."""
    import json

    if fmt == "jsonl":
        return "\n".join(json.dumps({"compare_id": outcome.compare_id, **r.to_json()}, ensure_ascii=False)
                         for r in outcome.results)
    if fmt == "json":
        return json.dumps({"compare_id": outcome.compare_id, "wall_ms": outcome.wall_ms,
                           "results": [r.to_json() for r in outcome.results],
                           "ranking": _ranking_json(outcome.ranking)}, ensure_ascii=False, indent=2)
    return _render_text(outcome, markdown=fmt == "markdown", width=width)


def _ranking_json(ranking):
    if ranking is None:
        return None
    return [{"target": r.target.id, "points": r.points, "wins": r.wins, "losses": r.losses, "ties": r.ties}
            for r in ranking]


def _render_text(outcome, *, markdown: bool, width: int | None = None) -> str:
    from ..render import Column, elide, money, table

    rows = []
    for r in outcome.results:
        if r.ok:
            detail = r.text
        else:
            detail = ": ".join(x for x in (r.error, r.message) if x)
        rows.append([r.target.id, r.status, f"{r.latency_ms} ms" if r.status != "skipped" else "-",
                     f"{r.input_tokens}/{r.output_tokens}" if r.ok else "-",
                     money(r.cost_usd) if r.ok else "-", elide(" ".join(detail.split()), EXCERPT)])
    columns = [Column("target", 100, elide=20), Column("status", 95), Column("latency", 70, "right"),
               Column("tokens in/out", 60, "right", "tokens"), Column("cost", 80, "right"),
               Column("answer", 90, elide=10)]
    parts = [table(columns, rows, width, "markdown" if markdown else "simple"),
             f"\nwall time {outcome.wall_ms} ms, compare id {outcome.compare_id}"]
    if outcome.ranking is not None:
        parts.append("\n" + ("## Ranking" if markdown else "ranking (pairwise, judged both ways):"))
        for place, r in enumerate(outcome.ranking, 1):
            parts.append(f"{place}. {r.target.id}  {r.points:g} points ({r.wins} won, {r.losses} lost, {r.ties} tied)")
    for r in outcome.results:
        if r.ok:
            heading = f"\n## {r.target.id}\n" if markdown else f"\n── {r.target.id} ──"
            parts.append(f"{heading}\n{r.text.rstrip()}")
    return "\n".join(parts)
