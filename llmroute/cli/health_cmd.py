"""`llmroute health [TARGET|PROVIDER]... [--deep] [--watch SECONDS] [--json]` (SPEC §9).

The probing, status rules, history, breakers and alerts live in `llmroute.health`; this module
only parses options, renders rows and loops for `--watch`. `--json` prints one JSON array per
probe round on a single line (so `--watch --json` is a stream of JSON Lines, one per round).
Exit 0 when nothing is down, else 1 (providers without a key do not count).
"""

from __future__ import annotations

import sys
import time

import click

from .completers import complete_target_or_provider
from .context import AppContext

CLEAR = "\x1b[H\x1b[2J"
_sleep = time.sleep  # the wait between --watch rounds (tests replace it)
COLORS = {"up": "green", "degraded": "yellow", "down": "red", "no key": "magenta", "budget": "yellow"}


@click.command("health")
@click.argument("names", nargs=-1, metavar="[TARGET|PROVIDER]...",
                shell_complete=complete_target_or_provider)
@click.option("--deep", is_flag=True, help="Send a one-token prompt instead of listing models (recorded in the ledger).")
@click.option("--watch", "watch", type=click.FloatRange(min=0.5), metavar="SECONDS",
              help="Probe again every SECONDS until Ctrl-C, refreshing in place on a terminal.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON array per probe round.")
@click.option("--wide", is_flag=True,
              help="Every column and whole errors on a terminal too (piped output has them all).")
@click.pass_context
def health_command(ctx: click.Context, names: tuple[str, ...], deep: bool, watch: float | None,
                   as_json: bool, wide: bool) -> int:
    """Probe providers and show status, latency, 24 h uptime, error rate, p95, score and circuit."""
    from ..health import HealthChecker, exit_code, select
    from ..state_backend import state_backend, state_line
    from ..render import table_width

    app: AppContext = ctx.obj
    engine = app.engine()
    warn = lambda message: click.echo(f"llmroute: {message}", err=True)  # noqa: E731
    checker = HealthChecker(engine, warn=warn)
    subjects = select(engine, names)
    if not subjects:
        click.echo("llmroute: no enabled providers to probe", err=True)
        return 0
    clear = clears_screen(watch, as_json, sys.stdout)
    try:
        while True:
            rows = checker.run(subjects, deep=deep)
            state = state_backend(engine)  # None with the local default: output unchanged
            output = render_json(rows, state) if as_json else render_table(
                rows, app.color(sys.stdout), table_width(app.env, wide=wide))
            if state is not None and not as_json:
                output += "\n" + state_line(state)
            click.echo((CLEAR if clear else "") + output)
            if watch is None:
                return exit_code(rows)
            if not as_json and not clear:
                click.echo()
            sys.stdout.flush()
            _sleep(watch)
    finally:
        engine.close()


def clears_screen(watch: float | None, as_json: bool, stream) -> bool:
    """Refresh in place only when watching a terminal; pipes and JSON get plain repeated output."""
    return watch is not None and not as_json and stream.isatty()


def render_json(rows, state: dict | None = None) -> str:
    """One JSON array; with a shared state backend each object also carries `state` (its
    backend, URL without credentials, namespace and round-trip time)."""
    import json

    return json.dumps([row.to_json() if state is None else {**row.to_json(), "state": state}
                       for row in rows])


def render_table(rows, color: bool = False, width: int | None = None) -> str:
    """The health table: one line per provider, worst status first. With a `width` (a
    terminal's) it fits: shorter headers, errors cut with `…`, the least useful columns dropped
    (`render.fit_table`); None keeps every column and whole errors."""
    from ..render import Column, table

    columns = [Column("provider", 100, elide=12), Column("status", 95), Column("latency", 80, "right"),
               Column("error", 90, elide=12), Column("uptime 24h", 50, "right", "up 24h"),
               Column("errors 24h", 35, "right", "err 24h"), Column("p95 24h", 45, "right", "p95"),
               Column("score", 70, "right"), Column("circuit", 60), Column("key", 20)]
    body = []
    for row in rows:
        status = click.style(row.status, fg=COLORS.get(row.status)) if color else row.status
        body.append([
            row.provider, status, _ms(row.latency_ms), row.error or "",
            _pct(row.stats.uptime), _pct(row.stats.error_rate), _ms(row.stats.p95_ms),
            "" if row.score is None else row.score, row.circuit, row.key_source,
        ])
    return table(columns, body, width)


def _ms(value: int | None) -> str:
    if value is None:
        return "-"
    return f"{value} ms" if value < 1000 else f"{value / 1000:.1f} s"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.0f}%"
