"""`llmroute report`: parse the window/grouping/format flags, call `llmroute.report`, print.

Thin on purpose: windows, aggregation, the index and every format live in `llmroute.report`
and are tested there. The budget lines come from the budget's own spend index
(`report.budget_lines`), so they show what `llmroute budget` shows. On a terminal the table fits
its width (`render.table_width`); `--wide` and piped output keep every column. Heavy modules
(the report package) load inside the command so `llmroute --help` stays fast. `now` comes from
`ctx.obj.now` when the context has one (tests).
"""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import UsageError

_BY = ("provider", "model", "target", "day", "route", "kind", "tag")
_FORMATS = ("table", "csv", "json", "markdown")


def _window_kind(today: bool, week: bool, month: bool, days: int | None, since: str | None,
                 until: str | None) -> str:
    chosen = [name for name, on in (("today", today), ("week", week), ("month", month),
                                    ("days", days is not None), ("since", since is not None)) if on]
    if len(chosen) > 1:
        raise UsageError("choose one window: --today, --week, --month, --days N or --since DATE")
    if until is not None and since is None:
        raise UsageError("--until needs --since")
    return chosen[0] if chosen else "week"


@click.command("report")
@click.option("--today", is_flag=True, help="Since local midnight.")
@click.option("--week", is_flag=True, help="Since Monday 00:00 (the default).")
@click.option("--month", is_flag=True, help="Since the 1st of the month.")
@click.option("--days", type=int, metavar="N", help="The last N days, today included.")
@click.option("--since", metavar="DATE", help="From this day (YYYY-MM-DD).")
@click.option("--until", metavar="DATE", help="Up to and including this day (with --since).")
@click.option("--by", "by", type=click.Choice(_BY), default="provider", show_default=True,
              help="Group rows by this field (tag: a record counts under each of its tags).")
@click.option("--format", "fmt", type=click.Choice(_FORMATS), default="table", show_default=True,
              help="Output format.")
@click.option("--chart", is_flag=True, help="Add a bar chart of cost per day.")
@click.option("--html", "html_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write a self-contained HTML report with charts to FILE.")
@click.option("-q", "--quiet", is_flag=True, help="With --html: print nothing else.")
@click.option("--no-index", is_flag=True, help="Read the whole ledger; ignore the report index.")
@click.option("--wide", is_flag=True,
              help="Every column on a terminal too (piped output always has every column).")
@click.pass_context
def report_command(ctx: click.Context, today: bool, week: bool, month: bool, days: int | None,
                   since: str | None, until: str | None, by: str, fmt: str, chart: bool,
                   html_file: Path | None, quiet: bool, no_index: bool, wide: bool) -> None:
    """Spend and performance report from the ledger: requests, success, tokens, cost, latency,
    fallbacks and cache hits per group, a totals row and the budget lines."""
    from datetime import datetime, timezone

    from ..render import table_width
    from ..report import budget_lines, build_report, local_today, make_window, resolve_tz
    from ..report.render import render

    app = ctx.obj
    config = app.load_config()
    tz = resolve_tz(config.budget.timezone)
    now = getattr(app, "now", None) or datetime.now(timezone.utc)
    kind = _window_kind(today, week, month, days, since, until)
    window = make_window(today=local_today(now, tz), kind=kind, days=days, since=since, until=until)
    from ..ledger import ledger_path

    ledger = ledger_path(config, app.paths)
    index = None if no_index else app.paths.state_dir / "report-index.pickle"

    def warn(message: str) -> None:
        click.echo(f"warning: {message}", err=True)

    budget = budget_lines(config, app.paths, env=app.env, clock=now.timestamp, warn=warn)
    from ..catalog.costs import cache_saving_rate

    report = build_report(ledger, window, by, tz=tz, index_path=index, warn=warn, budget=budget,
                          saving_rate=lambda target: cache_saving_rate(config, target))
    if html_file is not None:
        from ..paths import open_private
        from ..report.html import render_html

        try:
            with open_private(html_file) as handle:  # 0600: the report shows spend and usage
                handle.write(render_html(report))
        except OSError as exc:
            raise UsageError(f"cannot write {html_file}: {exc.strerror or exc}") from None
        if quiet:
            return
    click.echo(render(report, fmt, chart=chart, width=table_width(app.env, wide=wide)), nl=False)
